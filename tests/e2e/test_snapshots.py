"""snapshotBeforeExpand on devcluster: a VolumeSnapshot ready before the claim grows, keep-N pruning, and a growth
held (Degraded) while no snapshot can be taken, until the user opts out. The simulation plays the CSI snapshotter."""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import pytest

from devcluster.backend import SNAPSHOT_FAILS
from kubeclient.resources import PVCS, STORAGE_CLASSES, VIRTUAL_MACHINES, VOLUME_SNAPSHOTS
from kubeclient.rest import Kube
from tests.builders import disk, wukong
from tests.e2e.test_reconciler import apply, wait_condition, wait_for_wukong, wait_running
from tests.waiting import DEFAULT_TIMEOUT, wait_for_all, wait_for_object
from wukong import api

pytestmark = pytest.mark.usefixtures("reconciler")
NAME = "snap"


def snapshotted(size: str, keep: int | None = 2, storage_class: str = "longhorn") -> dict[str, Any]:
    extra = {} if keep is None else {"snapshotBeforeExpand": {"keep": keep}}
    return wukong(disk("data", size, storageClassName=storage_class, **extra), name=NAME)


def claim_version(admin: Kube, namespace: str) -> str:
    """The claim's list version now: a watch from it sees every later change, the growth included."""
    return admin.list(PVCS, namespace, field_selector=f"metadata.name={NAME}-data")[1]


def grown_at(admin: Kube, namespace: str, since: str, size: str) -> dict[str, Any]:
    """Watch the claim from ``since`` to its first version that requests ``size``: the reconciler's growth, as
    written (its resourceVersion is the etcd revision of that write)."""
    deadline = time.monotonic() + DEFAULT_TIMEOUT
    version = since
    while time.monotonic() < deadline:
        for event in admin.watch(
            PVCS, namespace, version, timeout_seconds=5, field_selector=f"metadata.name={NAME}-data"
        ):
            pvc = event["object"]
            version = pvc["metadata"].get("resourceVersion", version)
            if event["type"] == "MODIFIED" and pvc["spec"]["resources"]["requests"]["storage"] == size:
                return dict(pvc)
    raise AssertionError(f"PVC {NAME}-data never requested {size}")


def snapshots_of(admin: Kube, namespace: str) -> dict[str, dict[str, Any]]:
    items, _ = admin.list(VOLUME_SNAPSHOTS, namespace)
    return {s["metadata"]["name"]: s for s in items}


def test_a_disk_is_snapshotted_and_the_snapshot_ready_before_its_claim_grows(cluster, admin, namespace):
    apply(cluster, namespace, snapshotted("500Gi"))
    wait_running(admin, namespace, NAME)
    assert snapshots_of(admin, namespace) == {}, "no snapshot while nothing grows"
    since = claim_version(admin, namespace)
    apply(cluster, namespace, snapshotted("1Ti"))
    pvc = grown_at(admin, namespace, since, "1Ti")
    (snapshot,) = snapshots_of(admin, namespace).values()
    # The snapshot's last write is the snapshotter marking it ready: an etcd revision before the claim's growth.
    assert snapshot["status"]["readyToUse"] is True
    assert int(snapshot["metadata"]["resourceVersion"]) < int(pvc["metadata"]["resourceVersion"])
    assert snapshot["spec"] == {
        "volumeSnapshotClassName": "longhorn-snapshot",
        "source": {"persistentVolumeClaimName": f"{NAME}-data"},
    }
    metadata = snapshot["metadata"]
    assert metadata["labels"][api.WUKONG_LABEL] == NAME and metadata["labels"][api.DISK_LABEL] == "data"
    assert metadata["annotations"][api.SNAPSHOT_SIZE_ANNOTATION] == "500Gi"
    assert "ownerReferences" not in metadata, "under Retain the snapshot outlives its Wukong"
    entry = wait_for_wukong(
        admin,
        namespace,
        NAME,
        lambda s: next((v for v in s.get("volumes") or [] if v.get("snapshots") and v.get("capacity") == "1Ti"), None),
        "the snapshot recorded and the growth done",
    )
    assert [(s["name"], s["size"], s["readyToUse"]) for s in entry["snapshots"]] == [(metadata["name"], "500Gi", True)]
    assert entry["snapshots"][0]["time"] == snapshot["status"]["creationTime"]
    # Under Retain the snapshot outlives its Wukong: the garbage collector takes the VM, never the snapshot.
    cluster.kubectl("delete", "wukong", NAME, "-n", namespace, "--wait=true")
    wait_for_object(admin, VIRTUAL_MACHINES, namespace, f"{NAME}-vm", lambda vm: vm is None, "the VM collected")
    kept = admin.get(VOLUME_SNAPSHOTS, namespace, metadata["name"])
    assert kept["metadata"]["uid"] == metadata["uid"] and kept["status"]["readyToUse"] is True


