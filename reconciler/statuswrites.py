"""When a Wukong's status is written: at once for what a user watches for, soon for the rest, never twice the same.

A change a user watches for (``status.urgent``: the generation observed, the phase, a condition's status, the
safety marks of a lost volume) is written at once -- unless the pass that saw it wrote children itself: their
answers come back within moments, and the change waits up to ``settle`` seconds for them. Any other change -- a
message, a volume bound, a size, the node -- is held at most ``hold`` seconds from when it was first seen, so
that the changes following it (children binding one after the other, the VM starting) share its write; an urgent
write within that time takes it along. A status equal to the one stored is never written.

It also remembers what this replica last wrote, so that a pass that runs before the informer has seen that write
starts from it (else it would write the same status again, or lose a 409 on a stale resourceVersion).

Pure apart from the clock, which is injected: the unit tests drive it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from reconciler import status
from wukong.manifests import Obj

HOLD_SECONDS = 2.0  # the longest a changed message or detail waits for company
SETTLE_SECONDS = 2.0  # the longest an urgent change waits for the answers to the writes of its own pass


@dataclass(frozen=True)
class Decision:
    """``write``: send the status now. ``after``: when not writing, come back in this many seconds to write what
    is held (None: nothing is held)."""

    write: bool
    after: float | None = None


NOTHING = Decision(False)
WRITE = Decision(True)


class StatusWrites:
    def __init__(
        self, hold: float = HOLD_SECONDS, settle: float = SETTLE_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.hold, self.settle, self._clock = hold, settle, clock
        self._lock = threading.Lock()
        self._held_since: dict[Hashable, float] = {}  # when a change not yet written was first seen
        self._written: dict[Hashable, tuple[str, Obj]] = {}  # (resourceVersion, status) this replica last wrote

    def decide(
        self, key: Hashable, before: Obj, after: Obj, another_pass_coming: bool = False, acted: bool = False
    ) -> Decision:
        """``another_pass_coming``: changes that came in during this pass already scheduled the next one (within
        the coalescing window), which writes what is newer. ``acted``: this pass wrote children, whose answers
        (a claim binding, a VM starting) come back within the window: even an urgent change then waits ``settle``
        seconds for them, rather than report a world the pass itself is changing. The hold counts from when a
        change was first seen; the marks of a lost volume never wait."""
        if after == before:
            with self._lock:
                self._held_since.pop(key, None)
            return NOTHING
        now = self._clock()
        with self._lock:
            if another_pass_coming:
                self._held_since.setdefault(key, now)
                return NOTHING
            urgent = status.urgent(before, after)
            if urgent and (not acted or status.safety_marks_changed(before, after)):
                self._held_since.pop(key, None)
                return WRITE
            since = self._held_since.setdefault(key, now)
            limit = self.settle if urgent else self.hold
            if now - since >= limit:
                del self._held_since[key]
                return WRITE
            return Decision(False, since + limit - now)

    def written(self, key: Hashable, resource_version: str, written: Obj) -> None:
        with self._lock:
            self._held_since.pop(key, None)
            self._written[key] = (resource_version, written)

    def latest(self, key: Hashable, wukong: dict[str, Any]) -> dict[str, Any]:
        """The Wukong with the status this replica last wrote, when the cache has not seen that write yet."""
        with self._lock:
            written = self._written.get(key)
        cached = wukong["metadata"].get("resourceVersion") or ""
        if written is None or not cached.isdigit() or not written[0].isdigit():
            return wukong
        if int(written[0]) <= int(cached):  # the cache has caught up: the copy is not needed again
            with self._lock:
                if self._written.get(key) is written:
                    del self._written[key]
            return wukong
        return {**wukong, "metadata": {**wukong["metadata"], "resourceVersion": written[0]}, "status": written[1]}

    def forget(self, key: Hashable) -> None:
        with self._lock:
            self._held_since.pop(key, None)
            self._written.pop(key, None)
