"""Pure status: phase, per-disk volumes and conditions, rebuilt from the observed world on every pass.

``lastTransitionTime`` only moves when a condition's status changes, so a pass over an unchanged world
yields an identical status and the controller writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from reconciler import planning, restarts
from reconciler.observation import SPENT, Observed, Volume, expandable, lookup, vm_conflict, volumes
from wukong import api
from wukong.manifests import Obj
from wukong.naming import vm_name
from wukong.quantity import Quantity

PHASE_PENDING, PHASE_CREATING, PHASE_RUNNING, PHASE_STOPPED, PHASE_ERROR = (
    "Pending",
    "Creating",
    "Running",
    "Stopped",
    "Error",
)


@dataclass(frozen=True)
class Problem:
    reason: str  # NameConflict | VolumeFailed | StorageClassNotFound | VolumeImmutable | ShrinkRefused | ...
    message: str


def problems(observed: Observed, current: list[Volume]) -> list[Problem]:
    found = []
    for volume in current:
        if volume.conflict:
            found.append(Problem("NameConflict", volume.conflict))
        if volume.lost:
            found.append(Problem("VolumeLost", lost_message(observed, volume)))
        if volume.failure:
            found.append(Problem("VolumeFailed", volume.failure))
        if missing := _missing_class(observed, volume):
            found.append(
                Problem(
                    "StorageClassNotFound",
                    f"disk {volume.disk.name} asks for StorageClass {missing}, which does not exist; its volume "
                    f"stays Pending until the class is created or the disk's storageClassName is corrected",
                )
            )
        if volume.mismatch and volume.ever_bound:
            found.append(
                Problem(
                    "VolumeImmutable",
                    f"disk {volume.disk.name} cannot be changed as asked: its volume {volume.name} has bound and "
                    f"may hold data, so it is never replaced ({volume.mismatch}); set the disk back, or add a new "
                    f"disk",
                )
            )
        desired, requested = volume.desired, volume.requested
        if desired is not None and requested is not None and volume.pvc is not None:
            if desired < requested:
                found.append(
                    Problem(
                        "ShrinkRefused",
                        f"disk {volume.disk.name} asks for {volume.disk.size} but "
                        f"its volume {volume.name} has {requested}; volumes never shrink",
                    )
                )
            elif desired > requested and not expandable(observed, volume):
                found.append(
                    Problem(
                        "ExpansionNotSupported",
                        f"disk {volume.disk.name} cannot grow to {volume.disk.size}: StorageClass "
                        f"{volume.storage_class} does not allow volume expansion",
                    )
                )
    if conflict := vm_conflict(observed):
        found.append(Problem("NameConflict", conflict))
    found.extend(Problem(reason, message) for reason, message in planning.guest_blockers(observed))
    return found


def lost_message(observed: Observed, volume: Volume) -> str:
    """What a user reads when a bound volume is gone: what happened, what was not done, and the two ways on."""
    disk, annotation = volume.disk.name, api.RECREATE_LOST_VOLUMES_ANNOTATION
    anew = f"volume imported again from {volume.disk.image}" if volume.disk.image else "empty volume"
    message = (
        f"disk {disk} lost its volume: PersistentVolumeClaim {volume.name} had bound and is gone, and its data "
        f"with it unless its PersistentVolume was retained; nothing is created in its place and the VM is left "
        f"as it is. Restore the claim {volume.name} (its labels and {api.WUKONG_UID_ANNOTATION} annotation make "
        f"it this Wukong's), or accept a new {anew}: kubectl annotate wukong {observed.name} "
        f"{annotation}={disk}"
    )
    if volume.disk.name in observed.recreate_lost and not volume.recreate:
        message += (
            f" (the annotation {annotation} named this disk before this loss was reported, and counts only when "
            f"set after it: remove it and set it again)"
        )
    return message


def _missing_class(observed: Observed, volume: Volume) -> str | None:
    """The StorageClass a disk that is not bound waits for, when no such class exists."""
    if volume.conflict or volume.ever_bound:
        return None
    name = volume.disk.storage_class or (volume.held_class if volume.holder is not None else None)
    return name if name and name not in observed.storage_classes else None


def compute(observed: Observed, now: str) -> Obj:
    current = volumes(observed)
    found = problems(observed, current)
    classes = observed.storage_classes
    bound = [v for v in current if v.bound(classes)]
    resizing = [v for v in current if v.requested and v.capacity and v.requested > v.capacity]
    phase = _phase(observed, current, found, len(bound) == len(current))
    generation = observed.wukong["metadata"].get("generation")
    previous = {c["type"]: c for c in lookup(observed.wukong, "status", "conditions") or []}

    def condition(kind: str, ok: bool, reason: str, message: str) -> Obj:
        status = "True" if ok else "False"
        before = previous.get(kind)
        moved = before is None or before.get("status") != status
        since = now if before is None or moved else before.get("lastTransitionTime", now)
        return {
            "type": kind,
            "status": status,
            "observedGeneration": generation,
            "lastTransitionTime": since,
            "reason": reason,
            "message": message,
        }

    waiting = [f"{v.disk.name} ({_volume_state(v)})" for v in current if not v.bound(classes)]
    conditions = [
        condition(
            "VolumesBound",
            not waiting,
            "AllBound" if not waiting else "WaitingForVolumes",
            f"{len(bound)}/{len(current)} volumes bound" + (f"; waiting for {', '.join(waiting)}" if waiting else ""),
        ),
        condition(
            "Resizing",
            bool(resizing),
            "ExpansionInProgress" if resizing else "AtRequestedSize",
            "; ".join(f"{v.disk.name}: {v.capacity} -> {v.requested}" for v in resizing)
            or "every volume has the capacity it asks for",
        ),
        condition("Ready", phase == PHASE_RUNNING, phase, _ready_message(phase, found)),
        condition("RestartRequired", *restarts.condition(observed)),
        condition(
            "Degraded",
            bool(found),
            found[0].reason if found else "AsExpected",
            "; ".join(p.message for p in found) or "no problems found",
        ),
    ]
    status: Obj = {
        "phase": phase,
        "observedGeneration": generation,
        "diskCount": len(current),
        "totalSize": _total([v.requested for v in current]),
        "volumes": [_volume_status(observed, v, classes) for v in current],
        "conditions": conditions,
    }
    if observed.vm is not None and not vm_conflict(observed):
        status["vmName"] = vm_name(observed.name)
        if printable := lookup(observed.vm, "status", "printableStatus"):
            status["vmStatus"] = printable
        if node := lookup(observed.vmi, "status", "nodeName"):
            status["nodeName"] = node
    return status


def _phase(observed: Observed, current: list[Volume], found: list[Problem], all_bound: bool) -> str:
    if any(p.reason in ("VolumeFailed", "VolumeLost") for p in found):
        return PHASE_ERROR
    if not all_bound or observed.vm is None or vm_conflict(observed):
        return PHASE_PENDING if not all_bound or vm_conflict(observed) else PHASE_CREATING
    printable = lookup(observed.vm, "status", "printableStatus")  # the VM's real state, whoever changed it
    if lookup(observed.vm, "status", "ready") is True or printable == "Running":
        return PHASE_RUNNING
    if printable == "Stopped":
        return PHASE_STOPPED
    return PHASE_CREATING


def _ready_message(phase: str, found: list[Problem]) -> str:
    messages = {
        PHASE_RUNNING: "the virtual machine is running",
        PHASE_STOPPED: "the virtual machine is stopped",
        PHASE_CREATING: "the virtual machine is starting",
        PHASE_PENDING: "waiting for volumes",
        PHASE_ERROR: "a volume failed or was lost",
    }
    return messages[phase] + (f" ({found[0].message})" if found and phase != PHASE_RUNNING else "")


def _total(sizes: list[Quantity | None]) -> str:
    known = [q for q in sizes if q is not None]
    return Quantity(sum((q.value for q in known), Fraction(0)), binary=all(q.binary for q in known)).canonical()


def _volume_state(volume: Volume) -> str:
    if volume.conflict:
        return "name conflict"
    if volume.lost:
        return "lost"
    if volume.deleting:
        return "being replaced"
    if volume.mismatch and not volume.ever_bound:
        return "to be replaced"
    if volume.data_volume is not None:
        return f"DataVolume {lookup(volume.data_volume, 'status', 'phase') or 'Pending'}"
    if volume.pvc is not None:
        return f"PVC {lookup(volume.pvc, 'status', 'phase') or 'Pending'}"
    return "not created yet"


def _volume_status(observed: Observed, volume: Volume, classes: Mapping[str, Any]) -> Obj:
    entry: Obj = {
        "name": volume.disk.name,
        "pvcName": volume.name,
        "bound": volume.bound(classes),
        "source": volume.source,
        "everBound": volume.ever_bound,
    }
    if volume.lost:
        entry["lost"] = True
    if volume.collected:
        entry["dataVolumeCollected"] = True
    if _acknowledgement_spent(observed, volume):
        entry[SPENT] = True
    if volume.requested is not None:
        entry["size"] = str(volume.requested)
    if volume.capacity is not None:
        entry["capacity"] = str(volume.capacity)
    return entry


def _acknowledgement_spent(observed: Observed, volume: Volume) -> bool:
    """Whether the recreate-lost-volumes annotation naming this disk no longer authorises a new volume: it has
    been seen while the disk had a volume -- the one it brought, or a healthy one when it was set in advance. So it
    counts only when set while a loss is reported, and once: left in place, it does not re-create the next loss.
    The mark stays while the annotation names the disk; removing the annotation clears it."""
    if volume.disk.name not in observed.recreate_lost:
        return False
    return bool(observed.recorded(volume.disk.name).get(SPENT)) or not volume.lost


def urgent(before: Obj, after: Obj) -> bool:
    """Whether a status change is one a user watches for, written at once: the generation observed, a phase or a
    condition's status. Progress on the way up is a detail like messages and per-volume fields: volumes binding
    (VolumesBound turning True, Pending becoming Creating) goes out with the next write, which on a healthy
    cluster is the one that says Running."""

    def statuses(status: Obj) -> dict[str, Any]:
        return {c.get("type"): c.get("status") for c in status.get("conditions") or []}

    if before.get("observedGeneration") != after.get("observedGeneration"):
        return True
    phases = before.get("phase"), after.get("phase")
    if phases[0] != phases[1] and phases != (PHASE_PENDING, PHASE_CREATING):
        return True
    was, became = statuses(before), statuses(after)
    changed = {kind for kind in was.keys() | became.keys() if was.get(kind) != became.get(kind)}
    if changed - {"VolumesBound"}:
        return True
    if _safety_marks(before) != _safety_marks(after):
        return True  # the record of a loss and of a spent acknowledgement must not wait: they decide what is made
    return "VolumesBound" in changed and became.get("VolumesBound") != "True"


def _safety_marks(status: Obj) -> set[tuple[str, str]]:
    return {
        (str(v.get("name")), mark)
        for v in status.get("volumes") or []
        for mark in ("lost", SPENT)
        if isinstance(v, Mapping) and v.get(mark)
    }
