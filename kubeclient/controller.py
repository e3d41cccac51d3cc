"""A controller: a work queue of keys, workers that reconcile one key at a time, a coalescing window and a resync.

The product gives it ``reconcile(key) -> Result`` and the keys to start from; everything about when a key is
reconciled again lives here, as controller-runtime's ``Result{RequeueAfter}`` puts it: a pass asks to come back by
returning a ``Result``, never by raising. A pass that raises is an error like one that returns ``error``: logged,
counted and retried with per-key exponential backoff.

Events for a key that was reconciled within the last ``coalesce`` seconds share one pass at the end of that window
(``enqueue_coalesced``): a burst of child changes (volumes binding one after the other) costs one pass, and so one
status write, instead of one per event. A key this replica does not own (``owns``: sharding) is dropped untouched.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from kubeclient.workqueue import ShutDown, WorkQueue

log = logging.getLogger("wukong.kubeclient.controller")
K = TypeVar("K", bound=Hashable)

SUCCESS, CONFLICT, ERROR = "success", "conflict", "error"


@dataclass(frozen=True)
class Result:
    """What a pass asks of the controller. ``requeue_after``: come back after that many seconds (a wait on
    something nothing watches, a status write held back). ``conflict``: the world moved under the pass (a stale
    write, an object that appeared or vanished): come back soon, with backoff, not counted as an error.
    ``error``: the pass failed."""

    requeue_after: float | None = None
    conflict: str | None = None
    error: BaseException | None = None

    @property
    def outcome(self) -> str:
        return ERROR if self.error is not None else CONFLICT if self.conflict is not None else SUCCESS


@dataclass
class Hooks:
    """Where the product counts what the controller does (its metrics names are its own)."""

    passed: Callable[[str, float], None] = lambda _outcome, _seconds: None  # outcome, seconds
    resynced: Callable[[], None] = lambda: None
    depth: Callable[[Callable[[], int]], None] = lambda _length: None  # given the queue's length, once


class Controller(Generic[K]):
    def __init__(
        self,
        reconcile: Callable[[K], Result],
        keys: Callable[[], Iterable[K]],
        workers: int = 4,
        resync_period: float = 300.0,
        coalesce: float = 1.0,
        owns: Callable[[K], bool] | None = None,
        hooks: Hooks | None = None,
        queue: WorkQueue[K] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``keys``: every key there is (the resync and the start enqueue them all)."""
        self._reconcile, self._keys = reconcile, keys
        self.workers, self.resync_period, self.coalesce = workers, resync_period, coalesce
        self._owns, self._hooks, self._clock = owns, hooks or Hooks(), clock
        self.queue: WorkQueue[K] = queue if queue is not None else WorkQueue()
        self._hooks.depth(lambda: len(self.queue))
        self._stopped = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._last_pass: dict[K, float] = {}  # when each key's last pass started
        self._trailing: set[K] = set()  # keys with a pass already scheduled at the end of their window

    # -- adding work -------------------------------------------------------------------------------------
    def enqueue(self, key: K) -> None:
        self.queue.add(key)

    def enqueue_all(self) -> None:
        for key in self._keys():
            self.queue.add(key)

    def enqueue_coalesced(self, key: K) -> None:
        """At once when the key has been quiet for ``coalesce`` seconds; otherwise once, at the end of the window
        that its last pass opened."""
        now = self._clock()
        with self._lock:
            since = now - self._last_pass.get(key, now - self.coalesce)
            if since >= self.coalesce:
                self.queue.add(key)
            elif key not in self._trailing:
                self._trailing.add(key)
                self.queue.add_after(key, self.coalesce - since)

    def pass_scheduled(self, key: K) -> bool:
        """Whether changes that came in during this key's pass already scheduled another one: what this pass
        would write, that one writes newer."""
        with self._lock:
            return key in self._trailing

    # -- running -----------------------------------------------------------------------------------------
    def start(self) -> None:
        for index in range(self.workers):
            thread = threading.Thread(target=self._work, name=f"worker-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)
        threading.Thread(target=self._resync, name="resync", daemon=True).start()
        self.enqueue_all()

    def stop(self, timeout: float = 30.0) -> None:
        """Graceful: no new work is taken, passes under way finish."""
        self._stopped.set()
        self.queue.shut_down()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    @property
    def stopped(self) -> threading.Event:
        return self._stopped

    def _resync(self) -> None:
        while not self._stopped.wait(self.resync_period):
            self.enqueue_all()
            self._hooks.resynced()
            self._prune()

    def _prune(self) -> None:
        """Forget the pass times of keys quiet for longer than the window: they no longer change anything."""
        now = self._clock()
        with self._lock:
            self._last_pass = {k: t for k, t in self._last_pass.items() if now - t < self.coalesce}

    def _work(self) -> None:
        while True:
            try:
                key = self.queue.get()
            except ShutDown:
                return
            try:
                self.process(key)
            finally:
                self.queue.done(key)

    def process(self, key: K) -> Result | None:
        """One pass over a key the queue handed out (the worker marks it done). None: not this replica's key."""
        if self._owns is not None and not self._owns(key):
            return None  # another replica's shard
        started = time.perf_counter()
        with self._lock:
            self._last_pass[key] = self._clock()
            self._trailing.discard(key)
        try:
            result = self._reconcile(key)
        except Exception as error:  # a bug or an API error: the key is retried with backoff either way
            result = Result(error=error)
        if result.outcome == SUCCESS:
            self.queue.forget(key)
            if result.requeue_after is not None:
                self.queue.add_after(key, result.requeue_after)
        else:
            delay = self.queue.add_rate_limited(key)
            if result.error is not None:
                log.warning("reconcile %s failed (%s); retrying in %.2fs", _named(key), result.error, delay)
        self._hooks.passed(result.outcome, time.perf_counter() - started)
        return result


def _named(key: Hashable) -> str:
    """``namespace/name`` for a (namespace, name) key, as kubectl writes it."""
    return "/".join(map(str, key)) if isinstance(key, tuple) else str(key)
