"""Pure planning: from the observed state of one Wukong and its children to the writes that converge it.

``volumes(observed)`` reads each disk's volume as it is; ``plan(observed)`` lists the actions to take.
Neither does I/O, so every rule of SPEC section 4 is unit-tested here without an API server; the
controller executes the actions, folds the results back into the observation, and derives the status
from that (see status.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from reconciler import children
from wukong import api
from wukong.naming import vm_name, volume_name
from wukong.quantity import Quantity, QuantityError, parse
from wukong.spec import Disk, WukongSpec
from wukong.storageclass import StorageClass

Obj = dict[str, Any]
Kind = Literal["PersistentVolumeClaim", "DataVolume", "VirtualMachine"]


@dataclass(frozen=True)
class Observed:
    wukong: Obj
    pvcs: Mapping[str, Obj] = field(default_factory=dict)  # by name, in the Wukong's namespace
    data_volumes: Mapping[str, Obj] = field(default_factory=dict)
    vm: Obj | None = None
    vmi: Obj | None = None  # KubeVirt's running instance of the VM: where it runs
    storage_classes: Mapping[str, StorageClass] = field(default_factory=dict)
    conflicts: Mapping[str, str] = field(default_factory=dict)  # object name -> why it is not ours

    @property
    def spec(self) -> WukongSpec:
        return WukongSpec.from_object(self.wukong)

    @property
    def name(self) -> str:
        return self.wukong["metadata"]["name"]

    @property
    def uid(self) -> str:
        return self.wukong["metadata"]["uid"]


# -- actions ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Create:
    kind: Kind
    object: Obj
    disk: str | None = None


@dataclass(frozen=True)
class Expand:
    pvc: str
    disk: str
    size: str
    previous: str


@dataclass(frozen=True)
class Release:
    kind: Kind
    name: str
    disk: str
    patch: Obj


@dataclass(frozen=True)
class UpdateVM:
    patch: Obj


Action = Create | Expand | Release | UpdateVM


# -- what each disk's volume looks like ------------------------------------------------------------------
@dataclass(frozen=True)
class Volume:
    disk: Disk
    name: str
    source: Literal["pvc", "dataVolume"]
    pvc: Obj | None
    data_volume: Obj | None
    conflict: str | None = None

    @property
    def exists(self) -> bool:
        return self.pvc is not None or self.data_volume is not None

    @property
    def desired(self) -> Quantity | None:
        return _quantity(self.disk.size)

    @property
    def requested(self) -> Quantity | None:
        if self.pvc is not None:
            return _quantity(lookup(self.pvc, "spec", "resources", "requests", "storage"))
        if self.data_volume is not None:
            return _quantity(lookup(self.data_volume, "spec", "storage", "resources", "requests", "storage"))
        return None

    @property
    def capacity(self) -> Quantity | None:
        return _quantity(lookup(self.pvc, "status", "capacity", "storage")) if self.pvc else None

    @property
    def pvc_bound(self) -> bool:
        return lookup(self.pvc, "status", "phase") == "Bound"

    def bound(self, classes: Mapping[str, StorageClass]) -> bool:
        """Ready to attach: Bound, or Pending on a WaitForFirstConsumer class (the VM is the first consumer)."""
        if self.conflict:
            return False
        if self.data_volume is not None:
            return lookup(self.data_volume, "status", "phase") in ("Succeeded", "WaitForFirstConsumer")
        if self.pvc is None:
            return False
        if self.pvc_bound:
            return True
        storage_class = classes.get(lookup(self.pvc, "spec", "storageClassName") or "")
        return lookup(self.pvc, "status", "phase") in (None, "Pending") and bool(
            storage_class and storage_class.waits_for_first_consumer
        )

    @property
    def failure(self) -> str | None:
        if lookup(self.data_volume, "status", "phase") == "Failed":
            reasons = [
                c.get("message") for c in lookup(self.data_volume, "status", "conditions") or [] if c.get("message")
            ]
            return f"DataVolume {self.name} failed" + (f": {reasons[-1]}" if reasons else "")
        if lookup(self.pvc, "status", "phase") == "Lost":
            return f"PersistentVolumeClaim {self.name} lost its PersistentVolume"
        return None


def volumes(observed: Observed) -> list[Volume]:
    result = []
    for disk in observed.spec.disks:
        name = volume_name(observed.name, disk.name)
        pvc, dv = observed.pvcs.get(name), observed.data_volumes.get(name)
        source: Literal["pvc", "dataVolume"] = "dataVolume" if disk.image else "pvc"
        conflict = observed.conflicts.get(name) or _conflict(observed, source, name, pvc, dv)
        result.append(Volume(disk, name, source, pvc, dv, conflict))
    return result


def _conflict(observed: Observed, source: str, name: str, pvc: Obj | None, dv: Obj | None) -> str | None:
    """A same-named object this Wukong does not own is never adopted or modified."""
    if dv is not None and not children.is_owned_by(dv, observed.uid):
        return f"DataVolume {name} exists and is not owned by this Wukong"
    if source == "dataVolume" and dv is not None:
        return None  # CDI's PVC belongs to the DataVolume
    if pvc is not None and not children.is_owned_by(pvc, observed.uid) and not _owned_by_data_volume(pvc, dv):
        return f"PersistentVolumeClaim {name} exists and is not owned by this Wukong"
    return None


def _owned_by_data_volume(pvc: Obj, dv: Obj | None) -> bool:
    if dv is None:
        return False
    uid = dv["metadata"].get("uid")
    return any(ref.get("uid") == uid for ref in pvc["metadata"].get("ownerReferences") or [])


# -- the plan --------------------------------------------------------------------------------------------
def plan(observed: Observed) -> list[Action]:
    actions: list[Action] = []
    current = volumes(observed)
    for volume in current:
        actions.extend(_volume_actions(observed, volume))
    actions.extend(_releases(observed))
    actions.extend(_vm_actions(observed, current))
    return actions


def _volume_actions(observed: Observed, volume: Volume) -> list[Action]:
    if volume.conflict:
        return []
    if not volume.exists:
        if volume.source == "dataVolume":
            return [Create("DataVolume", children.data_volume(observed.wukong, volume.disk), volume.disk.name)]
        return [
            Create(
                "PersistentVolumeClaim",
                children.persistent_volume_claim(observed.wukong, volume.disk),
                volume.disk.name,
            )
        ]
    desired, requested = volume.desired, volume.requested
    if volume.pvc is None or desired is None or requested is None or not desired > requested:
        return []  # a shrink is never patched: status.py reports it as ShrinkRefused
    if not volume.pvc_bound or not expandable(observed, volume):
        return []  # only bound claims on expandable classes can grow; status.py says why it waits
    return [Expand(volume.name, volume.disk.name, volume.disk.size, str(requested))]


def expandable(observed: Observed, volume: Volume) -> bool:
    """Whether the volume's StorageClass allows expansion (unknown classes do not)."""
    storage_class = observed.storage_classes.get(lookup(volume.pvc, "spec", "storageClassName") or "")
    return storage_class is not None and storage_class.allow_volume_expansion


