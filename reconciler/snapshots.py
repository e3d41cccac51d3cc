"""A point to go back to: the CSI VolumeSnapshot a disk with ``snapshotBeforeExpand`` gets before it grows.

Pure. Before a growth is carried out (the claim bound, its class allows expansion, the disk asks for more than the
claim), the disk's claim is snapshotted and the growth waits until the snapshot is ``readyToUse``. The snapshot
of one growth step is named after the claim's uid and the size it is taken at, so every pass finds the same one
(no second snapshot of the same step, whatever the passes in between) and a later growth gets a new one. The class
is the CSI snapshotter's default for the claim's driver (the StorageClass's provisioner): with none, or a snapshot
that failed, the disk does not grow and status.py says why and how to opt out. Once the newest snapshot is ready,
those beyond ``keep`` (oldest first) are deleted -- only the ones this Wukong made (its uid annotation).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from reconciler.observation import Observed, Volume, expandable, lookup, quantity
from reconciler.ownership import is_ours, ownership_patch
from reconciler.volumes import volume_snapshot
from wukong import api
from wukong.manifests import Obj
from wukong.quantity import Quantity
from wukong.spec import DELETE

State = Literal["create", "waiting", "ready", "failed", "unavailable"]


@dataclass(frozen=True)
class Gate:
    """Where a disk's growth stands with its snapshot. ``snapshot``: the one to create (create) or found."""

    disk: str
    state: State
    name: str
    snapshot: Obj | None = None
    message: str = ""

    @property
    def open(self) -> bool:
        return self.state == "ready"

    @property
    def pending(self) -> bool:
        """The snapshot is on its way: nothing watched says when it is ready, so the pass comes back soon."""
        return self.state in ("create", "waiting")


def growth_pending(observed: Observed, volume: Volume) -> bool:
    """The disk asks for more than its claim and the claim could grow now (bound, on an expandable class)."""
    desired, requested = volume.desired, volume.requested
    if volume.pvc is None or desired is None or requested is None or not desired > requested:
        return False
    return volume.pvc_bound and expandable(observed, volume)


def snapshot_name(volume: Volume, requested: Quantity) -> str:
    """The snapshot of one growth step: the claim (its uid: a new claim of the same name is another volume) at
    the size it had."""
    uid = str(lookup(volume.pvc, "metadata", "uid") or "")
    digest = hashlib.sha256(f"{uid}:{requested.canonical()}".encode()).hexdigest()[:10]
    return f"{volume.name}-{digest}"


def gate(observed: Observed, volume: Volume, index: int) -> Gate | None:
    """The snapshot standing before this disk's growth; None when the disk asks for none or is not growing.
    ``index``: the disk's place in spec.disks, for the way out a message names."""
    keep, requested = volume.disk.snapshot_keep, volume.requested
    if keep is None or requested is None or not growth_pending(observed, volume):
        return None
    disk, name = volume.disk.name, snapshot_name(volume, requested)
    opt_out = f"or opt out: remove snapshotBeforeExpand from disk {disk} (spec.disks[{index}])"
    step = (
        f"disk {disk} asks for a VolumeSnapshot of {volume.name} before it grows from {requested} to {volume.disk.size}"
    )
    found = (observed.snapshots or {}).get(name)
    if found is not None:
        if not is_ours(found, observed.uid):
            why = (
                f"{step}, but VolumeSnapshot {name} exists and is not this Wukong's; the disk is not grown: "
                f"delete it, {opt_out}"
            )
            return Gate(disk, "failed", name, found, why)
        if lookup(found, "metadata", "deletionTimestamp"):  # going: a new one is taken once it is gone
            return Gate(disk, "waiting", name, found, f"{disk}: VolumeSnapshot {name} is being deleted")
        error = lookup(found, "status", "error", "message")
        if error or lookup(found, "status", "error") is not None:
            why = (
                f"{step}, and VolumeSnapshot {name} failed: {error or 'the snapshotter reported an error'}; the disk "
                f"is not grown: delete the VolumeSnapshot to try again, {opt_out}"
            )
            return Gate(disk, "failed", name, found, why)
        if lookup(found, "status", "readyToUse") is True:
            return Gate(disk, "ready", name, found)
        return Gate(disk, "waiting", name, found, f"{disk}: waiting for VolumeSnapshot {name} to be ready to use")
    if observed.snapshots_served is False:
        why = (
            f"{step}, but the cluster serves no VolumeSnapshot API (snapshot.storage.k8s.io/v1): install the CSI "
            f"snapshot CRDs and snapshot controller, {opt_out}; the disk is not grown until then"
        )
        return Gate(disk, "unavailable", name, None, why)
    if observed.snapshots is None:
        return Gate(disk, "waiting", name, None, f"{disk}: snapshots not looked up yet")
    class_name, problem = snapshot_class(observed, volume)
    if class_name is None:
        return Gate(
            disk,
            "unavailable",
            name,
            None,
            f"{step}, but {problem}, {opt_out}; the disk is not grown until then",
        )
    delete = observed.spec.when_deleted == DELETE
    manifest = volume_snapshot(observed.wukong, volume.disk, volume.name, name, class_name, str(requested), delete)
    return Gate(disk, "create", name, manifest, f"{disk}: taking VolumeSnapshot {name} before growing")


def snapshot_class(observed: Observed, volume: Volume) -> tuple[str | None, str]:
    """The CSI snapshotter's default VolumeSnapshotClass for the claim's driver, or None and why there is none."""
    storage_class = observed.storage_classes.get(volume.storage_class)
    driver = storage_class.provisioner if storage_class is not None else ""
    marked = f'{api.DEFAULT_SNAPSHOT_CLASS_ANNOTATION}: "true"'
    defaults = sorted(
        str(c["metadata"]["name"])
        for c in observed.snapshot_classes or ()
        if c.get("driver") == driver
        and (lookup(c, "metadata", "annotations") or {}).get(api.DEFAULT_SNAPSHOT_CLASS_ANNOTATION) == "true"
    )
    if len(defaults) == 1:
        return defaults[0], ""
    if defaults:
        return None, (
            f"VolumeSnapshotClasses {', '.join(defaults)} are all marked default for driver {driver} ({marked}), "
            f"and the snapshotter takes none of them: mark exactly one"
        )
    return None, (
        f"no VolumeSnapshotClass for driver {driver or '(unknown)'} (StorageClass {volume.storage_class}'s "
        f"provisioner) is marked default ({marked}): create one"
    )


def ours(observed: Observed, disk: str) -> list[Obj]:
    """The disk's snapshots this Wukong made, oldest first."""
    found = [
        s
        for s in (observed.snapshots or {}).values()
        if is_ours(s, observed.uid) and (lookup(s, "metadata", "labels") or {}).get(api.DISK_LABEL) == disk
    ]
    return sorted(found, key=_taken_order)


def _taken_order(snapshot: Obj) -> tuple[Fraction, str, str]:
    """By the size it was taken at first: a disk only grows, so its growth steps come in that order even when two
    fall within the same second (creationTimestamp's resolution)."""
    size = quantity((lookup(snapshot, "metadata", "annotations") or {}).get(api.SNAPSHOT_SIZE_ANNOTATION))
    when = str(lookup(snapshot, "metadata", "creationTimestamp") or "~")  # not yet created: the newest
    return (size.value if size is not None else Fraction(0), when, str(snapshot["metadata"]["name"]))


def prunable(observed: Observed, volume: Volume) -> list[Obj]:
    """This disk's snapshots beyond ``keep``, oldest first -- only once the newest is ready to use, so a good one is
    never traded for one that may still fail."""
    keep = volume.disk.snapshot_keep
    taken = [s for s in ours(observed, volume.disk.name) if not lookup(s, "metadata", "deletionTimestamp")]
    if keep is None or len(taken) <= keep or lookup(taken[-1], "status", "readyToUse") is not True:
        return []
    return taken[: len(taken) - keep]


def record(observed: Observed, disk: str) -> list[Obj]:
    """status.volumes[].snapshots: the disk's snapshots, oldest first, with the size and time they were taken."""
    entries = []
    for snapshot in ours(observed, disk):
        entry: Obj = {
            "name": snapshot["metadata"]["name"],
            "readyToUse": lookup(snapshot, "status", "readyToUse") is True,
        }
        if size := (lookup(snapshot, "metadata", "annotations") or {}).get(api.SNAPSHOT_SIZE_ANNOTATION):
            entry["size"] = str(size)
        when = lookup(snapshot, "status", "creationTime") or lookup(snapshot, "metadata", "creationTimestamp")
        if isinstance(when, str):
            entry["time"] = when
        if isinstance(message := lookup(snapshot, "status", "error", "message"), str):
            entry["error"] = message[:1024]
        entries.append(entry)
    return entries[-RECORDED_MAX:]


RECORDED_MAX = 16  # the CRD's bound on status.volumes[].snapshots; keep is at most 10


def wanted(observed: Observed) -> bool:
    """Whether a pass lists the Wukong's snapshots: a disk asks for them, or the status records some."""
    if any(d.snapshot_keep is not None for d in observed.spec.disks):
        return True
    return any(
        isinstance(v, Mapping) and v.get("snapshots") for v in lookup(observed.wukong, "status", "volumes") or []
    )


def retention_patches(observed: Observed) -> list[tuple[str, Obj]]:
    """(name, patch) giving this Wukong's snapshots the ownerReference its retention policy asks for (Delete),
    or taking it away (Retain): a snapshot follows its volume."""
    delete = observed.spec.when_deleted == "Delete"
    found = []
    for snapshot in (observed.snapshots or {}).values():
        if not is_ours(snapshot, observed.uid) or lookup(snapshot, "metadata", "deletionTimestamp"):
            continue
        if (patch := ownership_patch(snapshot, observed.wukong, delete)) is not None:
            found.append((snapshot["metadata"]["name"], patch))
    return sorted(found, key=lambda item: item[0])
