"""A Wukong's whole state as one document: ``kubectl wukong status -o json`` prints it, the text view renders it.

Pure: it reads the objects as the API server returned them (the Wukong, its VirtualMachine and its instance, any of
the last two possibly absent) and trusts none of their shapes: a field of the wrong type reads as missing. The
shape is an interface (docs/vm-owners.md documents it): keys are added, never renamed or removed, within
``formatVersion`` 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

FORMAT_VERSION = 1
DISK_FIELDS = ("importProgress", "importRestartCount", "expansionFailed", "resizeStatus", "lost", "everBound")
# Conditions that say the Wukong is on its way somewhere, when they hold this status
# (kstatus' Reconciling and Stalled read the same way, should the Wukong carry them)
WAITING_WHEN = {
    "VolumesBound": "False",
    "Resizing": "True",
    "RestartRequired": "True",
    "Reconciling": "True",
    "Stalled": "True",
}


def status_view(
    wukong: Mapping[str, Any],
    vm: Mapping[str, Any] | None,
    vmi: Mapping[str, Any] | None,
    unreadable: str | None = None,
) -> dict[str, Any]:
    """``unreadable``: why the VM and its instance could not be read (then both are None)."""
    metadata, spec, status = _map(wukong.get("metadata")), _map(wukong.get("spec")), _map(wukong.get("status"))
    conditions = [_condition(c) for c in _list(status.get("conditions")) if isinstance(c, Mapping)]
    by_type = {c["type"]: c for c in conditions}
    generation = _int(metadata.get("generation"))
    observed = _int(status.get("observedGeneration"))
    return {
        "formatVersion": FORMAT_VERSION,
        "name": _str(metadata.get("name")),
        "namespace": _str(metadata.get("namespace")),
        "generation": generation,
        "observedGeneration": observed,
        "phase": _str(status.get("phase")),
        "ready": _summary(by_type.get("Ready")),
        "degraded": _summary(by_type.get("Degraded")),
        "waitingFor": _waiting(status, conditions, generation, observed),
        "disks": _disks(spec, status),
        "vm": _vm(vm, _str(status.get("vmName"))),
        "vmi": _vmi(vmi),
        "conditions": conditions,
        "vmUnreadable": unreadable,
    }


def _summary(condition: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if condition is None:
        return None
    return {k: condition.get(k) for k in ("status", "reason", "message")}


def _waiting(
    status: Mapping[str, Any], conditions: list[dict[str, Any]], generation: int | None, observed: int | None
) -> list[dict[str, str]]:
    """What the Wukong waits for, each with a reason and what to read: the reconciler, then every condition that
    says it is on its way (a Ready that is False says why, Blocked reasons included)."""
    found: list[dict[str, str]] = []
    if not status:
        found.append({"reason": "NoStatus", "message": "the reconciler's first pass: this Wukong has no status yet"})
    elif generation is not None and observed is not None and observed < generation:
        found.append(
            {
                "reason": "NotObserved",
                "message": f"the reconciler to observe generation {generation} (the status is of {observed})",
            }
        )
    for condition in conditions:
        kind, state = condition["type"], condition["status"]
        holds = kind == "Ready" and state == "False" and condition["reason"] != "Stopped"
        if holds or WAITING_WHEN.get(kind) == state:
            found.append({"reason": f"{kind}: {condition['reason']}", "message": condition["message"] or ""})
    return found


def _disks(spec: Mapping[str, Any], status: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One entry per disk of the spec, in its order, with what the status says of its volume; then the status'
    entries for disks no longer in the spec (the status catches up at the next pass)."""
    recorded = {v.get("name"): v for v in _list(status.get("volumes")) if isinstance(v, Mapping)}
    disks = [d for d in _list(spec.get("disks")) if isinstance(d, Mapping)]
    names = [_str(d.get("name")) for d in disks]
    entries = [_disk(d, recorded.get(_str(d.get("name")))) for d in disks]
    entries += [_disk({"name": name}, v) for name, v in recorded.items() if name not in names]
    return entries


def _disk(disk: Mapping[str, Any], volume: Mapping[str, Any] | None) -> dict[str, Any]:
    volume = volume or {}
    image = _str(disk.get("image"))
    entry: dict[str, Any] = {
        "name": _str(disk.get("name")),
        "size": _str(disk.get("size")),
        "requested": _str(volume.get("size")),
        "capacity": _str(volume.get("capacity")),
        "storageClass": _str(disk.get("storageClassName")),
        "image": image,
        "source": _str(volume.get("source")) or ("dataVolume" if image else "pvc" if disk else None),
        "volume": _str(volume.get("pvcName")),
        "bound": volume.get("bound") if isinstance(volume.get("bound"), bool) else None,
        "boot": disk.get("boot") is True,
    }
    for key in DISK_FIELDS:
        value = volume.get(key)
        entry[key] = value if isinstance(value, str | bool | int) else None
    entry["snapshots"] = [
        {k: s.get(k) for k in ("name", "readyToUse", "size", "time", "error") if k in s}
        for s in _list(volume.get("snapshots"))
        if isinstance(s, Mapping)
    ]
    return entry


def _vm(vm: Mapping[str, Any] | None, name: str | None) -> dict[str, Any] | None:
    if vm is None:
        return None
    status, spec = _map(vm.get("status")), _map(vm.get("spec"))
    restart = next(
        (c for c in _list(status.get("conditions")) if isinstance(c, Mapping) and c.get("type") == "RestartRequired"),
        None,
    )
    return {
        "name": _str(_map(vm.get("metadata")).get("name")) or name,
        "runStrategy": _str(spec.get("runStrategy")),
        "printableStatus": _str(status.get("printableStatus")),
        "ready": status.get("ready") is True,
        "restartRequired": restart is not None and restart.get("status") == "True",
    }


def _vmi(vmi: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if vmi is None:
        return None
    metadata, status = _map(vmi.get("metadata")), _map(vmi.get("status"))
    return {
        "name": _str(metadata.get("name")),
        "uid": _str(metadata.get("uid")),
        "phase": _str(status.get("phase")),
        "node": _str(status.get("nodeName")),
        "created": _str(metadata.get("creationTimestamp")),
    }


def _condition(raw: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "type": _str(raw.get("type")) or "",
        "status": _str(raw.get("status")) or "Unknown",
        "reason": _str(raw.get("reason")) or "",
        "message": _str(raw.get("message")) or "",
        "lastTransitionTime": _str(raw.get("lastTransitionTime")),
        "observedGeneration": _int(raw.get("observedGeneration")),
    }


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