def _releases(observed: Observed) -> list[Action]:
    """Volumes of disks removed from the spec: keep them, drop our ownerReference, label where they came from."""
    wanted = {volume_name(observed.name, d.name) for d in observed.spec.disks}
    actions: list[Action] = []
    for kind, objects in (("DataVolume", observed.data_volumes), ("PersistentVolumeClaim", observed.pvcs)):
        for name, obj in objects.items():
            if name in wanted or not children.is_owned_by(obj, observed.uid):
                continue
            metadata = obj["metadata"]
            references = [r for r in metadata.get("ownerReferences") or [] if r.get("uid") != observed.uid]
            patch = {
                "metadata": {
                    "resourceVersion": metadata.get("resourceVersion"),
                    "ownerReferences": references or None,
                    "labels": {api.WUKONG_LABEL: None, api.RELEASED_FROM_LABEL: observed.name},
                }
            }
            disk = (metadata.get("labels") or {}).get(api.DISK_LABEL, name)
            actions.append(Release(kind, name, disk, patch))  # type: ignore[arg-type]
    return actions


def _vm_actions(observed: Observed, current: list[Volume]) -> list[Action]:
    if not current or not all(v.bound(observed.storage_classes) for v in current) or any(v.failure for v in current):
        return []
    if vm_name(observed.name) in observed.conflicts:
        return []
    desired = children.virtual_machine(observed.wukong, observed.spec)
    vm = observed.vm
    if vm is None:
        return [Create("VirtualMachine", desired)]
    if not children.is_owned_by(vm, observed.uid):
        return []
    wanted_labels = desired["metadata"]["labels"]
    if children.contains(vm.get("spec"), desired["spec"]) and children.contains(
        vm["metadata"].get("labels"), wanted_labels
    ):
        return []
    return [
        UpdateVM(
            {
                "metadata": {"resourceVersion": vm["metadata"].get("resourceVersion"), "labels": wanted_labels},
                "spec": desired["spec"],
            }
        )
    ]


def vm_conflict(observed: Observed) -> str | None:
    name = vm_name(observed.name)
    if name in observed.conflicts:
        return observed.conflicts[name]
    if observed.vm is not None and not children.is_owned_by(observed.vm, observed.uid):
        return f"VirtualMachine {name} exists and is not owned by this Wukong"
    return None


def _quantity(text: Any) -> Quantity | None:
    try:
        return parse(text)
    except QuantityError:
        return None


def lookup(obj: Any, *path: str) -> Any:
    """``obj[path[0]][path[1]]...``, or None where a step is missing or not an object."""
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj
