"""Sharing the Wukongs among replicas: each replica holds the Leases of some shards and reconciles only those.

A Wukong's shard is a stable hash of ``namespace/name`` into ``shards`` buckets. Each shard has a Lease
(``<prefix>-<i>``). A replica takes free shards up to its fair share (``ceil(shards / replicas)``) at once; a
shard that stays free beyond that (its holder died and nobody with room took it) is taken by anyone after one more
lease duration, so the survivors take over a dead replica's work. A shard whose Lease cannot be renewed within the
renew deadline is dropped before another replica can have it (the Lease outlives the renew deadline), so no
Wukong is reconciled by two replicas at once.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable

from kubeclient.leader import LEASE_SECONDS, LeaderElector
from kubeclient.rest import Kube

log = logging.getLogger("wukong.reconciler.sharding")
MAX_SHARDS = 16  # the Lease names RBAC grants: <prefix>-0 .. <prefix>-15


def shard_of(namespace: str, name: str, shards: int) -> int:
    digest = hashlib.sha256(f"{namespace}/{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % shards


class ShardHolder:
    def __init__(
        self,
        kube: Kube,
        namespace: str,
        prefix: str,
        shards: int,
        replicas: int,
        identity: str,
        lease_seconds: int = LEASE_SECONDS,
        on_gained: Callable[[int], None] = lambda _shard: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.shards, self.fair_share = shards, math.ceil(shards / max(1, replicas))
        self.lease_seconds, self._clock, self._on_gained = lease_seconds, clock, on_gained
        renew_deadline, retry = lease_seconds * 2 / 3, max(0.5, lease_seconds / 7.5)
        self.retry_period = retry
        self._electors = [
            LeaderElector(kube, namespace, f"{prefix}-{i}", identity, lease_seconds, renew_deadline, retry, clock)
            for i in range(shards)
        ]
        self._renewed: dict[int, float] = {}
        self._free_since: dict[int, float] = {}
        self._lock = threading.Lock()

    @property
    def held(self) -> frozenset[int]:
        with self._lock:
            return frozenset(self._renewed)

    def owns(self, namespace: str, name: str) -> bool:
        return shard_of(namespace, name, self.shards) in self.held

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.step()
            stop.wait(self.retry_period)

    def step(self) -> None:
        now = self._clock()
        for shard, elector in enumerate(self._electors):
            if shard in self._renewed:
                self._renew(shard, elector, now)
                continue
            wanted = len(self._renewed) < self.fair_share or self._free_for_long(shard, elector, now)
            if wanted and elector.try_acquire_or_renew():
                with self._lock:
                    self._renewed[shard] = now
                self._free_since.pop(shard, None)
                log.info("took shard %d of %d (holding %s)", shard, self.shards, sorted(self._renewed))
                self._on_gained(shard)

    def release(self) -> None:
        for shard in sorted(self.held):
            self._electors[shard].release(held=True)
        with self._lock:
            self._renewed.clear()

    def _renew(self, shard: int, elector: LeaderElector, now: float) -> None:
        if elector.try_acquire_or_renew():
            with self._lock:
                self._renewed[shard] = now
        elif now - self._renewed[shard] > elector.renew_deadline:
            with self._lock:
                del self._renewed[shard]
            log.warning("lost shard %d: its Lease could not be renewed in time", shard)

    def _free_for_long(self, shard: int, elector: LeaderElector, now: float) -> bool:
        """Beyond the fair share, take a shard only after it stayed free for a whole lease duration."""
        if elector.held_by_another():
            self._free_since.pop(shard, None)
            return False
        since = self._free_since.setdefault(shard, now)
        return now - since >= self.lease_seconds
