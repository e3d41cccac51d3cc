"""A quantity with a huge exponent costs the API server nothing: it is refused with a field error naming the field.

ParseQuantity and the quantity comparisons of the CRDs' CEL rules build the whole number, so ``1e999999999`` once
kept the API server computing past its own request timeout, a denial of service any tenant with ``edit`` could
repeat. Every request here is sent with a 10-second client timeout: a request the API server does not answer
fails the test by its answer (kubectl's timeout error, which names no field), not by a measured time.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from devcluster.controlplane import ControlPlane
from tests.builders import disk, wukong
from tests.e2e.security.conftest import Tenant

TIMEOUT = "--request-timeout=10s"
FORM = "an exponent of at most 3 digits"  # in each quantity rule's message
# Past 3 exponent digits, each way the API server's parser would build a gigantic number (or, past 32 bits, read
# the exponent truncated: 4e4294967305 would be 4e9).
HOSTILE = ["1e999999999", "1e2147483647", "1e2147483648", "1e-999999999", "1E+99999999", "4e4294967305", "1e1000"]


def refused(result: subprocess.CompletedProcess[str], *fields: str) -> list[str]:
    """What the answer lacks: each field named with an Invalid value, and no timeout."""
    missing = [field for field in fields if f"{field}: Invalid value" not in result.stderr]
    return missing if result.returncode != 0 and "Timeout" not in result.stderr else [result.stderr or result.stdout]


def hostile_wukong(memory: str, size: str, namespace: str) -> str:
    obj = wukong(disk("root", size, boot=True, storageClassName="longhorn"), name="hostile", memory=memory)
    obj["metadata"]["namespace"] = namespace
    return json.dumps(obj)


@pytest.mark.usefixtures("webhook")
@pytest.mark.parametrize("text", HOSTILE)
def test_a_tenant_with_a_huge_exponent_gets_a_field_error(tenant: Tenant, text: str):
    for memory, size, field in ((text, "1Gi", "spec.memory"), ("1Gi", text, "spec.disks[0].size")):
        result = tenant.kubectl(
            "create", "--dry-run=server", TIMEOUT, "-f", "-", stdin=hostile_wukong(memory, size, tenant.namespace)
        )
        assert refused(result, field) == [], (text, field)


@pytest.mark.parametrize("text", HOSTILE)
def test_the_wukong_crd_alone_refuses_a_huge_exponent(cluster: ControlPlane, text: str):
    """In kube-system, where the webhooks do not apply: the API server's own answer, with the CRD's message."""
    result = cluster.kubectl(
        "create", "--dry-run=server", TIMEOUT, "-f", "-", stdin=hostile_wukong(text, text, "kube-system"), check=False
    )
    assert refused(result, "spec.memory", "spec.disks[0].size") == []
    assert result.stderr.count(FORM) == 2, result.stderr


@pytest.fixture
def stored(cluster: ControlPlane) -> Iterator[dict[str, Any]]:
    """A Wukong stored in kube-system (no webhook, no reconciler): the disk-growth rule compares old and new."""
    obj = json.loads(hostile_wukong("1Gi", "1Gi", "kube-system"))
    obj["metadata"]["name"] = "grows"
    cluster.kubectl("create", TIMEOUT, "-f", "-", stdin=json.dumps(obj))
    yield obj
    cluster.kubectl("delete", "wukong", "grows", "-n", "kube-system", "--ignore-not-found", TIMEOUT)


@pytest.mark.parametrize("text", ["1e999999999", "1e-999999999", "1e2147483648"])
def test_growing_a_disk_to_a_huge_exponent_is_refused_promptly(cluster: ControlPlane, stored: dict, text: str):
    stored["spec"]["disks"][0]["size"] = text
    result = cluster.kubectl("replace", "--dry-run=server", TIMEOUT, "-f", "-", stdin=json.dumps(stored), check=False)
    assert refused(result, "spec.disks[0].size") == []
    assert FORM in result.stderr


def test_the_policy_crd_refuses_a_huge_exponent_in_every_limit(cluster: ControlPlane):
    fields = ("spec.compute.maxMemory", "spec.storage.maxDiskSize", "spec.storage.maxTotalSize")
    for text in HOSTILE:
        policy = {
            "apiVersion": "vm.novasphere.dev/v1alpha1",
            "kind": "WukongPolicy",
            "metadata": {"name": "hostile"},
            "spec": {
                "namespaceSelector": {"matchLabels": {"nothing": "selected"}},
                "compute": {"maxMemory": text},
                "storage": {"maxDiskSize": text, "maxTotalSize": text},
            },
        }
        result = cluster.kubectl(
            "create", "--dry-run=server", TIMEOUT, "-f", "-", stdin=json.dumps(policy), check=False
        )
        assert refused(result, *fields) == [], text
        assert result.stderr.count(FORM) == 3, result.stderr
