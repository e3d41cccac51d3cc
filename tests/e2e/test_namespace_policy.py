"""WukongPolicy end to end: a platform team's limits, enforced through the real API server and read in kubectl."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from devcluster.controlplane import ControlPlane
from tests.builders import disk, wukong
from tests.e2e.conftest import ROOT, server_dry_run
from tests.waiting import poll, wait_for_object
from wukong.api import WUKONG_POLICIES, WUKONGS

pytestmark = pytest.mark.usefixtures("webhook")


def limits(name: str, namespace: str, action: str = "deny", **rules: Any) -> dict[str, Any]:
    """A policy selecting one namespace by the label every namespace has."""
    return {
        "apiVersion": "vm.novasphere.dev/v1alpha1",
        "kind": "WukongPolicy",
        "metadata": {"name": name},
        "spec": {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
            "enforcementAction": action,
            **rules,
        },
    }


def kubectl_apply(cluster: ControlPlane, namespace: str, obj: dict[str, Any], *extra: str):
    body = json.dumps({**obj, "metadata": {k: v for k, v in obj["metadata"].items() if k != "namespace"}})
    return cluster.kubectl("apply", "-n", namespace, "-f", "-", *extra, stdin=body, check=False)


def enforced(cluster: ControlPlane, namespace: str, probe: dict[str, Any], text: str) -> str:
    """Wait until the webhook's policy cache has the policy: a server-side dry run of ``probe`` answers with
    ``text`` (denied or warned). Returns what kubectl printed."""

    def answered() -> str | None:
        result = kubectl_apply(cluster, namespace, probe, "--dry-run=server")
        return result.stderr if text in result.stderr else None

    return poll(answered, f"the webhook to answer a dry run with {text!r}")


def test_a_disk_over_the_limit_is_refused_naming_the_policy_rule_limit_and_value(cluster, namespace):
    cluster.apply([limits(f"{namespace}-limits", namespace, storage={"maxDiskSize": "1Ti"})])
    big = wukong(disk("system", "20Gi", boot=True), disk("data", "2Ti"), name="big")
    expected = (
        f'spec.disks[1].size: Forbidden: 2Ti exceeds 1Ti, the largest disk policy "{namespace}-limits" allows '
        f'in namespace "{namespace}"'
    )
    enforced(cluster, namespace, big, expected)
    refused = kubectl_apply(cluster, namespace, big)
    assert refused.returncode == 1
    assert expected in refused.stderr
    assert 'The Wukong "big" is invalid' in refused.stderr
    # exact quantities: 1024Gi is 1Ti, allowed
    fits = wukong(disk("system", "20Gi", boot=True), disk("data", "1024Gi"), name="fits")
    assert kubectl_apply(cluster, namespace, fits).returncode == 0


def test_a_warn_policy_admits_with_a_warning(cluster, namespace):
    cluster.apply([limits(f"{namespace}-rollout", namespace, "warn", compute={"maxCpu": 4})])
    busy = wukong(disk("system", "20Gi", boot=True), name="busy", cpu=8)
    text = f'spec.cpu: 8 CPUs exceed 4, the most policy "{namespace}-rollout" allows in namespace "{namespace}"'
    enforced(cluster, namespace, busy, text)
    admitted = kubectl_apply(cluster, namespace, busy)
    assert admitted.returncode == 0, admitted.stderr
    assert f"Warning: {text}" in admitted.stderr
    assert "(the policy only warns: not refused)" in admitted.stderr


def test_several_policies_on_a_namespace_all_apply_and_the_strictest_limit_wins(cluster, namespace):
    cluster.apply(
        [
            limits(f"{namespace}-a-loose", namespace, storage={"maxDiskSize": "2Ti"}),
            limits(f"{namespace}-b-strict", namespace, storage={"maxDiskSize": "1Ti", "maxDisks": 2}),
        ]
    )
    probe = wukong(disk("system", "20Gi", boot=True), disk("data", "1536Gi"), disk("logs", "1Gi"), name="probe")
    stderr = enforced(cluster, namespace, probe, f'"{namespace}-b-strict"')
    assert (
        f'spec.disks[1].size: Forbidden: 1536Gi exceeds 1Ti, the largest disk policy "{namespace}-b-strict" allows '
        f'in namespace "{namespace}" (the strictest of 2 policies on namespace "{namespace}")'
    ) in stderr
    assert f'spec.disks: Forbidden: 3 disks, more than the 2 policy "{namespace}-b-strict" allows' in stderr
    assert f"{namespace}-a-loose" not in stderr  # the looser limit is not what refuses


def test_a_policy_default_class_comes_before_the_cluster_default(cluster, admin, namespace):
    cluster.apply(
        [
            limits(
                f"{namespace}-ssd",
                namespace,
                storage={"allowedClasses": ["longhorn-ssd", "longhorn-hdd"], "defaultClass": "longhorn-ssd"},
            )
        ]
    )
    plain = wukong(disk("system", "20Gi", boot=True), disk("data", "50Gi"), name="plain")
    enforced(cluster, namespace, wukong(disk("system", "20Gi", storageClassName="longhorn"), name="p"), "longhorn")
    assert kubectl_apply(cluster, namespace, plain).returncode == 0
    disks = admin.get(WUKONGS, namespace, "plain")["spec"]["disks"]
    assert [d["storageClassName"] for d in disks] == ["longhorn-ssd", "longhorn-ssd"]
    other = wukong(disk("system", "20Gi", boot=True, storageClassName="longhorn"), name="other")
    refused = kubectl_apply(cluster, namespace, other)
    assert (
        f'spec.disks[0].storageClassName: Forbidden: StorageClass "longhorn" is not one policy "{namespace}-ssd" '
        f'allows in namespace "{namespace}"'
    ) in refused.stderr


def test_a_new_policy_changes_nothing_that_exists_but_refuses_growth_and_the_audit_counts_it(
    cluster, admin, namespace, reconciler
):
    existing = wukong(disk("system", "20Gi", boot=True), disk("data", "2Ti"), name="existing")
    assert kubectl_apply(cluster, namespace, existing).returncode == 0
    name = f"{namespace}-limits"
    cluster.apply([limits(name, namespace, storage={"maxDiskSize": "1Ti"})])
    enforced(cluster, namespace, wukong(disk("system", "3Ti", boot=True), name="probe"), name)

    status = wait_for_object(
        admin,
        WUKONG_POLICIES,
        None,
        name,
        lambda p: (p or {}).get("status", {}).get("violations") == 1 and p["status"],
        f"policy {name} to count one violating Wukong",
    )
    assert status["violating"] == [
        {
            "namespace": namespace,
            "name": "existing",
            "message": f'spec.disks[1].size: 2Ti exceeds 1Ti, the largest disk policy "{name}" allows in namespace '
            f'"{namespace}"',
        }
    ]
    # An unrelated change to the grandfathered Wukong is admitted; growing the oversized disk is not.
    existing["spec"]["memory"] = "8Gi"
    assert kubectl_apply(cluster, namespace, existing).returncode == 0
    existing["spec"]["disks"][1]["size"] = "3Ti"
    grown = kubectl_apply(cluster, namespace, existing)
    assert grown.returncode == 1
    assert f'spec.disks[1].size: Forbidden: 3Ti exceeds 1Ti, the largest disk policy "{name}"' in grown.stderr
    table = cluster.kubectl("get", "wukongpolicy", name).stdout.split("\n")
    assert table[0].split()[:3] == ["NAME", "ACTION", "VIOLATIONS"]
    assert table[1].split()[:3] == [name, "deny", "1"]


def test_the_checker_takes_policies_from_a_file_or_from_the_cluster(cluster, namespace, tmp_path: Path):
    policy = limits("gitops-limits", "team-a", images={"allowedSources": ["quay.io/containerdisks"]})
    policy["spec"]["namespaceSelector"] = {"matchLabels": {"tier": "tenant"}}
    policies = tmp_path / "policies.yaml"
    policies.write_text(yaml.safe_dump(policy))
    manifests = tmp_path / "team-a.yaml"
    evil = wukong(disk("system", "20Gi", boot=True, image="docker://docker.io.evil.com/fedora:40"), name="vm")
    evil["metadata"]["namespace"] = "team-a"
    team = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a", "labels": {"tier": "tenant"}}}
    manifests.write_text(yaml.safe_dump_all([team, evil]))

    def check(*args: str) -> subprocess.CompletedProcess[str]:
        command = [str(Path(sys.executable).parent / "wukong-webhook"), "check", *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)

    classes = str(ROOT / "deploy" / "storageclasses" / "devcluster.yaml")
    offline = check("--storage-classes", classes, "--policies", str(policies), str(manifests))
    assert offline.returncode == 1, offline.stderr
    assert (
        'spec.disks[0].image: Forbidden: image "docker://docker.io.evil.com/fedora:40" is not from a source policy '
        '"gitops-limits" allows in namespace "team-a"'
    ) in offline.stderr

    # From the live cluster: the policy there, the namespace's labels there.
    live = limits(f"{namespace}-images", namespace, images={"allowedSources": ["quay.io/containerdisks"]})
    cluster.apply([live])
    evil["metadata"]["namespace"] = namespace
    (tmp_path / "live.yaml").write_text(yaml.safe_dump(evil))
    online = check("--kubeconfig", str(cluster.kubeconfig), str(tmp_path / "live.yaml"))
    assert online.returncode == 1, online.stderr
    assert f'is not from a source policy "{namespace}-images" allows in namespace "{namespace}"' in online.stderr


def test_the_example_policies_are_accepted_and_a_malformed_one_is_refused_by_the_api_server(cluster):
    examples = [yaml.safe_load(path.read_text()) for path in sorted((ROOT / "deploy" / "policies").glob("*.yaml"))]
    assert [e["metadata"]["name"] for e in examples] == ["corporate-networks", "production", "small-tenant"]
    accepted = server_dry_run(cluster, examples)
    assert accepted.returncode == 0, accepted.stderr
    bad = limits("bad", "x", storage={"maxDiskSize": "lots", "allowedClasses": ["a"], "defaultClass": "b"})
    refused = server_dry_run(cluster, [bad])
    assert refused.returncode == 1
    assert "maxDiskSize must be a quantity, e.g. 1Ti" in refused.stderr
    assert "defaultClass must be one of allowedClasses" in refused.stderr