def test_only_the_last_keep_snapshots_stay(cluster, admin, namespace):
    apply(cluster, namespace, snapshotted("500Gi", keep=1))
    wait_running(admin, namespace, NAME)
    since = claim_version(admin, namespace)
    apply(cluster, namespace, snapshotted("600Gi", keep=1))
    grown_at(admin, namespace, since, "600Gi")
    (first,) = snapshots_of(admin, namespace)
    wait_condition(admin, namespace, NAME, "Resizing", "False")
    since = claim_version(admin, namespace)
    apply(cluster, namespace, snapshotted("700Gi", keep=1))
    grown_at(admin, namespace, since, "700Gi")
    left = wait_for_all(
        admin, VOLUME_SNAPSHOTS, namespace, lambda objects: first not in objects and len(objects) == 1, "pruned"
    )
    (second,) = left.values()
    assert second["metadata"]["annotations"][api.SNAPSHOT_SIZE_ANNOTATION] == "600Gi"
    wait_for_wukong(
        admin,
        namespace,
        NAME,
        lambda s: (
            [x["name"] for x in (s.get("volumes") or [{}])[0].get("snapshots") or []] == [second["metadata"]["name"]]
        ),
        "the status recording only the snapshot kept",
    )


@pytest.fixture
def driver_without_snapshots(admin: Kube, namespace: str) -> str:
    """An expandable StorageClass of a CSI driver that has no VolumeSnapshotClass."""
    name = f"plain-csi-{namespace}"
    admin.create(
        STORAGE_CLASSES,
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": name},
            "provisioner": "csi.plain.example.com",
            "allowVolumeExpansion": True,
            "volumeBindingMode": "Immediate",
        },
    )
    return name


def test_without_a_snapshot_class_nothing_grows_until_the_user_opts_out(
    cluster, admin, namespace, driver_without_snapshots
):
    apply(cluster, namespace, snapshotted("500Gi", storage_class=driver_without_snapshots))
    wait_running(admin, namespace, NAME)
    apply(cluster, namespace, snapshotted("1Ti", storage_class=driver_without_snapshots))
    degraded = wait_condition(admin, namespace, NAME, "Degraded", "True")
    assert degraded["reason"] == "SnapshotClassNotFound"
    assert "no VolumeSnapshotClass for driver csi.plain.example.com" in degraded["message"]
    assert "remove snapshotBeforeExpand from disk data (spec.disks[0])" in degraded["message"]
    # The status that says so was written by the pass that held the growth back: the claim is as it was.
    assert admin.get(PVCS, namespace, f"{NAME}-data")["spec"]["resources"]["requests"]["storage"] == "500Gi"
    assert snapshots_of(admin, namespace) == {}
    since = claim_version(admin, namespace)
    apply(cluster, namespace, snapshotted("1Ti", keep=None, storage_class=driver_without_snapshots))
    grown_at(admin, namespace, since, "1Ti")
    wait_condition(admin, namespace, NAME, "Degraded", "False")
    assert snapshots_of(admin, namespace) == {}


def test_a_failed_snapshot_holds_the_growth_until_it_is_deleted_and_taken_again(cluster, admin, namespace):
    apply(cluster, namespace, snapshotted("500Gi"))
    wait_running(admin, namespace, NAME)
    claim = f"{NAME}-data"
    admin.patch(PVCS, namespace, claim, {"metadata": {"annotations": {SNAPSHOT_FAILS: "the disk is full"}}})
    apply(cluster, namespace, snapshotted("1Ti"))
    degraded = wait_condition(admin, namespace, NAME, "Degraded", "True")
    assert degraded["reason"] == "SnapshotFailed"
    assert "the disk is full" in degraded["message"]
    assert admin.get(PVCS, namespace, claim)["spec"]["resources"]["requests"]["storage"] == "500Gi"
    (failed,) = snapshots_of(admin, namespace).values()
    admin.patch(PVCS, namespace, claim, {"metadata": {"annotations": {SNAPSHOT_FAILS: None}}})
    since = claim_version(admin, namespace)
    admin.delete(VOLUME_SNAPSHOTS, namespace, failed["metadata"]["name"], failed["metadata"]["uid"])
    pvc = grown_at(admin, namespace, since, "1Ti")
    (taken,) = snapshots_of(admin, namespace).values()
    assert taken["metadata"]["uid"] != failed["metadata"]["uid"] and taken["status"]["readyToUse"] is True
    assert int(taken["metadata"]["resourceVersion"]) < int(pvc["metadata"]["resourceVersion"])
    wait_condition(admin, namespace, NAME, "Degraded", "False")


def test_a_tenant_cannot_write_the_keys_that_make_a_snapshot_a_wukongs(cluster, admin, namespace):
    forged = {
        "apiVersion": "snapshot.storage.k8s.io/v1",
        "kind": "VolumeSnapshot",
        "metadata": {
            "name": "forged",
            "namespace": namespace,
            "labels": {api.WUKONG_LABEL: NAME, api.DISK_LABEL: "data"},
            "annotations": {api.WUKONG_UID_ANNOTATION: "some-uid"},
        },
        "spec": {"source": {"persistentVolumeClaimName": "x"}},
    }
    result = cluster.kubectl("create", "-f", "-", stdin=json.dumps(forged), check=False)
    assert result.returncode != 0
    assert "VolumeSnapshot " + namespace + "/forged" in result.stderr
    assert "written only by the Wukong reconciler" in result.stderr
    unlabelled = copy.deepcopy(forged)
    unlabelled["metadata"].pop("labels")
    unlabelled["metadata"].pop("annotations")
    cluster.kubectl("create", "-f", "-", stdin=json.dumps(unlabelled))
