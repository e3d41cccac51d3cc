"""The tenant against a platform team's storage limits: swapping disks to hold more than maxTotalSize, and
retention set to delete every disk where disks may not be removed. Acting as the tenant of the built-in edit role,
against the real webhook and the real reconciler; every wait is on a fact (a condition, the PVC list)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from devcluster.controlplane import ControlPlane
from kubeclient.resources import PVCS
from kubeclient.rest import Kube
from tests.builders import disk, wukong
from tests.e2e.security.conftest import Tenant
from tests.e2e.test_namespace_policy import limits
from tests.waiting import poll, wait_for_object
from wukong.api import WUKONGS

pytestmark = pytest.mark.usefixtures("webhook")
REMOVAL = "vm.novasphere.dev/allow-disk-removal"
RELEASED_FROM = "vm.novasphere.dev/released-from"
SYSTEM, C, D = disk("system", "2Gi", boot=True), disk("c", "1Gi"), disk("d", "1Gi")


def manifest(tenant: Tenant, *disks: dict[str, Any], removing: str | None = None, **spec: Any) -> str:
    obj = wukong(*disks, annotations={REMOVAL: removing} if removing else None, **spec)
    obj["metadata"]["namespace"] = tenant.namespace
    return json.dumps(obj)


def apply(tenant: Tenant, *disks: dict[str, Any], **options: Any):
    return tenant.kubectl("apply", "-f", "-", stdin=manifest(tenant, *disks, **options))


@pytest.fixture
def policy(cluster: ControlPlane, tenant: Tenant) -> Iterator[Callable[..., None]]:
    """``policy(refused_probe, **rules)``: a cluster admin's WukongPolicy on the tenant's namespace, in force once the
    tenant's dry run of the probe (disks and spec options) is refused; deleted after the test."""
    name = f"limits-{tenant.namespace}"

    def put(probe: tuple[tuple[dict[str, Any], ...], dict[str, Any]], **rules: Any) -> None:
        cluster.kubectl("apply", "-f", "-", stdin=json.dumps(limits(name, tenant.namespace, **rules)))
        disks, options = probe
        poll(
            lambda: (
                tenant.kubectl(
                    "apply", "--dry-run=server", "-f", "-", stdin=manifest(tenant, *disks, **options)
                ).returncode
                != 0
            ),
            "the webhook to apply the cluster admin's policy",
        )

    yield put
    cluster.kubectl("delete", "wukongpolicy", name, "--ignore-not-found")


def total_limit(policy: Callable[..., None]) -> None:
    policy(((SYSTEM, C, D, disk("e", "1Gi")), {}), storage={"maxTotalSize": "4Gi"})


def pvc_names(admin: Kube, namespace: str) -> list[str]:
    items, _ = admin.list(PVCS, namespace)
    return sorted(item["metadata"]["name"] for item in items)


def released(admin: Kube, namespace: str, name: str) -> dict[str, Any]:
    return wait_for_object(
        admin,
        PVCS,
        namespace,
        name,
        lambda pvc: pvc if pvc and (pvc["metadata"].get("labels") or {}).get(RELEASED_FROM) == "vm1" else None,
        f"{name} released from vm1",
    )


def status_says(admin: Kube, namespace: str, check: Callable[[dict[str, Any]], Any], what: str) -> Any:
    return wait_for_object(
        admin, WUKONGS, namespace, "vm1", lambda obj: obj is not None and check(obj.get("status") or {}), what
    )


def degraded_by_the_limit(current: dict[str, Any]) -> dict[str, Any] | None:
    found = next((c for c in current.get("conditions") or [] if c["type"] == "Degraded"), None)
    return found if found and found["status"] == "True" and found["reason"] == "StorageLimitExceeded" else None


def records_c(current: dict[str, Any]) -> bool:
    return any(entry.get("disk") == "c" for entry in current.get("releasedVolumes") or [])


def test_swapping_a_disk_in_one_update_is_refused_naming_the_volume_kept(tenant, policy):
    total_limit(policy)
    assert apply(tenant, SYSTEM, C, disk("e", "1Gi")).returncode == 0
    refused = apply(tenant, SYSTEM, disk("e", "1Gi"), D, removing="c")
    assert refused.returncode != 0
    assert (
        'spec.disks: Forbidden: disks total 4Gi and the volumes of removed disks "c" 1Gi: 5Gi held, more than the '
        f'4Gi policy "limits-{tenant.namespace}" allows one Wukong'
    ) in refused.stderr
    assert "counts until it is deleted" in refused.stderr


