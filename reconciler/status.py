"""Pure status: phase, per-disk volumes and conditions, rebuilt from the observed world on every pass.

It reads the pass's assessment (assess.py), the same that planning decided from. ``lastTransitionTime`` only
moves when a condition's status changes, so a pass over an unchanged world yields an identical status and the
pass writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from reconciler import snapshots
from reconciler.assess import Assessment, assess, unimportable
from reconciler.observation import SPENT, Observed, Volume, expandable, lookup
from wukong import api
from wukong.manifests import Obj
from wukong.naming import vm_name
from wukong.quantity import Quantity

PHASE_PENDING, PHASE_BLOCKED, PHASE_CREATING, PHASE_RUNNING, PHASE_STOPPED, PHASE_ERROR = (
    "Pending",
    "Blocked",
    "Creating",
    "Running",
    "Stopped",
    "Error",
)

# Problems that stop the way to a VM until someone acts -- creates a Secret, a NetworkAttachmentDefinition or a
# StorageClass, installs Multus, changes a policy or the spec, moves a foreign object: no retry gets past them.
# While there is no VM (or a volume has not bound) they make the phase Blocked and give the Ready reason, so that
# nothing reads "starting" while nothing can start.
BLOCKING = frozenset(
    {
        "NameConflict",
        "ImageInvalid",
        "StorageClassNotFound",
        "VolumeImmutable",
        "MultusNotInstalled",
        "NetworkNotFound",
        "NetworkNotAllowed",
        "SSHKeySecretNotFound",
    }
)


@dataclass(frozen=True)
class Problem:
    reason: str  # NameConflict | VolumeFailed | StorageClassNotFound | VolumeImmutable | ShrinkRefused | ...
    message: str

    @property
    def blocks(self) -> bool:
        return self.reason in BLOCKING


MAX_RELEASED_RECORDS = 64  # the CRD's bound; the reconciler counts every released volume whatever the record holds


def problems(assessed: Assessment) -> list[Problem]:
    observed, found = assessed.observed, []
    for volume in assessed.volumes:
        if volume.conflict:
            found.append(Problem("NameConflict", volume.conflict))
        if volume.lost:
            found.append(Problem("VolumeLost", lost_message(observed, volume)))
        if volume.failure:
            found.append(Problem("VolumeFailed", volume.failure))
        if why := unimportable(volume):
            found.append(Problem("ImageInvalid", why))
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
                    f"may hold data, so it is never replaced ({volume.mismatch}); nor is it attached to the VM, "
                    f"which is neither created nor changed while a volume does not fit its disk; set the disk back, "
                    f"or add a new disk",
                )
            )
        gate = assessed.snapshot_gates.get(volume.disk.name)
        if gate is not None and gate.state in ("failed", "unavailable"):
            reason = "SnapshotFailed" if gate.state == "failed" else "SnapshotClassNotFound"
            found.append(Problem(reason, gate.message))
        if why := import_failing(volume):
            found.append(Problem("ImportFailing", why))
        if why := expansion_failed(volume):
            found.append(Problem("ExpansionFailed", why))
        desired, requested = volume.desired, volume.requested
        if desired is not None and requested is not None and volume.pvc is not None:
            if desired < requested and not volume.recovering:
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
    found.extend(Problem("StorageLimitExceeded", why) for why in observed.storage_refusals.values())
    if assessed.vm_conflict:
        found.append(Problem("NameConflict", assessed.vm_conflict))
    found.extend(Problem(reason, message) for reason, message in assessed.blockers)
    return found


# CDI's UnusualRestartCountThreshold: its CDIDataVolumeUnusualRestartCount alert fires above it
IMPORT_RESTARTS_TOLERATED = 3


def import_failing(volume: Volume) -> str | None:
    """An import CDI keeps retrying: more restarts of its importer than CDI itself finds usual. CDI never gives up
    on a failing import (only a checksum mismatch is final), so without this a mistyped image leaves the Wukong
    Pending with nothing to read; a restart or two is left alone (a node drained, a registry hiccup)."""
    restarts = volume.import_restarts
    if restarts <= IMPORT_RESTARTS_TOLERATED:
        return None
    why = volume.import_not_running
    said = f"; CDI reports {why[0]}" + (f": {why[1]}" if why[1] else "") if why else ""
    return (
        f"disk {volume.disk.name}: the import of {volume.disk.image} keeps failing, DataVolume {volume.name} "
        f"restarted its importer {restarts} times{said}. CDI retries forever; correct the disk's image (allowed "
        f"while no import has finished: the DataVolume is replaced)"
    )


def expansion_failed(volume: Volume) -> str | None:
    failure = volume.expansion_failure
    if failure is None:
        return None
    state, message = failure
    capacity, requested, desired = volume.capacity, volume.requested, volume.desired
    retried = " (the resizer retries)" if state.endswith("Error") else ""
    text = (
        f"disk {volume.disk.name}: expanding PersistentVolumeClaim {volume.name} to {requested} failed{retried}: "
        f"{state}" + (f": {message}" if message else "")
    )
    if volume.recovering:
        return text + f"; its request is being lowered to {volume.disk.size}"
    if capacity is not None:
        text += (
            f"; the volume keeps {capacity}. Lower the disk's size to more than {capacity} (Kubernetes allows "
            f"lowering a failed expansion's request down to, not to, the capacity reached) or free the storage"
        )
    if desired is not None and requested is not None and desired > requested:
        text += f"; the disk now asks for {volume.disk.size}, which waits until then"
    return text


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


def compute(observed: Observed | Assessment, now: str) -> Obj:
    assessed = assess(observed)
    observed, current = assessed.observed, assessed.volumes
    found = problems(assessed)
    classes = observed.storage_classes
    bound = [v for v in current if v.bound(classes)]
    growing = [v for v in current if v.requested and v.capacity and v.requested > v.capacity]
    resizing = [v for v in growing if v.expansion_failure is None or v.recovering]
    stuck = [v for v in growing if v not in resizing]
    snapshotting = [g for g in assessed.snapshot_gates.values() if g.pending]
    phase = _phase(assessed, found, len(bound) == len(current))
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
    ready = _ready(phase, found, None if assessed.vm_conflict else observed.vm, _imports(current))
    conditions = [
        condition(
            "VolumesBound",
            not waiting,
            "AllBound" if not waiting else "WaitingForVolumes",
            f"{len(bound)}/{len(current)} volumes bound" + (f"; waiting for {', '.join(waiting)}" if waiting else ""),
        ),
        condition(
            "Resizing",
            bool(resizing or snapshotting),
            "ExpansionInProgress"
            if resizing
            else "SnapshotBeforeExpansion"
            if snapshotting
            else "ExpansionFailed"
            if stuck
            else "AtRequestedSize",
            "; ".join(
                [f"{v.disk.name}: {v.capacity} -> {v.requested}" for v in resizing]
                + [f"{v.disk.name}: {v.capacity} -> {v.requested} failed" for v in stuck]
                + [g.message for g in snapshotting]
            )
            or "every volume has the capacity it asks for",
        ),
        condition("Ready", phase in (PHASE_RUNNING, PHASE_STOPPED), *ready),
        condition("RestartRequired", *assessed.restart),
        condition(
            "Degraded",
            bool(found),
            found[0].reason if found else "AsExpected",
            "; ".join(p.message for p in found) or "no problems found",
        ),
    ]
    grows = conditions[1]["message"] if resizing or snapshotting else None
    conditions += _kstatus(condition, phase, found, ready[1], grows)
    status: Obj = {
        "phase": phase,
        "observedGeneration": generation,
        "diskCount": len(current),
        "totalSize": _total([v.requested for v in current]),
        "volumes": [_volume_status(observed, v, classes) for v in current],
        "diskTable": disk_table(observed, current),
        "conditions": conditions,
    }
    held = observed.held_elsewhere
    if held or "releasedVolumes" in (lookup(observed.wukong, "status") or {}):
        # Once written, always written (empty when none is left): the status is merge-patched, and a key left
        # out would keep the last record of volumes deleted since.
        status["releasedVolumes"] = [
            {"name": h.name, "kind": h.kind, "disk": h.disk, "size": str(h.size)} for h in held[:MAX_RELEASED_RECORDS]
        ]
    if observed.vm is not None and not assessed.vm_conflict:
        status["vmName"] = vm_name(observed.name)
        if printable := lookup(observed.vm, "status", "printableStatus"):
            status["vmStatus"] = printable
        if node := lookup(observed.vmi, "status", "nodeName"):
            status["nodeName"] = node
    return status


def _kstatus(
    condition: Callable[[str, bool, str, str], Obj], phase: str, found: list[Problem], ready: str, growing: str | None
) -> list[Obj]:
    """kstatus' abnormal-true conditions (sigs.k8s.io/cli-utils pkg/kstatus/status, what Flux waits on):
    ``Reconciling`` while work is under way -- volumes made, imported or bound, the VM created or starting (with
    Ready's message), a volume growing (with Resizing's) -- and ``Stalled`` while a problem waits for someone to act:
    every problem ``Degraded`` reports says what to do, and none goes away by waiting. Stalled wins, so the two are
    never True together. Both follow the phase, ``Resizing`` and ``Degraded``, so they cost no status write of their
    own."""
    if found:
        stalled = condition("Stalled", True, found[0].reason, "; ".join(p.message for p in found))
        return [condition("Reconciling", False, "Stalled", "waiting for someone to act: see Stalled"), stalled]
    if phase in (PHASE_PENDING, PHASE_CREATING):
        reconciling = condition("Reconciling", True, phase, ready)
    elif growing is not None:
        reconciling = condition("Reconciling", True, "Resizing", growing)
    else:
        reconciling = condition("Reconciling", False, "Reconciled", "the Wukong is as its spec asks")
    return [reconciling, condition("Stalled", False, "AsExpected", "nothing waits for someone to act")]


def _phase(assessed: Assessment, found: list[Problem], all_bound: bool) -> str:
    observed = assessed.observed
    if any(p.reason in ("VolumeFailed", "VolumeLost") for p in found):
        return PHASE_ERROR
    if not all_bound or observed.vm is None or assessed.vm_conflict:
        if any(p.blocks for p in found):
            return PHASE_BLOCKED
        return PHASE_PENDING if not all_bound else PHASE_CREATING
    printable = lookup(observed.vm, "status", "printableStatus")  # the VM's real state, whoever changed it
    if lookup(observed.vm, "status", "ready") is True or printable == "Running":
        return PHASE_RUNNING
    if printable == "Stopped":
        return PHASE_STOPPED
    return PHASE_CREATING


def _imports(current: list[Volume]) -> str:
    """The imports under way with the progress CDI reports: what a Wukong that is not ready yet waits for."""
    return ", ".join(
        f"disk {v.disk.name} importing" + (f" {v.import_progress}" if v.import_progress != "N/A" else "")
        for v in current
        if v.import_progress
    )


def _ready(phase: str, found: list[Problem], vm: Obj | None, imports: str = "") -> tuple[str, str]:
    """(reason, message) of the Ready condition: the phase, or while Blocked what blocks it -- the same reason
    Degraded gives, with every blocking problem's message, each saying what to do. ``imports``: the imports under
    way, named while the VM waits for its volumes (Pending, Creating)."""
    if phase == PHASE_BLOCKED:
        blocking = [p for p in found if p.blocks]
        held = "no virtual machine is created" if vm is None else "the virtual machine is not changed"
        return blocking[0].reason, f"blocked: {held} until this is fixed: " + "; ".join(p.message for p in blocking)
    if phase == PHASE_CREATING and vm is None:
        message = "every volume is bound; the virtual machine is being created"
    elif phase == PHASE_CREATING:
        printable = lookup(vm, "status", "printableStatus")
        message = "the virtual machine is starting" + (f" (KubeVirt: {printable})" if printable else "")
    else:
        message = {
            PHASE_RUNNING: "the virtual machine is running",
            PHASE_STOPPED: "the virtual machine is stopped",
            PHASE_PENDING: "waiting for volumes to bind" if not imports else "waiting for volumes",
            PHASE_ERROR: "a volume failed or was lost",
        }[phase]
    if imports and phase in (PHASE_PENDING, PHASE_CREATING):
        message += f": {imports}"
    return phase, message + (f" ({found[0].message})" if found and phase != PHASE_RUNNING else "")


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
    if volume.mismatch:
        return "does not fit its disk" if volume.ever_bound else "to be replaced"
    if volume.data_volume is not None:
        state = f"DataVolume {lookup(volume.data_volume, 'status', 'phase') or 'Pending'}"
        if (progress := volume.import_progress) and progress != "N/A":
            state += f" {progress}"
        if restarts := volume.import_restarts:
            state += f", {restarts} restarts"
        return state
    if volume.pvc is not None:
        return f"PVC {lookup(volume.pvc, 'status', 'phase') or 'Pending'}"
    return "not created yet"


DISK_TABLE_COLUMNS = ("DISK", "SIZE", "CAPACITY", "BOUND", "SOURCE", "VOLUME", "STATE")


def disk_table(observed: Observed, current: list[Volume]) -> list[str]:
    """``status.diskTable``: one line per disk under a header, padded into columns. ``kubectl describe`` prints
    a list of strings one per line, so the disks read as a table there (and in ``-o yaml``); ``status.volumes``
    stays the data to read by program. The column widths follow the longest value, as kubectl's own tables do."""
    classes = observed.storage_classes
    rows = [DISK_TABLE_COLUMNS] + [
        (
            v.disk.name,
            str(v.requested) if v.requested is not None else "-",
            str(v.capacity) if v.capacity is not None else "-",
            str(v.bound(classes)).lower(),
            v.source,
            v.name,
            _disk_state(observed, v),
        )
        for v in current
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(DISK_TABLE_COLUMNS) - 1)]
    return ["  ".join([*(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)), row[-1]]) for row in rows]


