"""Leader election on a coordination.k8s.io Lease, the way client-go's leaderelection does it.

Expiry is judged by the local clock since this process last saw the lease record change, never by
comparing timestamps written by another host, so clock skew between replicas cannot give two leaders.
A leader that cannot renew within the renew deadline stops leading (the caller exits); on shutdown the
lease is released so a standby takes over at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from kubeclient import timestamps
from kubeclient.resources import LEASES
from kubeclient.rest import AlreadyExists, ApiError, Conflict, Kube, NotFound

log = logging.getLogger("wukong.kubeclient.leader")
LEASE_SECONDS = 15  # client-go's default lease duration; every Lease of the project's processes has it


class LeaderElector:
    def __init__(
        self,
        kube: Kube,
        namespace: str,
        name: str,
        identity: str,
        lease_seconds: int = LEASE_SECONDS,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kube, self.namespace, self.name, self.identity = kube, namespace, name, identity
        self.lease_seconds, self.renew_deadline, self.retry_period = lease_seconds, renew_deadline, retry_period
        self._observed: tuple[Any, ...] | None = None
        self._observed_at = 0.0
        self._clock = clock
        self.leading = threading.Event()

    def run(self, on_started: Callable[[], None], on_lost: Callable[[], None], stop: threading.Event) -> None:
        """Block until leadership is acquired (or ``stop``), then keep renewing until ``stop`` or loss.

        ``on_started`` runs in its own thread, so renewing never waits for it (starting may take longer than
        the lease). On ``stop`` the lease is kept: the caller finishes its work first, then calls ``release``.
        """
        while not self.try_acquire_or_renew():
            if stop.wait(self.retry_period):
                return
        last_renewed = self._clock()
        self.leading.set()
        log.info("became the leader (lease %s/%s, identity %s)", self.namespace, self.name, self.identity)
        if stop.is_set():
            return
        threading.Thread(target=on_started, name="leader-started", daemon=True).start()
        while not stop.wait(self.retry_period):
            if self.try_acquire_or_renew():
                last_renewed = self._clock()
            elif self._clock() - last_renewed > self.renew_deadline:
                log.error("could not renew the lease within %.0fs; stopping", self.renew_deadline)
                self.leading.clear()
                on_lost()
                return

    def held_by_another(self) -> bool:
        """Whether another process holds the lease now (read only: never takes it). Unknown counts as held."""
        try:
            lease = self.kube.get(LEASES, self.namespace, self.name)
        except NotFound:
            return False
        except ApiError:
            return True
        return self._held_by_another(lease.get("spec") or {})

    def _held_by_another(self, spec: dict[str, Any]) -> bool:
        """client-go's rule: another holder's lease is valid until its record has not changed for its duration, as
        this process's own clock measures it (no trust in the other's clock)."""
        holder = spec.get("holderIdentity") or ""
        record = (holder, spec.get("renewTime"), spec.get("leaseTransitions"))
        if record != self._observed:
            self._observed, self._observed_at = record, self._clock()
        duration = spec.get("leaseDurationSeconds") or self.lease_seconds
        return bool(holder) and holder != self.identity and self._clock() - self._observed_at < duration

    def try_acquire_or_renew(self) -> bool:
        """One attempt, as client-go's tryAcquireOrRenew: True when this process holds the lease afterwards."""
        now = _micro_time()
        try:
            lease = self.kube.get(LEASES, self.namespace, self.name)
        except NotFound:
            return self._create(now)
        except ApiError as error:  # Unreachable included: no answer is no lease
            log.warning("reading the lease failed: %s", error)
            return False
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        if self._held_by_another(spec):
            return False
        updated = dict(spec, holderIdentity=self.identity, leaseDurationSeconds=self.lease_seconds, renewTime=now)
        if holder != self.identity:
            updated.update(acquireTime=now, leaseTransitions=(spec.get("leaseTransitions") or 0) + 1)
        try:
            self.kube.update(LEASES, {**lease, "spec": updated})
        except ApiError as error:  # a Conflict: someone else wrote first
            log.debug("lease update lost: %s", error)
            return False
        return True

    def _create(self, now: str) -> bool:
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": self.lease_seconds,
                "acquireTime": now,
                "renewTime": now,
                "leaseTransitions": 0,
            },
        }
        try:
            self.kube.create(LEASES, body)
        except (AlreadyExists, Conflict):
            return False
        except ApiError as error:
            log.warning("creating the lease failed: %s", error)
            return False
        return True

    def release(self, held: bool = False) -> None:
        """Give the lease up so a standby does not wait for it to expire (after this process stopped its work).
        ``held``: the caller knows it holds the lease without ``run`` (it renews it itself, as shards do)."""
        if not self.leading.is_set() and not held:
            return
        self.leading.clear()
        try:
            lease = self.kube.get(LEASES, self.namespace, self.name)
            if (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                spec = dict(lease["spec"], holderIdentity=None, leaseDurationSeconds=1, renewTime=_micro_time())
                self.kube.update(LEASES, {**lease, "spec": spec})
                log.info("released the lease")
        except ApiError as error:
            log.warning("could not release the lease: %s", error)


def _micro_time() -> str:
    return timestamps.now_micro()
