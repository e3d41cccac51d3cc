"""Typed, read-only views of a Wukong's spec.

Both processes receive Wukongs as plain dicts. These views read them without trusting their shape:
a field of the wrong type reads as missing, so callers never crash on input the schema check will reject.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

RUN_STRATEGY_DEFAULT = "Always"
RUN_STRATEGY_HALTED = "Halted"
RETAIN, DELETE = "Retain", "Delete"  # volumeRetentionPolicy.whenDeleted


@dataclass(frozen=True)
class Disk:
    name: str
    size: str
    storage_class: str | None = None
    boot: bool | None = None
    image: str | None = None

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Disk:
        return cls(
            name=_str(raw.get("name")) or "",
            size=_str(raw.get("size")) or "",
            storage_class=_str(raw.get("storageClassName")),
            boot=raw.get("boot") if isinstance(raw.get("boot"), bool) else None,
            image=_str(raw.get("image")),
        )


@dataclass(frozen=True)
class WukongSpec:
    cpu: int | None
    memory: str | None
    disks: tuple[Disk, ...]
    run_strategy: str
    when_deleted: str = RETAIN
    start_strategy: str = "{}"  # spec.startStrategy as canonical JSON: applied to the VM whenever it changes

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> WukongSpec:
        spec = mapping(obj.get("spec"))
        cpu = spec.get("cpu")
        return cls(
            cpu=cpu if isinstance(cpu, int) and not isinstance(cpu, bool) else None,
            memory=_str(spec.get("memory")),
            disks=tuple(Disk.from_dict(d) for d in disk_dicts(obj)),
            run_strategy=run_strategy(spec.get("startStrategy")),
            start_strategy=json.dumps(mapping(spec.get("startStrategy")), sort_keys=True, separators=(",", ":")),
            when_deleted=DELETE if mapping(spec.get("volumeRetentionPolicy")).get("whenDeleted") == DELETE else RETAIN,
        )

    @property
    def boot_disk(self) -> Disk | None:
        return next((d for d in self.disks if d.boot), None)


def mapping(value: Any) -> Mapping[str, Any]:
    """``value`` when it is an object, else an empty one: reading hostile input never crashes."""
    return value if isinstance(value, Mapping) else {}


def disk_dicts(obj: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The raw disk entries that are objects (anything else is the schema check's to report)."""
    spec = obj.get("spec")
    disks = spec.get("disks") if isinstance(spec, Mapping) else None
    if not isinstance(disks, list):
        return []
    return [d for d in disks if isinstance(d, Mapping)]


def run_strategy(start: Any) -> str:
    """KubeVirt runStrategy: the one given, else Halted when autoStart is false, else Always."""
    if not isinstance(start, Mapping):
        return RUN_STRATEGY_DEFAULT
    if given := _str(start.get("runStrategy")):
        return given
    if start.get("autoStart") is False:
        return RUN_STRATEGY_HALTED
    return RUN_STRATEGY_DEFAULT


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
