"""What one pass sees: a Wukong, its children and the StorageClasses, and each disk's volume read from them.

Shared by planning (what to write) and status (what to report), so both read the world the same way. Pure:
the controller fills an ``Observed`` from its informer caches and folds the results of its writes back in.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from reconciler import children
from wukong import api, policy
from wukong.image import ImageError, parse_image
from wukong.manifests import Obj
from wukong.naming import vm_name, volume_name
from wukong.quantity import Quantity, QuantityError, parse
from wukong.spec import Disk, WukongSpec
from wukong.storageclass import StorageClass

Kind = Literal["PersistentVolumeClaim", "DataVolume", "VirtualMachine", "NetworkAttachmentDefinition"]
VolumeKind = Literal["PersistentVolumeClaim", "DataVolume"]
SPENT = "acknowledgementSpent"  # status.volumes[]: the annotation naming the disk no longer authorises a new volume
_FIELD_OF_KIND: dict[str, str] = {"PersistentVolumeClaim": "pvcs", "DataVolume": "data_volumes"}
BIND_COMPLETED = "pv.kubernetes.io/bind-completed"  # set by Kubernetes' binder once a claim bound


@dataclass(frozen=True)
class Observed:
    wukong: Obj
    pvcs: Mapping[str, Obj] = field(default_factory=dict)  # by name, in the Wukong's namespace
    data_volumes: Mapping[str, Obj] = field(default_factory=dict)
    vm: Obj | None = None
    vmi: Obj | None = None  # KubeVirt's running instance of the VM: where it runs
    storage_classes: Mapping[str, StorageClass] = field(default_factory=dict)
    conflicts: Mapping[str, str] = field(default_factory=dict)  # object name -> why it is not ours
    # Asked per pass, never watched (the reconciler holds no cache of Secrets or of other teams' networks):
    secrets: Mapping[str, bool] = field(default_factory=dict)  # Secret name -> exists (metadata only)
    nads: Mapping[str, Obj | None] = field(default_factory=dict)  # NetworkAttachmentDefinition name -> it, or None
    multus: bool | None = None  # NetworkAttachmentDefinitions served; None: not asked (no networks)
    policy_scope: policy.Scope | None = None  # the WukongPolicies on the namespace; None: none known (built-ins only)

    @functools.cached_property
    def spec(self) -> WukongSpec:
        """Read once per observation: planning and status ask for it dozens of times in a pass (the 1,000-Wukong
        profile showed its re-reading at 3 % of the reconciler's samples)."""
        return WukongSpec.from_object(self.wukong)

    @functools.cached_property
    def refused_networks(self) -> dict[str, str]:
        """Network name -> why the WukongPolicies on the namespace (or the built-in rules) refuse what it asks for.
        Admission refuses the same; asked again here because a Wukong may have been stored while the webhook was
        bypassed or before a policy changed: such a network's NetworkAttachmentDefinition is neither made nor
        changed, and another namespace's is not even looked up. Judged once per observation."""
        if not self.spec.networks:
            return {}
        scope = self.policy_scope or policy.Scope.of((), self.namespace)
        refused = {}
        for index, network in enumerate(self.spec.networks):
            denied = [v for v in scope.network(f"spec.networks[{index}]", network) if v.action == policy.DENY]
            if denied:
                refused[network.name] = f"{denied[0].path}: {denied[0].detail}"
        return refused

    @property
    def name(self) -> str:
        return str(self.wukong["metadata"]["name"])

    @property
    def namespace(self) -> str:
        return str(self.wukong["metadata"]["namespace"])

    @property
    def uid(self) -> str:
        return str(self.wukong["metadata"]["uid"])

    def with_child(self, kind: Kind, obj: Obj) -> Observed:
        """The observation after a child was created or changed."""
        if kind == "VirtualMachine":
            return dataclasses.replace(self, vm=obj)
        if kind == "NetworkAttachmentDefinition":
            return dataclasses.replace(self, nads={**self.nads, obj["metadata"]["name"]: obj})
        name = _FIELD_OF_KIND[kind]
        changes: dict[str, Any] = {name: {**getattr(self, name), obj["metadata"]["name"]: obj}}
        return dataclasses.replace(self, **changes)

    def without_child(self, kind: VolumeKind, object_name: str) -> Observed:
        """The observation after a volume stopped being this Wukong's (released)."""
        name = _FIELD_OF_KIND[kind]
        changes: dict[str, Any] = {name: {n: o for n, o in getattr(self, name).items() if n != object_name}}
        return dataclasses.replace(self, **changes)

    def with_conflict(self, object_name: str, why: str) -> Observed:
        return dataclasses.replace(self, conflicts={**self.conflicts, object_name: why})

    def recorded(self, disk: str) -> Mapping[str, Any]:
        """The disk's entry in the status last written: the record of a volume that survives the volume itself."""
        entries = lookup(self.wukong, "status", "volumes")
        found = [e for e in entries or [] if isinstance(e, Mapping) and e.get("name") == disk]
        return found[0] if found else {}

    @functools.cached_property
    def recreate_lost(self) -> frozenset[str]:
        """The disks whose lost volume the user said may be created anew (``recreate-lost-volumes``)."""
        annotations = lookup(self.wukong, "metadata", "annotations") or {}
        text = annotations.get(api.RECREATE_LOST_VOLUMES_ANNOTATION) or ""
        return frozenset(name.strip() for name in str(text).split(",") if name.strip())


@dataclass(frozen=True)
class Volume:
    """One disk's volume as it is: a PVC, or a DataVolume and the PVC CDI made for it."""

    disk: Disk
    name: str
    source: Literal["pvc", "dataVolume"]
    pvc: Obj | None
    data_volume: Obj | None
    conflict: str | None = None
    retained: bool = False  # released by an earlier Wukong of this name, fit to be taken back
    lost: bool = False  # its claim bound once (the status says so) and is gone: never silently re-created
    recreate: bool = False  # lost, and the user asked for a new volume after the loss (see status.py)

    @property
    def own(self) -> Obj | None:
        """The object this Wukong holds for the disk: the DataVolume, else the PVC (also the one a collected
        DataVolume left)."""
        return self.data_volume if self.source == "dataVolume" and not self.collected else self.pvc

    @property
    def collected(self) -> bool:
        """CDI garbage-collected the disk's DataVolume after its import succeeded: the PVC it left (no longer
        the DataVolume's, the importer's success recorded on it) holds the imported data and is the volume."""
        pvc = self.pvc
        if self.source != "dataVolume" or self.data_volume is not None or pvc is None or children.made_by_cdi(pvc):
            return False
        metadata = pvc.get("metadata") or {}
        return (metadata.get("annotations") or {}).get(api.CDI_POD_PHASE) == "Succeeded" and (
            metadata.get("labels") or {}
        ).get(api.DISK_LABEL) == self.disk.name

    @property
    def exists(self) -> bool:
        return self.pvc is not None or self.data_volume is not None

    @property
    def desired(self) -> Quantity | None:
        return quantity(self.disk.size)

    @property
    def requested(self) -> Quantity | None:
        if self.pvc is not None:
            return quantity(lookup(self.pvc, "spec", "resources", "requests", "storage"))
        if self.data_volume is not None:
            return quantity(lookup(self.data_volume, "spec", "storage", "resources", "requests", "storage"))
        return None

    @property
    def capacity(self) -> Quantity | None:
        return quantity(lookup(self.pvc, "status", "capacity", "storage")) if self.pvc else None

    @property
    def storage_class(self) -> str:
        return lookup(self.pvc, "spec", "storageClassName") or ""

    @property
    def pvc_bound(self) -> bool:
        return bool(lookup(self.pvc, "status", "phase") == "Bound")

    @property
    def holder(self) -> Obj | None:
        """The object holding the disk's data now, whatever the disk asks for: its DataVolume, else its PVC."""
        return self.data_volume if self.data_volume is not None else self.pvc

    @property
    def deleting(self) -> bool:
        return any(lookup(o, "metadata", "deletionTimestamp") for o in (self.pvc, self.data_volume))

    @property
    def ever_bound(self) -> bool:
        """Whether the claim ever bound to a PersistentVolume: then it may hold data and is never replaced.
        A lost volume had bound: the record stays until a new volume is made on the user's say."""
        if self.lost:
            return True
        pvc = self.pvc
        if pvc is not None and (
            lookup(pvc, "spec", "volumeName")
            or lookup(pvc, "status", "phase") in ("Bound", "Lost")
            or BIND_COMPLETED in (lookup(pvc, "metadata", "annotations") or {})
        ):
            return True
        return bool(lookup(self.data_volume, "status", "phase") == "Succeeded")

    @property
    def held_class(self) -> str | None:
        """The StorageClass the existing volume asked for (None when it names none)."""
        if self.data_volume is not None:
            spec = lookup(self.data_volume, "spec") or {}
            found = lookup(spec, "storage", "storageClassName") or lookup(spec, "pvc", "storageClassName")
        else:
            found = lookup(self.pvc, "spec", "storageClassName")
        return found if isinstance(found, str) else None

    @property
    def mismatch(self) -> str | None:
        """How the existing volume differs from what the disk now asks for (class, image, blank or not), or None.
        Only a volume that never bound can be replaced to match; status.py reports the others."""
        held, disk = self.holder, self.disk
        if held is None or self.conflict or self.retained:
            return None
        if self.source == "pvc" and self.data_volume is not None:
            return "it was imported from an image and the disk is now blank"
        if self.source == "dataVolume" and self.data_volume is None and not self.collected:
            return f"it is a blank PersistentVolumeClaim and the disk now asks for image {disk.image}"
        if disk.storage_class and self.held_class != disk.storage_class:
            return f"its StorageClass is {self.held_class or '(none)'} and the disk asks for {disk.storage_class}"
        if self.data_volume is not None and disk.image and _image_url(disk.image) != _source_url(self.data_volume):
            return f"it was imported from {_source_url(self.data_volume)} and the disk asks for {disk.image}"
        return None

    def bound(self, classes: Mapping[str, StorageClass]) -> bool:
        """Ready to attach: Bound, or Pending on a WaitForFirstConsumer class (the VM is the first consumer)."""
        if self.conflict or self.retained or self.lost or self.deleting or (self.mismatch and not self.ever_bound):
            return False  # not ours, not yet taken back, lost, or about to be replaced
        if self.data_volume is not None:
            return lookup(self.data_volume, "status", "phase") in ("Succeeded", "WaitForFirstConsumer")
        if self.pvc is None:
            return False
        if self.pvc_bound:
            return True
        storage_class = classes.get(self.storage_class)
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
        volume = Volume(disk, name, source, pvc, dv)
        found = observed.conflicts.get(name) or _conflict(observed, volume)
        if found == _RETAINED:
            result.append(dataclasses.replace(volume, retained=True))
        elif pvc is None and not found and _had_bound(observed, volume) and _imported_or_none(dv):
            asked = disk.name in observed.recreate_lost and not observed.recorded(disk.name).get(SPENT)
            result.append(dataclasses.replace(volume, lost=True, recreate=asked))
        else:
            result.append(dataclasses.replace(volume, conflict=found))
    return result


def _imported_or_none(data_volume: Obj | None) -> bool:
    """A claim is missing from a disk that has no DataVolume, or one whose import finished -- not from a new
    DataVolume whose import is under way (the new volume asked for: CDI makes its claim)."""
    return data_volume is None or lookup(data_volume, "status", "phase") == "Succeeded"


def _had_bound(observed: Observed, volume: Volume) -> bool:
    """The status last written says this disk's claim had bound (the claim itself cannot: it is gone)."""
    entry = observed.recorded(volume.disk.name)
    return entry.get("everBound") is True and entry.get("pvcName") in (None, volume.name)


_RETAINED = "retained"


def _conflict(observed: Observed, volume: Volume) -> str | None:
    """A same-named object this Wukong does not own is never modified -- unless it is a volume an earlier Wukong
    of this name retained and it fits the disk; then it is taken back (``_RETAINED``)."""
    name, pvc, dv = volume.name, volume.pvc, volume.data_volume
    kind, found = ("DataVolume", dv) if dv is not None else ("PersistentVolumeClaim", pvc)
    if found is None or children.is_ours(found, observed.uid):
        return None
    if kind == "PersistentVolumeClaim" and _owned_by_data_volume(found, dv):
        return None  # CDI's PVC belongs to the DataVolume
    if not _retained_by_this_name(observed, found):
        return f"{kind} {name} exists and is not owned by this Wukong"
    misfit = _misfit(volume, kind, found)
    if misfit:
        return f"{kind} {name} was retained from an earlier Wukong {observed.name} but {misfit}; it is left alone"
    return _RETAINED


def _retained_by_this_name(observed: Observed, obj: Obj) -> bool:
    metadata = obj.get("metadata") or {}
    labels = metadata.get("labels") or {}
    came_from = labels.get(api.RELEASED_FROM_LABEL) or labels.get(api.WUKONG_LABEL)
    return (
        labels.get(api.MANAGED_BY_LABEL) == api.MANAGED_BY
        and came_from == observed.name
        and not children.wukong_references(obj)  # still owned: the garbage collector may be deleting it
        and not metadata.get("deletionTimestamp")
    )


def _misfit(volume: Volume, kind: str, obj: Obj) -> str | None:
    """Why a retained volume cannot serve this disk, or None when it can (same kind, disk, class; not larger)."""
    disk = volume.disk
    wanted_kind = "DataVolume" if volume.source == "dataVolume" else "PersistentVolumeClaim"
    if kind != wanted_kind:
        return f"it is a {kind} and the disk asks for a {wanted_kind}"
    held = (lookup(obj, "metadata", "labels") or {}).get(api.DISK_LABEL)
    if held != disk.name:
        return f"it held disk {held}, not {disk.name}"
    storage = lookup(obj, "spec", "storage") if kind == "DataVolume" else lookup(obj, "spec")
    storage_class = lookup(storage, "storageClassName")
    if disk.storage_class and storage_class != disk.storage_class:
        return f"its StorageClass is {storage_class}, not {disk.storage_class}"
    requested, desired = volume.requested, volume.desired
    if requested is not None and desired is not None and requested > desired:
        return f"it holds {requested}, more than the {disk.size} asked for"
    if kind == "DataVolume" and disk.image and disk.image not in str(lookup(obj, "spec", "source")):
        return f"it was imported from another image than {disk.image}"
    return None


def _owned_by_data_volume(pvc: Obj, dv: Obj | None) -> bool:
    if dv is None:
        return False
    uid = dv["metadata"].get("uid")
    return any(ref.get("uid") == uid for ref in pvc["metadata"].get("ownerReferences") or [])


def expandable(observed: Observed, volume: Volume) -> bool:
    """Whether the volume's StorageClass allows expansion (unknown classes do not)."""
    storage_class = observed.storage_classes.get(volume.storage_class)
    return storage_class is not None and storage_class.allow_volume_expansion


def vm_conflict(observed: Observed) -> str | None:
    name = vm_name(observed.name)
    if name in observed.conflicts:
        return observed.conflicts[name]
    if observed.vm is not None and not children.is_owned_by(observed.vm, observed.uid):
        return f"VirtualMachine {name} exists and is not owned by this Wukong"
    return None


def _image_url(image: str) -> str | None:
    try:
        return parse_image(image).url
    except ImageError:
        return None


def _source_url(data_volume: Obj) -> str | None:
    source = lookup(data_volume, "spec", "source") or {}
    return next((s.get("url") for s in source.values() if isinstance(s, Mapping) and s.get("url")), None)


def quantity(text: Any) -> Quantity | None:
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
