"""What the reconciler's caches keep (reconciler/caching.py) is all a pass reads: the same passes over the stripped
objects send the same requests and write the same statuses as over the objects the API server sends."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kubeclient.resources import DATA_VOLUMES, PVCS, STORAGE_CLASSES, VIRTUAL_MACHINE_INSTANCES, VIRTUAL_MACHINES
from kubeclient.transforms import LAST_APPLIED
from reconciler.caching import CacheTransforms
from reconciler.events import EventRecorder
from reconciler.lookups import Lookups
from reconciler.reconcile import Caches, Reconciler, Store
from reconciler.statuswrites import StatusWrites
from tests.bodies import _fields
from tests.builders import disk, wukong
from tests.fakekube import FakeKube
from wukong import api, policy
from wukong.api import WUKONGS

KEY = ("default", "vm1")
IMAGE = "docker://quay.io/containerdisks/fedora:40"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Transformed:
    """An informer's cache that keeps only what ``transform`` leaves of each object."""

    def __init__(self, store: Store, transform: Any) -> None:
        self.store, self.transform = store, transform

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        found = self.store.get(namespace, name)
        return None if found is None else self.transform(found)

    def by_label(self, namespace: str, value: str, label: str | None = None) -> list[dict[str, Any]]:
        return [self.transform(o) for o in self.store.by_label(namespace, value, label)]

    def items(self) -> list[dict[str, Any]]:
        return [self.transform(o) for o in self.store.items()]


def as_stored(kube: FakeKube) -> None:
    """What the API server and the other controllers add that no pass reads: managedFields on everything, kubectl's
    last-applied copy on the Wukong, and the rest of KubeVirt's status of an instance."""
    for (plural, _, _), obj in kube.objects.items():
        metadata = obj["metadata"]
        metadata["managedFields"] = [
            {"manager": "someone", "operation": "Update", "fieldsType": "FieldsV1", "fieldsV1": _fields(obj)}
        ]
        if plural == "wukongs":
            metadata.setdefault("annotations", {})[LAST_APPLIED] = '{"apiVersion":"vm.novasphere.dev/v1alpha1"}'
        if plural == "virtualmachineinstances":
            obj["status"] |= {
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "True"}, {"type": "LiveMigratable", "status": "False"}],
                "interfaces": [{"name": "default", "ipAddress": "10.244.0.7", "mac": "02:00:00:00:00:01"}],
                "guestOSInfo": {"id": "fedora", "kernelRelease": "6.8.5"},
                "launcherContainerImageVersion": "quay.io/kubevirt/virt-launcher:v1.3.0",
                "migrationMethod": "BlockMigration",
                "qosClass": "Burstable",
                "volumeStatus": [{"name": "system", "target": "vda", "phase": "Ready"}],
            }


def cluster(kube: FakeKube) -> None:
    """CDI, the provisioner and KubeVirt, as far as a pass can tell: claims bind, DataVolumes import through a
    claim of CDI's, the VM runs as its template says."""
    for (plural, namespace, name), obj in list(kube.objects.items()):
        status = obj.get("status") or {}
        if plural == "datavolumes" and status.get("phase") != "Succeeded":
            labels = copy.deepcopy(obj["metadata"].get("labels") or {})
            reference = {"kind": "DataVolume", "name": name, "uid": obj["metadata"]["uid"], "controller": True}
            size = obj["spec"]["storage"]["resources"]["requests"]["storage"]
            claim = {
                "metadata": {"name": name, "namespace": namespace, "labels": labels, "ownerReferences": [reference]},
                "spec": {"resources": {"requests": {"storage": size}}, "storageClassName": "longhorn"},
                "status": {"phase": "Bound", "capacity": {"storage": size}},
            }
            kube.put(PVCS, claim)
            running = {"type": "Running", "status": "False", "reason": "Completed", "message": "Import Complete"}
            kube.edit(DATA_VOLUMES, namespace, name, {"status": {"phase": "Succeeded", "conditions": [running]}})
        if plural == "persistentvolumeclaims" and status.get("phase") != "Bound":
            size = obj["spec"]["resources"]["requests"]["storage"]
            change = {"spec": {"volumeName": f"pv-{name}"}, "status": {"phase": "Bound", "capacity": {"storage": size}}}
            kube.edit(PVCS, namespace, name, change)
        if plural == "virtualmachines" and ("virtualmachineinstances", namespace, name) not in kube.objects:
            template = obj["spec"]["template"]
            vmi = {"metadata": {"name": name, "namespace": namespace, **copy.deepcopy(template["metadata"])},
                   "spec": copy.deepcopy(template["spec"]), "status": {"nodeName": "node-1"}}  # fmt: skip
            kube.put(VIRTUAL_MACHINE_INSTANCES, vmi)
            kube.edit(VIRTUAL_MACHINES, namespace, name, {"status": {"printableStatus": "Running", "ready": True}})


def passes(kept: CacheTransforms | None) -> list[tuple[list, dict]]:
    """A Wukong created, converged, grown, given more CPU, judged by KubeVirt to need a restart: every pass's requests
    and the status after it."""
    kube, clock = FakeKube(), Clock()
    kube.put(STORAGE_CLASSES, {"metadata": {"name": "longhorn"}, "provisioner": "x", "allowVolumeExpansion": True})
    managed = (api.MANAGED_BY_LABEL, api.MANAGED_BY)

    def cache(store: Store, instances: bool = False) -> Store:
        if kept is None:
            return store
        return Transformed(store, kept.instances if instances else kept.default)

    caches = Caches(
        cache(kube.store(WUKONGS)),
        cache(kube.store(PVCS, *managed)),
        cache(kube.store(DATA_VOLUMES, *managed)),
        cache(kube.store(VIRTUAL_MACHINES, *managed)),
        cache(kube.store(VIRTUAL_MACHINE_INSTANCES, api.WUKONG_LABEL), instances=True),
        cache(kube.store(STORAGE_CLASSES)),
    )
    lookups = Lookups(kube, lambda namespace: policy.Scope.of((), namespace), clock)
    reconciler = Reconciler(kube, caches, lookups, EventRecorder(kube, "test", clock), StatusWrites(clock=clock))
    system = disk("system", "20Gi", image=IMAGE, boot=True)
    kube.put(WUKONGS, wukong(system, disk("data", "50Gi", storageClassName="longhorn")))
    log = []

    def step(times: int) -> None:
        for _ in range(times):
            as_stored(kube)
            reconciler.reconcile(KEY)
            log.append((kube.take_requests(), copy.deepcopy(kube.objects[("wukongs", *KEY)].get("status"))))
            cluster(kube)
            clock.now += 5

    step(5)
    grown = [system, disk("data", "80Gi", storageClassName="longhorn")]
    kube.edit(WUKONGS, *KEY, {"spec": {"cpu": 4, "disks": grown}})
    step(3)
    judged = {"type": "RestartRequired", "status": "True", "message": "a non-live-updatable field was changed"}
    kube.edit(VIRTUAL_MACHINES, "default", "vm1-vm", {"status": {"conditions": [judged]}})
    step(3)
    return log


def test_passes_over_the_cached_objects_send_and_write_what_passes_over_the_stored_ones_do(monkeypatch):
    monkeypatch.setattr("reconciler.reconcile.now", lambda: "2026-01-01T00:00:00Z")
    full, stripped = passes(None), passes(CacheTransforms())
    assert stripped == full
    written = [status for _, status in full if status]
    assert written[-1]["phase"] == "Running" and written[-1]["nodeName"] == "node-1"
    restart = next(c for c in written[-1]["conditions"] if c["type"] == "RestartRequired")
    assert restart["status"] == "True" and restart["message"].startswith("cpu 2→4")
    requests = [r for batch, _ in full for r in batch]
    assert ("PATCH", "persistentvolumeclaims", "vm1-data") in requests  # the growth was seen in both


@pytest.mark.parametrize("instances", [False, True], ids=["a child", "an instance"])
def test_a_cached_object_has_no_managed_fields_nor_last_applied_copy(instances):
    kube = FakeKube()
    kube.put(WUKONGS, wukong(disk("data")))
    vmi = {"metadata": {"name": "vm1-vm", "namespace": "default"}, "spec": {}, "status": {"nodeName": "node-1"}}
    kube.put(VIRTUAL_MACHINE_INSTANCES, vmi)
    as_stored(kube)
    kept = CacheTransforms()
    plural = "virtualmachineinstances" if instances else "wukongs"
    stored = next(o for (p, _, _), o in kube.objects.items() if p == plural)
    cached = (kept.instances if instances else kept.default)(copy.deepcopy(stored))
    assert "managedFields" not in cached["metadata"] and LAST_APPLIED not in cached["metadata"].get("annotations", {})
    assert cached["spec"] == stored["spec"]
    if instances:
        assert cached["status"] == {"nodeName": "node-1", "phase": "Running"}
