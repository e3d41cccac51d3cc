"""When a Wukong's status is written: at once for what a user watches for, soon for the rest, never twice the same.

A change a user watches for (``status.urgent``: the generation observed, the phase, a condition's status, the
safety marks of a lost volume) is written at once -- unless the pass that saw it wrote children itself: their
answers (a claim binding, a VM starting, KubeVirt judging a change) come back within moments, and the change waits
up to ``settle`` seconds from when it was first seen for them. A new Wukong's first status waits so for the answers
to every write of its creation, not only those of the pass that saw it, so that one that converges quickly says
``Running`` in one write, the moment it runs, instead of three; a phase reached with nothing under way
(``Reconciling`` False: running, or stalled until someone acts) is said at once by a pass that wrote nothing. The
marks of a lost volume never wait. Any other change -- a
message, a volume bound, a size, the node -- is held at most ``hold`` seconds from when it was first seen, so that
the changes following it share its write; an urgent write within that time takes it along. A status equal to the
one stored is never written: every change is written within ``max(hold, settle)`` seconds of when it was seen.

It also remembers what this replica last wrote, so that a pass that runs before the informer has seen that write
starts from it (else it would write the same status again, or lose a 409 on a stale resourceVersion), and so that
the informer's echo of that write is known for one.

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
SETTLE_SECONDS = 2.0  # how long writes of children are taken to be answered, the longest an urgent change waits


@dataclass(frozen=True)
class Decision:
    """``write``: send the status now. ``after``: when not writing, come back in this many seconds to write what
    is held (None: nothing is held)."""

    write: bool
    after: float | None = None


NOTHING = Decision(False)
WRITE = Decision(True)


def _arrived(before: Obj, after: Obj) -> bool:
    """The Wukong reached a phase with nothing under way (Running, Stopped, or stalled until someone acts): no answer
    still coming changes that, so it is said at once."""
    return before.get("phase") != after.get("phase") and status.settled(after)


class StatusWrites:
    def __init__(
        self, hold: float = HOLD_SECONDS, settle: float = SETTLE_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.hold, self.settle, self._clock = hold, settle, clock
        self._lock = threading.Lock()
        self._held_since: dict[Hashable, float] = {}  # when a change not yet written was first seen
        self._acted_at: dict[Hashable, float] = {}  # when a pass last wrote children (while they are answered)
        self._written: dict[Hashable, tuple[str, Obj]] = {}  # (resourceVersion, status) this replica last wrote

    def decide(
        self, key: Hashable, before: Obj, after: Obj, another_pass_coming: bool = False, acted: bool = False
    ) -> Decision:
        """``another_pass_coming``: changes that came in during this pass already scheduled the next one (within
        the coalescing window), which writes what is newer. ``acted``: this pass wrote children, whose answers (a
        claim binding, a VM starting) come back within ``settle`` seconds: an urgent change waits for them, and
        a new Wukong's first status waits for the answers to the writes of any pass of the last ``settle``
        seconds, unless it reached a phase with nothing under way. The hold counts from when a change was first
        seen."""
        now = self._clock()
        with self._lock:
            if acted:
                self._acted_at[key] = now
            elif key in self._acted_at and now - self._acted_at[key] >= self.settle:
                del self._acted_at[key]
            if after == before:
                self._held_since.pop(key, None)
                return NOTHING
            if another_pass_coming:
                self._held_since.setdefault(key, now)
                return NOTHING
            urgent = status.urgent(before, after)
            answered = bool(before) or key not in self._acted_at or _arrived(before, after)
            if urgent and ((not acted and answered) or status.safety_marks_changed(before, after)):
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

    def echo(self, key: Hashable, resource_version: str) -> bool:
        """Whether the Wukong at this resourceVersion is the one this replica's last status write made: the
        informer's echo of it, which brings nothing a pass does not already know."""
        with self._lock:
            written = self._written.get(key)
        return written is not None and bool(resource_version) and written[0] == resource_version

    def forget(self, key: Hashable) -> None:
        with self._lock:
            self._held_since.pop(key, None)
            self._acted_at.pop(key, None)
            self._written.pop(key, None)
