"""Cache transforms: what an informer keeps of each object, as controller-runtime's ``cache.TransformFunc`` decides.

An informer holds every object it watches for as long as the process runs, so what it keeps is most of a
controller's memory. Parsed from JSON, a 2-disk Wukong's six objects (the Wukong, its DataVolume, two claims, the VM
and its instance) take about 100 KB of Python objects: more than half of it ``managedFields`` -- server-side apply's
record of who set which field, read by no controller -- and most of the rest the same short strings (keys, "True",
"Bound", label values) allocated again in every object. A transform runs once per object as it arrives, before the
cache and the handlers see it; whoever builds the informer says which, since only it knows what it reads:

- ``without_bookkeeping``: no ``managedFields``, no kubectl ``last-applied-configuration`` annotation;
- ``keep_only(part, fields)``: of one part (a ``status`` written by another controller), only the fields read;
- ``SharedStrings``: the object rebuilt with one copy of each key and each short string value already held (a
  bounded table: unique values -- uids, resourceVersions -- come and go without piling up).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Obj = dict[str, Any]
Transform = Callable[[Obj], Obj]
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"  # client-side apply's copy of the whole object


def without_bookkeeping(obj: Obj) -> Obj:
    """The object without ``metadata.managedFields`` and kubectl's last-applied annotation: records of who wrote
    what, which a controller never reads and never writes back (its writes are patches of the fields it sets)."""
    metadata = obj.get("metadata")
    if isinstance(metadata, dict):
        metadata.pop("managedFields", None)
        annotations = metadata.get("annotations")
        if isinstance(annotations, dict) and LAST_APPLIED in annotations:
            metadata["annotations"] = {k: v for k, v in annotations.items() if k != LAST_APPLIED}
    return obj


def keep_only(part: str, fields: tuple[str, ...]) -> Transform:
    """Of ``obj[part]``, only ``fields`` (those present): the rest of a part another controller writes -- a
    VirtualMachineInstance's status with its interfaces, guest OS and migration state -- is read by no one here."""

    def transform(obj: Obj) -> Obj:
        value = obj.get(part)
        if isinstance(value, dict):
            obj[part] = {k: value[k] for k in fields if k in value}
        return obj

    return transform


def chain(*transforms: Transform) -> Transform:
    def transform(obj: Obj) -> Obj:
        for step in transforms:
            obj = step(obj)
        return obj

    return transform


class SharedStrings:
    """Rebuilds an object so that equal keys and equal short string values are one string object across every
    object it has seen: ``json.loads`` shares keys only within one document, so every cached object otherwise
    carries its own "metadata", "namespace", "ReadWriteOnce", "True"... A string is 50-60 bytes; a cached child
    holds a few hundred. The table holds at most ``capacity`` strings and starts afresh when full, so values seen
    once (uids, resourceVersions, timestamps) cost a bounded amount; the strings an object shares stay shared.
    Shared by several informers' threads: a dict's ``setdefault`` is atomic, and a lost race only costs a copy."""

    def __init__(self, max_length: int = 64, capacity: int = 1 << 15) -> None:
        self.max_length, self.capacity = max_length, capacity
        self._table: dict[str, str] = {}

    def __call__(self, obj: Obj) -> Obj:
        shared = self._share(obj)
        assert isinstance(shared, dict)
        return shared

    def __len__(self) -> int:
        return len(self._table)

    def _share(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {self._string(k): self._share(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._share(v) for v in value]
        if isinstance(value, str) and len(value) <= self.max_length:
            return self._string(value)
        return value

    def _string(self, text: str) -> str:
        found = self._table.get(text)
        if found is not None:
            return found
        if len(self._table) >= self.capacity:
            self._table = {}
        return self._table.setdefault(text, text)
