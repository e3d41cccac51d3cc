"""What one pass sees: a Wukong, its children and the StorageClasses, and each disk's volume read from them.

Shared by planning (what to write) and status (what to report), so both read the world the same way. Pure:
the controller fills an ``Observed`` from its informer caches and folds the results of its writes back in.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Literal

from reconciler.ownership import is_ours, is_owned_by, made_by_cdi, wukong_references
from reconciler.volumes import imports_for
from wukong import api, policy
from wukong.manifests import Obj
from wukong.naming import vm_name, volume_name
from wukong.quantity import Quantity, parse_or_none
from wukong.spec import Disk, WukongSpec
from wukong.storageclass import StorageClass

Kind = Literal["PersistentVolumeClaim", "DataVolume", "VirtualMachine", "NetworkAttachmentDefinition", "VolumeSnapshot"]
VolumeKind = Literal["PersistentVolumeClaim", "DataVolume"]
SPENT = "acknowledgementSpent"  # status.volumes[]: the annotation naming the disk no longer authorises a new volume
_FIELD_OF_KIND: dict[str, str] = {"PersistentVolumeClaim": "pvcs", "DataVolume": "data_volumes"}
BIND_COMPLETED = "pv.kubernetes.io/bind-completed"  # set by Kubernetes' binder once a claim bound
# A claim's resize that failed (KEP-1790): the terminal states of status.allocatedResourceStatuses, and the
# conditions the resizer (controller) and the kubelet (node) set on an error
RESIZE_INFEASIBLE = frozenset(
    {"ControllerResizeInfeasible", "NodeResizeInfeasible", "ControllerResizeFailed", "NodeResizeFailed"}
)
RESIZE_ERRORS = frozenset({"ControllerResizeError", "NodeResizeError"})


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
    # Volumes labelled released-from this Wukong's name (by "Kind/name"): kept after their disk was removed (or an
    # earlier Wukong of this name was deleted), still there, still counted as held until someone deletes them.
    released: Mapping[str, Obj] = field(default_factory=dict)
    # Listed per pass for a Wukong that asks for snapshots (or has some recorded); None: not asked, or the cluster
    # serves no VolumeSnapshot API (snapshot.storage.k8s.io/v1) -- ``snapshots_served`` says which.
    snapshots: Mapping[str, Obj] | None = None  # VolumeSnapshots labelled with this Wukong's name, by name
    snapshot_classes: tuple[Obj, ...] | None = None  # every VolumeSnapshotClass
    snapshots_served: bool | None = None
    # (the Wukong, its spec): carried by ``dataclasses.replace`` while the Wukong stays the same object
    parsed: tuple[Obj, WukongSpec] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.parsed is None or self.parsed[0] is not self.wukong:
            object.__setattr__(self, "parsed", (self.wukong, WukongSpec.from_object(self.wukong)))

    @property
    def spec(self) -> WukongSpec:
        """Read once per pass: planning and status ask for it dozens of times (the 1,000-Wukong profile showed its
        re-reading at 3 % of the reconciler's samples), and every write folded back makes a new observation."""
        assert self.parsed is not None
        return self.parsed[1]

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

    @functools.cached_property
    def held_elsewhere(self) -> list[Held]:
        """The volumes this Wukong holds besides its disks' own: released from its name (or ours, of a disk no
        longer in the spec, about to be released), by name. A volume a disk of the spec is named for is that
        disk's (or taken back by it), and a PVC CDI made for a DataVolume is counted as the DataVolume."""
        own = {volume_name(self.name, d.name) for d in self.spec.disks}
        candidates = [
            *(("DataVolume", o, True) for o in self.data_volumes.values()),
            *(("PersistentVolumeClaim", o, True) for o in self.pvcs.values()),
            *((key.partition("/")[0], o, False) for key, o in self.released.items()),
        ]
        found: dict[tuple[str, str], Held] = {}
        for kind, obj, ours in candidates:
            metadata = obj.get("metadata") or {}
            name = str(metadata.get("name") or "")
            if name in own or made_by_cdi(obj) or (ours and not is_ours(obj, self.uid)):
                continue
            spec = obj.get("spec") or {}
            size = quantity(
                lookup(spec, "resources", "requests", "storage")
                or lookup(spec, "storage", "resources", "requests", "storage")
                or lookup(spec, "pvc", "resources", "requests", "storage")
            )
            disk = (metadata.get("labels") or {}).get(api.DISK_LABEL) or name
            if size is not None:
                found[(kind, name)] = Held(disk=str(disk), name=name, kind=kind, size=size)
        return sorted(found.values(), key=lambda h: (h.name, h.kind))

    @functools.cached_property
    def storage_refusals(self) -> dict[str, str]:
        """Disk name -> why no volume is made (or grown) for it: that would take what this Wukong holds -- its
        disks' volumes and the released ones it still holds -- past the strictest deny maxTotalSize. Admission
        refuses the same from what the status records; asked again here, from the volumes themselves, because
        two quick updates (remove a disk, add another) can both pass before the status says what was released."""
        scope = self.policy_scope
        limit = scope.total_size_limit() if scope is not None else None
        if limit is None:
            return {}
        owner, most = limit
        current = volumes(self)
        held = sum((h.size.value for h in self.held_elsewhere), Fraction(0))
        held += sum(
            (r.value for v in current if v.exists and not v.conflict and (r := v.requested) is not None), Fraction(0)
        )
        released = ", ".join(f"{h.kind} {h.name} ({h.size})" for h in self.held_elsewhere[:8]) or "none"
        refusals: dict[str, str] = {}
        for volume in current:
            desired, requested = volume.desired, volume.requested
            if volume.conflict or desired is None or (volume.lost and not volume.recreate):
                continue
            cost = desired.value if not volume.exists else desired.value - (requested.value if requested else 0)
            if cost <= 0 or (volume.exists and volume.pvc is None):
                continue
            if most is None or held + cost > most.value:
                limit_text = "a limit that cannot be read" if most is None else f"the {most}"
                refusals[volume.disk.name] = (
                    f"disk {volume.disk.name} gets no {'more ' if volume.exists else ''}storage: this Wukong holds "
                    f"{Quantity(held).canonical()} (released volumes of removed disks, kept until deleted: "
                    f"{released}), and {Quantity(cost).canonical()} more passes {limit_text} policy "
                    f"{owner} allows one Wukong (storage.maxTotalSize); delete the released volumes no longer "
                    f"needed, or remove the disk"
                )
                continue
            held += cost
        return refusals

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
        if kind == "VolumeSnapshot":
            return dataclasses.replace(self, snapshots={**(self.snapshots or {}), obj["metadata"]["name"]: obj})
        name = _FIELD_OF_KIND[kind]
        changes: dict[str, Any] = {name: {**getattr(self, name), obj["metadata"]["name"]: obj}}
        return dataclasses.replace(self, **changes)

    def without_child(self, kind: VolumeKind, object_name: str) -> Observed:
        """The observation after a volume stopped being this Wukong's (released)."""
        name = _FIELD_OF_KIND[kind]
        changes: dict[str, Any] = {name: {n: o for n, o in getattr(self, name).items() if n != object_name}}
        return dataclasses.replace(self, **changes)

    def with_released(self, kind: VolumeKind, obj: Obj) -> Observed:
        """The observation after one of our volumes was released: gone from ours, still held."""
        released = {**self.released, f"{kind}/{obj['metadata']['name']}": obj}
        return dataclasses.replace(self.without_child(kind, obj["metadata"]["name"]), released=released)

    def without_snapshot(self, name: str) -> Observed:
        """The observation after a VolumeSnapshot was deleted (pruned)."""
        return dataclasses.replace(self, snapshots={n: o for n, o in (self.snapshots or {}).items() if n != name})

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
class Held:
    """A volume a Wukong holds that is not one of its disks' own: released, kept until someone deletes it."""

    disk: str
    name: str
    kind: str
    size: Quantity


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
        if self.source != "dataVolume" or self.data_volume is not None or pvc is None or made_by_cdi(pvc):
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
        if self.import_unfinished:
            return False  # a claim holding a partial import: no guest ever ran on it (see import_unfinished)
        if pvc is not None and (
            lookup(pvc, "spec", "volumeName")
            or lookup(pvc, "status", "phase") in ("Bound", "Lost")
            or BIND_COMPLETED in (lookup(pvc, "metadata", "annotations") or {})
        ):
            return True
        return bool(lookup(self.data_volume, "status", "phase") == "Succeeded")

    @property
    def import_unfinished(self) -> bool:
        """The disk's DataVolume has not finished its first import: its claim may have bound (CDI's importer writes
        into a bound claim, or a populator binds it only at the end) but holds only what the importer wrote so far.
        KubeVirt starts no VM on a DataVolume before it succeeds, and the reconciler makes none before, so no guest
        has written to it: while CDI retries a broken image, the image may still be corrected and the DataVolume
        replaced. A claim whose importer pod succeeded (CDI's annotation on it) or that lost its volume is not."""
        dv, pvc = self.data_volume, self.pvc
        if dv is None or lookup(dv, "status", "phase") == "Succeeded":
            return False
        annotations = lookup(pvc, "metadata", "annotations") or {}
        return annotations.get(api.CDI_POD_PHASE) != "Succeeded" and lookup(pvc, "status", "phase") != "Lost"

    @property
    def import_progress(self) -> str | None:
        """CDI's ``status.progress`` of an import under way ("45.20%", or "N/A" before the importer reports)."""
        progress = lookup(self.data_volume, "status", "progress")
        ok = self.import_unfinished and isinstance(progress, str) and progress
        return _clipped(progress, _SHORT) if ok else None

    @property
    def import_restarts(self) -> int:
        """CDI's ``status.restartCount``: how often the importer pod restarted (CDI retries a failing import
        forever, with the kubelet's back-off)."""
        count = lookup(self.data_volume, "status", "restartCount")
        if not self.import_unfinished or isinstance(count, bool) or not isinstance(count, int) or count <= 0:
            return 0
        return min(count, _INT32_MAX)

    @property
    def import_not_running(self) -> tuple[str, str] | None:
        """(reason, message) of the DataVolume's Running condition when it is False with a reason: why the
        importer is not running (CDI's ``ImagePullFailed``, ``Error``, ``Unschedulable``...)."""
        if not self.import_unfinished:
            return None
        for condition in lookup(self.data_volume, "status", "conditions") or []:
            if isinstance(condition, Mapping) and condition.get("type") == "Running":
                reason, message = condition.get("reason"), condition.get("message")
                if condition.get("status") == "False" and isinstance(reason, str) and reason:
                    return _clipped(reason, _SHORT), _clipped(str(message or ""), _QUOTED)
        return None

    @property
    def expansion_failure(self) -> tuple[str, str] | None:
        """(state, message) when the claim's resize failed: ``status.allocatedResourceStatuses.storage`` is
        ``ControllerResizeInfeasible``/``NodeResizeInfeasible`` (a terminal error: the resizer stops; named
        ``...ResizeFailed`` before Kubernetes 1.31), or a ``ControllerResizeError``/``NodeResizeError`` condition
        stands (the resizer retries). The message is the driver's, from that condition."""
        pvc = self.pvc
        if pvc is None:
            return None
        state = lookup(pvc, "status", "allocatedResourceStatuses", "storage")
        errors = [
            c
            for c in lookup(pvc, "status", "conditions") or []
            if isinstance(c, Mapping) and c.get("type") in RESIZE_ERRORS and c.get("status") == "True"
        ]
        said = "; ".join(str(c.get("message") or c.get("reason") or c.get("type")) for c in errors)
        message = _clipped(said, _QUOTED)
        if isinstance(state, str) and state in RESIZE_INFEASIBLE:
            return state, message
        if errors:
            return str(errors[0]["type"]), message
        return None

    @property
    def recovering(self) -> bool:
        """The disk asks for less than its claim requests after the claim's expansion failed, and more than the
        capacity reached: the request is lowered to it, as Kubernetes allows (KEP-1790: down to, never to or
        below, ``status.capacity``). Not a shrink: the volume never had the size it gives up."""
        desired, requested, capacity = self.desired, self.requested, self.capacity
        if self.expansion_failure is None or desired is None or requested is None or capacity is None:
            return False
        return capacity < desired < requested

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
        if self.data_volume is not None and disk.image and not imports_for(self.data_volume, disk):
            return f"it was imported from {_source_shown(self.data_volume)} and the disk asks for {disk.image}"
        return None

    def bound(self, classes: Mapping[str, StorageClass]) -> bool:
        """Ready to attach: Bound, or Pending on a WaitForFirstConsumer class (the VM is the first consumer). A
        volume that does not fit its disk never is: one that never bound is replaced, and one that bound is
        neither replaced nor attached (status.py says VolumeImmutable)."""
        if self.conflict or self.retained or self.lost or self.deleting or self.mismatch:
            return False  # not ours, not yet taken back, lost, about to be replaced, or not what the disk asks for
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
    if found is None or is_ours(found, observed.uid):
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
        and not wukong_references(obj)  # still owned: the garbage collector may be deleting it
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
    if kind == "DataVolume" and disk.image and not imports_for(obj, disk):
        return f"it was imported from {_source_shown(obj)}, not {disk.image}"
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
    if observed.vm is not None and not is_owned_by(observed.vm, observed.uid):
        return f"VirtualMachine {name} exists and is not owned by this Wukong"
    return None


def _source_shown(data_volume: Obj) -> str:
    """A DataVolume's whole source for a message: its kind and every setting, not only a URL (shortened)."""
    text = json.dumps(lookup(data_volume, "spec", "source"), sort_keys=True, separators=(",", ":"), default=str)
    return text if len(text) <= _SOURCE_SHOWN else text[: _SOURCE_SHOWN - 3] + "..."


_SOURCE_SHOWN = 300
_SHORT, _QUOTED = 64, 1000  # a reason or progress (the status schema's bound), another component's message quoted
_INT32_MAX = 2**31 - 1


def _clipped(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


quantity = parse_or_none  # the reconciler's name for it: sizes in children and status that may be anything


def lookup(obj: Any, *path: str) -> Any:
    """``obj[path[0]][path[1]]...``, or None where a step is missing or not an object."""
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj
