"""Pure planning: from the observed state of one Wukong and its children to the writes that converge it.

``plan(observed)`` lists the actions to take from the pass's assessment (assess.py: the volumes, what the VM
waits for); it does no I/O, so every rule is unit-tested here without an API server. The pass (reconcile.py)
executes the actions, folds the results back into the observation, and derives the status from that (status.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from reconciler import snapshots
from reconciler.assess import Assessment, assess, made_networks, unimportable
from reconciler.guest import cloud_init_secret
from reconciler.observation import Kind, Observed, Volume, VolumeKind, expandable, lookup
from reconciler.ownership import (
    adoption_patch,
    is_ours,
    is_owned_by,
    made_by_cdi,
    ownership_patch,
    release_patch,
    wukong_references,
)
from reconciler.vm import hot_disks, update_patch, virtual_machine
from reconciler.volumes import data_volume, keep_patch, persistent_volume_claim
from wukong import api
from wukong.manifests import Obj
from wukong.naming import vm_name, volume_name
from wukong.spec import DELETE


# -- actions ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Create:
    kind: Kind
    object: Obj
    disk: str | None = None


@dataclass(frozen=True)
class Expand:
    """Set a bound claim's request: a growth, or (``recovery``) a failed growth's request lowered to what the disk
    now asks for, never to the capacity reached (the API server refuses that)."""

    pvc: str
    disk: str
    size: str
    previous: str
    recovery: bool = False


@dataclass(frozen=True)
class Release:
    kind: VolumeKind
    name: str
    disk: str
    patch: Obj


@dataclass(frozen=True)
class Adopt:
    """Take back a volume an earlier Wukong of the same name retained."""

    kind: VolumeKind
    name: str
    disk: str
    patch: Obj


@dataclass(frozen=True)
class SetRetention:
    """Give a volume the ownerReference its retention policy asks for (Delete), or take it away (Retain)."""

    kind: VolumeKind
    name: str
    disk: str
    delete_with_owner: bool
    patch: Obj


@dataclass(frozen=True)
class Replace:
    """Delete a volume that never bound and no longer matches its disk; the next pass creates the right one.
    The preconditions make the API server refuse if the object changed (bound, say) since it was judged."""

    kind: VolumeKind
    name: str
    disk: str
    uid: str
    resource_version: str
    why: str


@dataclass(frozen=True)
class KeepDataVolume:
    """Ask CDI to keep a DataVolume made before the reconciler asked at creation (deleteAfterCompletion)."""

    name: str
    disk: str
    patch: Obj


@dataclass(frozen=True)
class TakeSnapshot:
    """A VolumeSnapshot of a disk's claim, before the disk grows (snapshotBeforeExpand)."""

    disk: str
    object: Obj


@dataclass(frozen=True)
class PruneSnapshot:
    """Delete a snapshot this Wukong made beyond the disk's ``keep``; the preconditions make the API server refuse
    if it changed since it was judged."""

    name: str
    disk: str
    uid: str
    resource_version: str


@dataclass(frozen=True)
class SetSnapshotRetention:
    """A snapshot follows its volume: the Wukong's ownerReference under Delete, none under Retain."""

    name: str
    patch: Obj


@dataclass(frozen=True)
class UpdateVM:
    patch: Obj


@dataclass(frozen=True)
class ApplySecret:
    """Create the cloud-init Secret, or replace it when its data changed (it is the Wukong's own)."""

    secret: Obj


@dataclass(frozen=True)
class UpdateNetwork:
    """Bring a NetworkAttachmentDefinition this Wukong made back to the config its network asks for."""

    name: str
    patch: Obj


Action = (
    Create
    | Expand
    | Release
    | Adopt
    | SetRetention
    | Replace
    | KeepDataVolume
    | TakeSnapshot
    | PruneSnapshot
    | SetSnapshotRetention
    | UpdateVM
    | ApplySecret
    | UpdateNetwork
)


# -- the plan --------------------------------------------------------------------------------------------
def plan(observed: Observed | Assessment, hotplug_disks: bool = False) -> list[Action]:
    """``hotplug_disks``: disks added to an existing VM become hotpluggable volumes (KubeVirt's
    DeclarativeHotplugVolumes), attached without a restart."""
    assessed = assess(observed)
    observed = assessed.observed
    actions: list[Action] = []
    for volume in assessed.volumes:
        actions.extend(_volume_actions(assessed, volume))
    actions.extend(_snapshot_retention(observed))
    actions.extend(_releases(observed))
    actions.extend(_network_actions(observed))
    actions.extend(_vm_actions(assessed, hotplug_disks))
    return actions


def _network_actions(observed: Observed) -> list[Action]:
    """The NetworkAttachmentDefinitions this Wukong makes: created when missing, their config kept as asked --
    unless the policies refuse the network. Nothing while Multus is not installed (status says
    MultusNotInstalled)."""
    if not observed.spec.networks or observed.multus is not True:
        return []
    refused = observed.refused_networks
    actions: list[Action] = []
    for network, nad in made_networks(observed):
        name = nad["metadata"]["name"]
        if name not in observed.nads or network in refused:
            continue  # not looked up this pass, or not to be written
        live = observed.nads[name]
        if live is None:
            actions.append(Create("NetworkAttachmentDefinition", nad))
        elif is_owned_by(live, observed.uid) and live.get("spec") != nad["spec"]:
            patch = {"metadata": {"resourceVersion": live["metadata"].get("resourceVersion")}, "spec": nad["spec"]}
            actions.append(UpdateNetwork(name, patch))
    return actions


def _volume_actions(assessed: Assessment, volume: Volume) -> list[Action]:
    observed = assessed.observed
    if volume.conflict or volume.deleting:
        return []  # not ours; or being replaced, and created again once it is gone
    if volume.lost:
        return _lost_actions(observed, volume)
    delete_with_owner = observed.spec.when_deleted == DELETE
    kind: VolumeKind = "DataVolume" if volume.source == "dataVolume" else "PersistentVolumeClaim"
    if volume.retained and volume.own is not None:
        patch = adoption_patch(volume.own, observed.wukong, delete_with_owner)
        return [Adopt(kind, volume.name, volume.disk.name, patch)]
    if volume.mismatch and volume.holder is not None:
        if volume.ever_bound:
            return []  # a claim that bound is never replaced: status.py reports VolumeImmutable
        held = volume.holder
        held_kind: VolumeKind = "DataVolume" if held is volume.data_volume else "PersistentVolumeClaim"
        metadata = held["metadata"]
        why = f"it never bound and {volume.mismatch}"
        return [Replace(held_kind, volume.name, volume.disk.name, metadata["uid"], metadata["resourceVersion"], why)]
    actions: list[Action] = []
    owned = None if volume.own is None else ownership_patch(volume.own, observed.wukong, delete_with_owner)
    if owned is not None:
        actions.append(SetRetention(kind, volume.name, volume.disk.name, delete_with_owner, owned))
    if (kept := keep_patch(volume.data_volume)) is not None:
        actions.append(KeepDataVolume(volume.name, volume.disk.name, kept))
    gate = assessed.snapshot_gates.get(volume.disk.name)
    return actions + _storage_actions(observed, volume, gate) + _prunes(observed, volume)


def _lost_actions(observed: Observed, volume: Volume) -> list[Action]:
    """A volume that bound and is gone: nothing until the user says so (status.py reports VolumeLost); then a
    new one -- a DataVolume left without its claim is deleted first, so that CDI imports afresh."""
    if not volume.recreate:
        return []
    dv = volume.data_volume
    if dv is not None:
        metadata = dv["metadata"]
        why = "its PersistentVolumeClaim was lost and a new volume was asked for"
        return [Replace("DataVolume", volume.name, volume.disk.name, metadata["uid"], metadata["resourceVersion"], why)]
    return _storage_actions(observed, volume)


def _storage_actions(observed: Observed, volume: Volume, gate: snapshots.Gate | None = None) -> list[Action]:
    """``gate``: the snapshot the disk's growth waits for (snapshotBeforeExpand), if it asks for one."""
    if volume.disk.name in observed.storage_refusals:
        return []  # it would take what the Wukong holds past maxTotalSize: status.py says so
    if not volume.exists:
        delete_with_owner = observed.spec.when_deleted == DELETE
        if volume.source == "dataVolume":
            if unimportable(volume) is not None:
                return []  # status.py says why (ImageInvalid)
            dv = data_volume(observed.wukong, volume.disk, delete_with_owner)
            return [Create("DataVolume", dv, volume.disk.name)]
        claim = persistent_volume_claim(observed.wukong, volume.disk, delete_with_owner)
        return [Create("PersistentVolumeClaim", claim, volume.disk.name)]
    desired, requested = volume.desired, volume.requested
    if volume.recovering and volume.pvc_bound:
        return [Expand(volume.name, volume.disk.name, volume.disk.size, str(requested), recovery=True)]
    if volume.pvc is None or desired is None or requested is None or not desired > requested:
        return []  # a shrink is never patched: status.py reports it as ShrinkRefused
    if not volume.pvc_bound or not expandable(observed, volume):
        return []  # only bound claims on expandable classes can grow; status.py says why it waits
    if gate is not None and not gate.open:
        if gate.state == "create" and gate.snapshot is not None:
            return [TakeSnapshot(volume.disk.name, gate.snapshot)]
        return []  # waiting for it, or none can be taken: status.py says which
    return [Expand(volume.name, volume.disk.name, volume.disk.size, str(requested))]


