"""Whole reconcile passes against an in-memory Kube: given these objects, a pass sends exactly these requests."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kubeclient.controller import Controller
from kubeclient.resources import (
    DATA_VOLUMES,
    LEASES,
    PVCS,
    SECRETS,
    STORAGE_CLASSES,
    VIRTUAL_MACHINE_INSTANCES,
    VIRTUAL_MACHINES,
)
from kubeclient.rest import AlreadyExists, Conflict
from reconciler.events import EventRecorder
from reconciler.lookups import Lookups
from reconciler.reconcile import BLOCKED_RECHECK_SECONDS, Caches, Reconciler
from reconciler.sharding import ShardHolder
from reconciler.statuswrites import StatusWrites
from tests.builders import disk, wukong
from tests.fakekube import FakeKube
from wukong import api, policy
from wukong.api import WUKONGS

KEY = ("default", "vm1")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def kube() -> FakeKube:
    kube = FakeKube()
    kube.put(STORAGE_CLASSES, {"metadata": {"name": "longhorn"}, "provisioner": "x", "allowVolumeExpansion": True})
    return kube


def reconciler_for(kube: FakeKube, clock: Clock) -> Reconciler:
    managed = (api.MANAGED_BY_LABEL, api.MANAGED_BY)  # the reconciler's informers select what it made
    caches = Caches(
        kube.store(WUKONGS),
        kube.store(PVCS, *managed),
        kube.store(DATA_VOLUMES, *managed),
        kube.store(VIRTUAL_MACHINES, *managed),
        kube.store(VIRTUAL_MACHINE_INSTANCES, api.WUKONG_LABEL),
        kube.store(STORAGE_CLASSES),
    )
    lookups = Lookups(kube, lambda namespace: policy.Scope.of((), namespace), clock)
    return Reconciler(kube, caches, lookups, EventRecorder(kube, "test", clock), StatusWrites(clock=clock))


def status_of(kube: FakeKube) -> dict[str, Any]:
    return kube.objects[("wukongs", *KEY)].get("status") or {}


def condition(kube: FakeKube, kind: str) -> dict[str, Any]:
    return next(c for c in status_of(kube)["conditions"] if c["type"] == kind)


def backend(kube: FakeKube) -> None:
    """What the cluster does meanwhile: claims bind at the size asked for, the VM runs as its template says."""
    for (plural, namespace, name), obj in list(kube.objects.items()):
        if plural == "persistentvolumeclaims" and (obj.get("status") or {}).get("phase") != "Bound":
            size = obj["spec"]["resources"]["requests"]["storage"]
            change = {"spec": {"volumeName": f"pv-{name}"}, "status": {"phase": "Bound", "capacity": {"storage": size}}}
            kube.edit(PVCS, namespace, name, change)
        if plural == "virtualmachines" and (namespace, name) not in {
            (k[1], k[2]) for k in kube.objects if k[0] == "virtualmachineinstances"
        }:
            template = obj["spec"]["template"]
            vmi = {"metadata": {"name": name, "namespace": namespace, **copy.deepcopy(template["metadata"])},
                   "spec": copy.deepcopy(template["spec"]), "status": {"nodeName": "node-1"}}  # fmt: skip
            kube.put(VIRTUAL_MACHINE_INSTANCES, vmi)
            kube.edit(VIRTUAL_MACHINES, namespace, name, {"status": {"printableStatus": "Running", "ready": True}})


def converged(kube: FakeKube, clock: Clock, reconciler: Reconciler) -> None:
    """Passes and the backend until a pass sends nothing, the clock moved past any status held back."""
    for _ in range(10):
        reconciler.reconcile(KEY)
        backend(kube)
        clock.now += 5
        if not [r for r in kube.take_requests() if r[0] != "LIST"]:  # reads (snapshot lookups) are no change
            return
    raise AssertionError("did not converge")


def test_a_new_wukong_gets_its_volumes_and_a_pending_status_and_no_vm_yet(kube, clock):
    kube.put(WUKONGS, wukong(disk("system", "20Gi", image="docker://quay.io/containerdisks/fedora:40", boot=True),
                             disk("data", "50Gi", storageClassName="longhorn")))  # fmt: skip
    reconciler = reconciler_for(kube, clock)
    result = reconciler.reconcile(KEY)
    assert kube.take_requests() == [
        ("POST", "datavolumes", "vm1-system"),
        ("POST", "persistentvolumeclaims", "vm1-data"),
    ]
    assert result.requeue_after == 2.0  # the status waits for the answers to those creates
    assert result.conflict is None and result.error is None
    clock.now += 2.0
    assert reconciler.reconcile(KEY).requeue_after is None
    assert kube.take_requests() == [("PATCH", "wukongs/status", "vm1")]
    assert status_of(kube)["phase"] == "Pending"


def test_once_the_volumes_bound_the_vm_is_created_and_the_detail_is_written_within_the_hold(kube, clock):
    kube.put(WUKONGS, wukong(disk("data", "50Gi", storageClassName="longhorn", boot=True)))
    reconciler = reconciler_for(kube, clock)
    reconciler.reconcile(KEY)
    clock.now += 2.0
    reconciler.reconcile(KEY)
    assert status_of(kube)["phase"] == "Pending"
    backend(kube)  # the claim binds
    kube.take_requests()
    result = reconciler.reconcile(KEY)
    assert kube.take_requests() == [("POST", "virtualmachines", "vm1-vm")]  # Pending -> Creating waits for company
    assert result.requeue_after == 2.0
    clock.now += 1.0
    assert reconciler.reconcile(KEY).requeue_after == 1.0  # the hold counts from when the change was first seen
    clock.now += 1.0
    reconciler.reconcile(KEY)
    assert kube.take_requests() == [("PATCH", "wukongs/status", "vm1")]
    assert status_of(kube)["phase"] == "Creating"


def test_a_converged_wukong_costs_no_request(kube, clock):
    kube.put(WUKONGS, wukong(disk("data", "50Gi", storageClassName="longhorn", boot=True)))
    reconciler = reconciler_for(kube, clock)
    converged(kube, clock, reconciler)
    assert status_of(kube)["phase"] == "Running"
    assert reconciler.reconcile(KEY).requeue_after is None
    assert kube.take_requests() == []


def test_a_grown_disk_patches_its_claim_tells_and_reports_resizing(kube, clock):
    kube.put(WUKONGS, wukong(disk("data", "50Gi", storageClassName="longhorn", boot=True)))
    reconciler = reconciler_for(kube, clock)
    converged(kube, clock, reconciler)
    kube.edit(WUKONGS, *KEY, {"spec": {"disks": [disk("data", "80Gi", storageClassName="longhorn", boot=True)]}})
    assert reconciler.reconcile(KEY).requeue_after == 2.0
    assert kube.take_requests() == [("PATCH", "persistentvolumeclaims", "vm1-data"), ("POST", "events", "Expanding")]
    clock.now += 2.0
    reconciler.reconcile(KEY)
    assert kube.take_requests() == [("PATCH", "wukongs/status", "vm1")]
    assert kube.objects[("persistentvolumeclaims", *KEY[:1], "vm1-data")]["spec"]["resources"]["requests"] == {
        "storage": "80Gi"
    }
    assert condition(kube, "Resizing")["status"] == "True"
    assert condition(kube, "Resizing")["message"] == "data: 50Gi -> 80Gi"


def test_more_cpu_for_a_running_vm_updates_it_and_says_a_restart_applies_it(kube, clock):
    kube.put(WUKONGS, wukong(disk("data", "50Gi", storageClassName="longhorn", boot=True)))
    reconciler = reconciler_for(kube, clock)
    converged(kube, clock, reconciler)
    kube.edit(WUKONGS, *KEY, {"spec": {"cpu": 4}})
    reconciler.reconcile(KEY)
    assert kube.take_requests() == [("PATCH", "virtualmachines", "vm1-vm"), ("POST", "events", "Updated")]
    clock.now += 2.0
    reconciler.reconcile(KEY)
    assert kube.take_requests() == [("PATCH", "wukongs/status", "vm1")]
    judged = {"type": "RestartRequired", "status": "True", "message": "a non-live-updatable field was changed"}
    kube.edit(VIRTUAL_MACHINES, "default", "vm1-vm", {"status": {"conditions": [judged]}})  # KubeVirt's verdict
    reconciler.reconcile(KEY)
    assert kube.take_requests() == [("PATCH", "wukongs/status", "vm1"), ("POST", "events", "RestartRequired")]
    restart = condition(kube, "RestartRequired")
    assert restart["status"] == "True"
    assert restart["message"].startswith("cpu 2→4; restart the VM to apply")
    assert kube.objects[("virtualmachines", "default", "vm1-vm")]["spec"]["template"]["spec"]["domain"]["cpu"] == {
        "cores": 4
    }


def test_a_same_named_claim_it_does_not_own_is_left_alone_read_again_only_and_reported(kube, clock):
    kube.put(PVCS, {"metadata": {"name": "vm1-data", "namespace": "default"}, "spec": {"resources": {}}})
    kube.put(WUKONGS, wukong(disk("data", "50Gi", storageClassName="longhorn", boot=True)))
    reconciler = reconciler_for(kube, clock)
    reconciler.reconcile(KEY)  # not ours, so not in the cache: the create finds it
    assert kube.take_requests() == [
        ("POST", "persistentvolumeclaims", "vm1-data"),
        ("GET", "persistentvolumeclaims", "vm1-data"),
    ]
    clock.now += 2.0
    reconciler.reconcile(KEY)  # known to be another's: read, never created again
    assert kube.take_requests() == [
        ("GET", "persistentvolumeclaims", "vm1-data"),
        ("PATCH", "wukongs/status", "vm1"),
        ("POST", "events", "NameConflict"),
    ]
    degraded = condition(kube, "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "NameConflict")
    assert "PersistentVolumeClaim vm1-data exists and is not owned by this Wukong" in degraded["message"]
    assert "ownerReferences" not in kube.objects[("persistentvolumeclaims", "default", "vm1-data")]["metadata"]


def test_a_stale_write_ends_the_pass_as_a_conflict_to_retry_not_an_error(kube, clock):
    kube.put(WUKONGS, wukong(disk("data", "50Gi", storageClassName="longhorn", boot=True)))
    reconciler = reconciler_for(kube, clock)
    converged(kube, clock, reconciler)
    kube.edit(WUKONGS, *KEY, {"spec": {"cpu": 4}})
    kube.fail_next("PATCH", "virtualmachines", Conflict(409, "Conflict", "the object has been modified"))
    result = reconciler.reconcile(KEY)
    assert kube.take_requests() == [("PATCH", "virtualmachines", "vm1-vm")]  # no status from a pass cut short
    assert result.conflict is not None and result.error is None


def test_a_replica_that_lost_the_lease_of_a_shard_sends_nothing_for_its_wukongs(kube, clock):
    kube.put(WUKONGS, wukong(disk("data", "50Gi", storageClassName="longhorn", boot=True)))
    holder = ShardHolder(kube, "wukong-system", "r-shard", 1, 1, "replica-a", lease_seconds=15, clock=clock)
    holder.step()
    assert holder.owns(*KEY)
    loop = Controller(reconciler_for(kube, clock).reconcile, lambda: [KEY], owns=lambda key: holder.owns(*key))
    # Another replica writes the Lease (this one was cut off): renewals fail until the renew deadline passes.
    kube.edit(LEASES, "wukong-system", "r-shard-0", {"spec": {"holderIdentity": "replica-b", "renewTime": "later"}})
    clock.now += 11
    holder.step()
    assert not holder.owns(*KEY)
    kube.take_requests()
    assert loop.process(KEY) is None
    assert kube.take_requests() == []


def test_a_claim_that_appears_and_vanishes_under_the_pass_ends_it_with_a_retry_not_an_error(kube, clock):
    kube.put(WUKONGS, wukong(disk("data", "50Gi", storageClassName="longhorn", boot=True)))
    kube.fail_next("POST", "persistentvolumeclaims", AlreadyExists(409, "AlreadyExists", "exists"))
    result = reconciler_for(kube, clock).reconcile(KEY)
    assert kube.take_requests() == [
        ("POST", "persistentvolumeclaims", "vm1-data"),
        ("GET", "persistentvolumeclaims", "vm1-data"),
    ]
    assert result.conflict == "PersistentVolumeClaim vm1-data was there and vanished"
    assert result.error is None


def test_a_wukong_waiting_for_its_secret_says_blocked_and_goes_on_once_the_secret_exists(kube, clock):
    kube.put(WUKONGS, wukong(disk("data", "50Gi", storageClassName="longhorn", boot=True), sshKeySecret="keys"))
    reconciler = reconciler_for(kube, clock)
    reconciler.reconcile(KEY)
    backend(kube)  # the claim binds
    clock.now += 2.0
    assert reconciler.reconcile(KEY).requeue_after == BLOCKED_RECHECK_SECONDS  # nothing watched says when it comes
    assert kube.take_requests()[-3:] == [
        ("DRYRUN", "secrets", "keys"),
        ("PATCH", "wukongs/status", "vm1"),
        ("POST", "events", "SSHKeySecretNotFound"),
    ]
    assert status_of(kube)["phase"] == "Blocked"
    ready = condition(kube, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "SSHKeySecretNotFound")
    assert "Secret keys, which does not exist in namespace default" in ready["message"]

    kube.put(SECRETS, {"metadata": {"name": "keys", "namespace": "default"}, "data": {}})
    reconciler.reconcile(KEY)
    assert ("POST", "virtualmachines", "vm1-vm") in kube.take_requests()
    clock.now += 2.0
    reconciler.reconcile(KEY)
    assert kube.take_requests() == [("DRYRUN", "secrets", "keys"), ("PATCH", "wukongs/status", "vm1")]
    assert status_of(kube)["phase"] == "Creating"
    assert condition(kube, "Ready")["message"] == "the virtual machine is starting"
    backend(kube)  # the VM runs (not converged(): every pass asks after the Secret, so none is free of requests)
    reconciler.reconcile(KEY)
    assert status_of(kube)["phase"] == "Running"


# -- snapshotBeforeExpand ----------------------------------------------------------------------------------------
SNAPSHOTS_SERVED = ("snapshot.storage.k8s.io/v1",)


def snapshotted(size: str) -> dict[str, Any]:
    return wukong(disk("data", size, storageClassName="longhorn", boot=True, snapshotBeforeExpand={"keep": 1}))


def test_a_converged_wukong_asking_for_snapshots_only_reads_them_on_a_resync(clock):
    kube = FakeKube(served=SNAPSHOTS_SERVED)
    kube.put(STORAGE_CLASSES, {"metadata": {"name": "longhorn"}, "provisioner": "x", "allowVolumeExpansion": True})
    kube.put(WUKONGS, snapshotted("50Gi"))
    reconciler = reconciler_for(kube, clock)
    converged(kube, clock, reconciler)
    reconciler.reconcile(KEY)
    assert kube.take_requests() == [
        ("LIST", "volumesnapshots", "default"),
        ("LIST", "volumesnapshotclasses", ""),
    ]


def test_a_growth_on_a_cluster_without_the_snapshot_api_waits_degraded_and_rechecks(kube, clock):
    kube.put(WUKONGS, snapshotted("50Gi"))
    reconciler = reconciler_for(kube, clock)
    converged(kube, clock, reconciler)
    kube.edit(WUKONGS, *KEY, {"spec": {"disks": [snapshotted("80Gi")["spec"]["disks"][0]]}})
    result = reconciler.reconcile(KEY)
    assert ("PATCH", "persistentvolumeclaims", "vm1-data") not in kube.take_requests()
    assert condition(kube, "Degraded")["reason"] == "SnapshotClassNotFound"
    assert "serves no VolumeSnapshot API" in condition(kube, "Degraded")["message"]
    assert result.requeue_after == 15.0  # a class or the API installed is not watched