def _disk_state(observed: Observed, volume: Volume) -> str:
    state = _volume_state(volume)
    if missing := _missing_class(observed, volume):
        state += f", no StorageClass {missing}"
    return state[:_STATE_SHOWN]


_STATE_SHOWN = 200  # the schema allows 1024 characters a line: 63 + 64 + 64 + 5 + 10 + 253 + 200 and the gaps fit


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
    if taken := snapshots.record(observed, volume.disk.name):
        entry["snapshots"] = taken
    elif observed.snapshots is None and (kept := observed.recorded(volume.disk.name).get("snapshots")):
        entry["snapshots"] = kept  # not listed this pass: the record stands
    if progress := volume.import_progress:
        entry["importProgress"] = progress
    if restarts := volume.import_restarts:
        entry["importRestartCount"] = restarts
    if failure := volume.expansion_failure:
        entry["expansionFailed"] = True
        entry["resizeStatus"] = failure[0]
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
    if safety_marks_changed(before, after):
        return True
    if before.get("releasedVolumes") != after.get("releasedVolumes"):
        return True  # admission counts them against maxTotalSize
    return "VolumesBound" in changed and became.get("VolumesBound") != "True"


def settled(status_: Obj) -> bool:
    """Nothing is under way: kstatus' ``Reconciling`` is False -- the Wukong is as its spec asks, or stalled until
    someone acts. No answer to a write of ours can change such a status, so it need not wait for one."""
    return any(
        isinstance(c, Mapping) and c.get("type") == "Reconciling" and c.get("status") == "False"
        for c in status_.get("conditions") or []
    )


def safety_marks_changed(before: Obj, after: Obj) -> bool:
    """The record of a loss and of a spent acknowledgement changed: it must not wait, it decides what is made."""
    return _safety_marks(before) != _safety_marks(after)


def _safety_marks(status: Obj) -> set[tuple[str, str]]:
    return {
        (str(v.get("name")), mark)
        for v in status.get("volumes") or []
        for mark in ("lost", SPENT)
        if isinstance(v, Mapping) and v.get(mark)
    }