def _prunes(observed: Observed, volume: Volume) -> list[Action]:
    """Snapshots beyond the disk's ``keep`` (after the growth they stood before, in the same pass)."""
    return [
        PruneSnapshot(s["metadata"]["name"], volume.disk.name, s["metadata"]["uid"], s["metadata"]["resourceVersion"])
        for s in snapshots.prunable(observed, volume)
    ]


def _snapshot_retention(observed: Observed) -> list[Action]:
    return [SetSnapshotRetention(name, patch) for name, patch in snapshots.retention_patches(observed)]


def _releases(observed: Observed) -> list[Action]:
    """Volumes of disks removed from the spec: keep them, drop our ownerReference, label where they came from."""
    wanted = {volume_name(observed.name, d.name) for d in observed.spec.disks}
    actions: list[Action] = []
    kinds: tuple[tuple[VolumeKind, dict[str, Obj]], ...] = (
        ("DataVolume", dict(observed.data_volumes)),
        ("PersistentVolumeClaim", dict(observed.pvcs)),
    )
    for kind, objects in kinds:
        for name, obj in objects.items():
            if name in wanted or not is_ours(obj, observed.uid) or made_by_cdi(obj):
                continue
            disk = (obj["metadata"].get("labels") or {}).get(api.DISK_LABEL, name)
            actions.append(Release(kind, name, disk, release_patch(obj, observed.name, observed.uid)))
    return actions


def release_retained(wukong_name: str, data_volumes: Mapping[str, Obj], pvcs: Mapping[str, Obj]) -> list[Release]:
    """The Wukong is gone (or going): release the volumes it retained -- those its labels name that carry no
    Wukong ownerReference. Volumes under Delete are the garbage collector's and are left to it."""
    actions = []
    kinds: tuple[tuple[VolumeKind, Mapping[str, Obj]], ...] = (
        ("DataVolume", data_volumes),
        ("PersistentVolumeClaim", pvcs),
    )
    for kind, objects in kinds:
        for name, obj in objects.items():
            metadata = obj.get("metadata") or {}
            labels = metadata.get("labels") or {}
            if labels.get(api.WUKONG_LABEL) != wukong_name or wukong_references(obj):
                continue
            if made_by_cdi(obj):
                continue
            disk = labels.get(api.DISK_LABEL, name)
            actions.append(Release(kind, name, disk, release_patch(obj, wukong_name, None)))
    return actions


def _vm_actions(assessed: Assessment, hotplug_disks: bool) -> list[Action]:
    """The VM (vm.py builds it) once every volume is ready and nothing it needs is missing; its cloud-init Secret
    first, whenever the data the VM was given changed."""
    observed, current = assessed.observed, assessed.volumes
    if not current or not all(v.bound(observed.storage_classes) for v in current) or any(v.failure for v in current):
        return []
    if vm_name(observed.name) in observed.conflicts or assessed.blockers:
        return []
    secret = cloud_init_secret(observed)
    desired = virtual_machine(observed, secret, hot_disks(observed, hotplug_disks))
    vm = observed.vm
    applied_digest = ((lookup(vm, "spec", "template", "metadata") or {}).get("annotations") or {}).get(
        api.CLOUD_INIT_DIGEST_ANNOTATION
    )
    secrets: list[Action] = []
    if secret is not None and (
        vm is None or applied_digest != secret["metadata"]["annotations"][api.CLOUD_INIT_DIGEST_ANNOTATION]
    ):
        secrets.append(ApplySecret(secret))
    if vm is None:
        return [*secrets, Create("VirtualMachine", desired)]
    if not is_owned_by(vm, observed.uid):
        return []
    patch = update_patch(vm, desired)
    return [] if patch is None else [*secrets, UpdateVM(patch)]
