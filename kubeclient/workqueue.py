"""A work queue with de-duplication, per-key exponential backoff and delayed adds (client-go's shape).

A key is in the queue at most once; a key added while a worker holds it is queued again when the
worker is done, so no two workers ever reconcile the same Wukong at once and no change is missed.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class ShutDown(Exception):
    pass


class WorkQueue(Generic[T]):
    def __init__(self, base_delay: float = 0.005, max_delay: float = 300.0) -> None:
        self._queue: deque[T] = deque()
        self._dirty: set[T] = set()
        self._processing: set[T] = set()
        self._failures: dict[T, int] = {}
        self._delayed: list[tuple[float, int, T]] = []
        self._sequence = 0
        self._base, self._max = base_delay, max_delay
        self._cond = threading.Condition()
        self._shutting_down = False
        self._timer = threading.Thread(target=self._release_delayed, name="workqueue-delays", daemon=True)
        self._timer.start()

    def add(self, item: T) -> None:
        with self._cond:
            if self._shutting_down or item in self._dirty:
                return
            self._dirty.add(item)
            if item not in self._processing:
                self._queue.append(item)
                self._cond.notify_all()

    def add_after(self, item: T, delay: float) -> None:
        if delay <= 0:
            self.add(item)
            return
        with self._cond:
            self._sequence += 1
            heapq.heappush(self._delayed, (time.monotonic() + delay, self._sequence, item))
            self._cond.notify_all()

    def add_rate_limited(self, item: T) -> float:
        """Requeue after a failure: 5ms, 10ms, 20ms ... up to max_delay. Returns the delay used."""
        with self._cond:
            failures = self._failures.get(item, 0)
            self._failures[item] = failures + 1
        delay = min(self._base * 2**failures, self._max)
        self.add_after(item, delay)
        return delay

    def forget(self, item: T) -> None:
        with self._cond:
            self._failures.pop(item, None)

    def get(self, timeout: float | None = None) -> T:
        with self._cond:
            deadline = None if timeout is None else time.monotonic() + timeout
            while not self._queue:
                if self._shutting_down:
                    raise ShutDown
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError
                self._cond.wait(remaining)
            item = self._queue.popleft()
            self._processing.add(item)
            self._dirty.discard(item)
            return item

    def done(self, item: T) -> None:
        with self._cond:
            self._processing.discard(item)
            if item in self._dirty:
                self._queue.append(item)
                self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._queue)

    def shut_down(self) -> None:
        with self._cond:
            self._shutting_down = True
            self._cond.notify_all()

    def _release_delayed(self) -> None:
        with self._cond:
            while not self._shutting_down:
                now = time.monotonic()
                while self._delayed and self._delayed[0][0] <= now:
                    _, _, item = heapq.heappop(self._delayed)
                    self.add(item)  # the condition's lock is re-entrant
                wait = self._delayed[0][0] - now if self._delayed else None
                self._cond.wait(wait)