@pytest.mark.usefixtures("reconciler")
def test_two_quick_updates_never_make_the_extra_volume_until_the_released_one_is_deleted(admin, tenant, policy):
    total_limit(policy)
    for verb in ("update", "patch"):  # what admission counts from the status, the tenant cannot write
        assert not tenant.can(verb, subresource="status")
    e = disk("e", "1Gi")
    assert apply(tenant, SYSTEM, C, e).returncode == 0
    status_says(admin, tenant.namespace, lambda s: len(s.get("volumes") or []) == 3, "three volumes recorded")
    removed = apply(tenant, SYSTEM, e, removing="c")
    assert removed.returncode == 0, removed.stderr
    added = apply(tenant, SYSTEM, e, D)  # at once: the status may not say yet that c's volume was released
    if added.returncode == 0:  # admitted before the status said so: the reconciler holds the line
        condition = status_says(admin, tenant.namespace, degraded_by_the_limit, "Degraded/StorageLimitExceeded")
        assert f"policy limits-{tenant.namespace} allows one Wukong (storage.maxTotalSize)" in condition["message"]
        assert "vm1-d" not in pvc_names(admin, tenant.namespace)
    else:
        assert "the volumes of removed disks" in added.stderr, added.stderr
    released(admin, tenant.namespace, "vm1-c")
    status_says(admin, tenant.namespace, records_c, "status.releasedVolumes recording c")
    if added.returncode != 0:
        again = apply(tenant, SYSTEM, e, D)
        assert again.returncode != 0 and '"c" 1Gi: 5Gi held' in again.stderr, again.stderr
    assert "vm1-d" not in pvc_names(admin, tenant.namespace)

    assert tenant.kubectl("delete", "pvc", "vm1-c", "-n", tenant.namespace).returncode == 0
    status_says(admin, tenant.namespace, lambda s: not records_c(s), "c's released volume no longer recorded")
    assert apply(tenant, SYSTEM, e, D).returncode == 0
    wait_for_object(admin, PVCS, tenant.namespace, "vm1-d", lambda pvc: pvc, "vm1-d created once c's is gone")


@pytest.mark.usefixtures("reconciler")
def test_a_wukong_of_the_same_name_holds_what_an_earlier_one_released(admin, tenant, policy):
    """Creation is admitted (a new Wukong has no status to say what it holds); the reconciler refuses the volume."""
    total_limit(policy)
    e = disk("e", "1Gi")
    assert apply(tenant, SYSTEM, C, e).returncode == 0
    status_says(admin, tenant.namespace, lambda s: len(s.get("volumes") or []) == 3, "three volumes recorded")
    assert tenant.kubectl("delete", "wukong", "vm1", "-n", tenant.namespace).returncode == 0
    released(admin, tenant.namespace, "vm1-c")
    assert apply(tenant, SYSTEM, e, D).returncode == 0
    condition = status_says(admin, tenant.namespace, degraded_by_the_limit, "Degraded/StorageLimitExceeded")
    assert "PersistentVolumeClaim vm1-c (1Gi)" in condition["message"]
    assert pvc_names(admin, tenant.namespace) == ["vm1-c", "vm1-e", "vm1-system"]
    status_says(admin, tenant.namespace, records_c, "status.releasedVolumes recording c")
    grown = apply(tenant, SYSTEM, disk("e", "2Gi"), D)  # growing is judged with what the status records
    assert grown.returncode != 0 and '"c" 1Gi: 6Gi held' in grown.stderr, grown.stderr
    assert tenant.kubectl("delete", "pvc", "vm1-c", "-n", tenant.namespace).returncode == 0
    wait_for_object(admin, PVCS, tenant.namespace, "vm1-d", lambda pvc: pvc, "vm1-d created once c's is gone")


def test_retention_set_to_delete_is_refused_where_disks_may_not_be_removed(tenant, policy):
    deleting = {"volumeRetentionPolicy": {"whenDeleted": "Delete"}}
    policy(((SYSTEM,), deleting), storage={"allowDiskRemoval": False})
    assert apply(tenant, SYSTEM).returncode == 0
    changed = apply(tenant, SYSTEM, **deleting)
    rule = (
        "spec.volumeRetentionPolicy.whenDeleted: Forbidden: whenDeleted: Delete would delete every disk with the "
        f'Wukong, and policy "limits-{tenant.namespace}" forbids removing disks'
    )
    assert changed.returncode != 0 and rule in changed.stderr, changed.stderr
    created = tenant.kubectl("apply", "-f", "-", stdin=manifest(tenant, SYSTEM, **deleting).replace("vm1", "vm2"))
    assert created.returncode != 0 and rule in created.stderr, created.stderr
    kept = tenant.kubectl(
        "get", "wukong", "vm1", "-n", tenant.namespace, "-o", "jsonpath={.spec.volumeRetentionPolicy.whenDeleted}"
    )
    assert kept.stdout == "Retain"
