"""The ValidatingAdmissionPolicy in deploy/rbac: the reconciler's ServiceAccount writes only what it manages.

Proven by impersonation through the real API server; the reconciler's own work under the policy is every other
e2e test (devcluster installs the policy with the reconciler's RBAC).
"""

from __future__ import annotations

import json

import pytest

from devcluster.local_reconciler import SERVICE_ACCOUNT
from tests.waiting import poll

pytestmark = pytest.mark.usefixtures("reconciler")
MANAGED = {"app.kubernetes.io/managed-by": "wukong-reconciler"}


def pvc(name: str, namespace: str, labels: dict[str, str] | None = None) -> str:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        }
    )


def as_reconciler(cluster, *args: str, stdin: str | None = None):
    return cluster.kubectl(*args, "--as", SERVICE_ACCOUNT, stdin=stdin, check=False)


def test_the_reconciler_may_not_touch_an_unmanaged_claim(cluster, namespace):
    cluster.kubectl("create", "-f", "-", stdin=pvc("db", namespace))

    def refused() -> str | None:
        result = as_reconciler(cluster, "label", "pvc", "db", "-n", namespace, "stolen=yes")
        return result.stderr if result.returncode != 0 else None

    message = poll(refused, "the policy to refuse a label on an unmanaged PVC", timeout=20, interval=0.2)
    assert "is not managed by the Wukong reconciler" in message
    assert "ValidatingAdmissionPolicy" in message
    taken = as_reconciler(
        cluster, "label", "pvc", "db", "-n", namespace, "app.kubernetes.io/managed-by=wukong-reconciler"
    )
    assert taken.returncode != 0, "it could take an object over by labelling it"
    assert "stolen" not in cluster.kubectl("get", "pvc", "db", "-n", namespace, "-o", "json").stdout


def test_the_reconciler_may_not_create_unlabelled_claims_or_anything_in_kube_system(cluster, namespace):
    unlabelled = as_reconciler(cluster, "create", "-f", "-", stdin=pvc("plain", namespace))
    assert unlabelled.returncode != 0 and "is not managed by the Wukong reconciler" in unlabelled.stderr
    system = as_reconciler(cluster, "create", "-f", "-", stdin=pvc("big", "kube-system", MANAGED))
    assert system.returncode != 0 and "may not write in kube-system" in system.stderr
    lease = json.dumps(
        {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": "someone-else", "namespace": "wukong-system"},
        }
    )
    other_lease = as_reconciler(cluster, "create", "-f", "-", stdin=lease)
    assert other_lease.returncode != 0 and "only its Leases" in other_lease.stderr
    own = as_reconciler(cluster, "create", "-f", "-", stdin=pvc("ours", namespace, MANAGED))
    assert own.returncode == 0, own.stderr
