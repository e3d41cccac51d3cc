"""Leader election on a Lease, against an in-memory Lease store that keeps the API server's write rules."""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from typing import Any

from kubeclient.leader import LeaderElector
from kubeclient.resources import LEASES, Resource
from kubeclient.rest import AlreadyExists, ApiError, Conflict, NotFound, Unreachable

NAMESPACE, NAME = "wukong-system", "wukong-reconciler"
LEASE_SECONDS = 15
LONG_AGO = "2000-01-01T00:00:00.000000Z"  # another host's clock may say anything: it must not matter


class LeaseStore:
    """The part of ``Kube`` the elector uses, with the API server's rules: create fails when the object
    exists, update fails on a stale resourceVersion, and every write bumps the resourceVersion."""

    def __init__(self) -> None:
        self._objects: dict[tuple[str, str], dict[str, Any]] = {}
        self._version = 0
        self._lock = threading.Lock()
        self.failing: ApiError | None = None  # when set, every write raises it (the API is unavailable)
        self.meanwhile: Callable[[], None] | None = None  # a competing write landing between our read and write

    def get(self, resource: Resource, namespace: str | None, name: str) -> dict[str, Any]:
        assert resource is LEASES
        with self._lock:
            if (namespace or "", name) not in self._objects:
                raise NotFound(404, "NotFound", f'leases "{name}" not found')
            return copy.deepcopy(self._objects[(namespace or "", name)])

    def create(self, resource: Resource, obj: dict[str, Any]) -> dict[str, Any]:
        assert resource is LEASES
        self._let_a_competitor_write_first()
        with self._lock:
            if self.failing is not None:
                raise self.failing
            if self._key(obj) in self._objects:
                raise AlreadyExists(409, "AlreadyExists", f'leases "{obj["metadata"]["name"]}" already exists')
            return self._write(obj)

    def update(self, resource: Resource, obj: dict[str, Any]) -> dict[str, Any]:
        assert resource is LEASES
        self._let_a_competitor_write_first()
        with self._lock:
            if self.failing is not None:
                raise self.failing
            current = self._objects.get(self._key(obj))
            if current is None:
                raise NotFound(404, "NotFound", f'leases "{obj["metadata"]["name"]}" not found')
            if obj["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
                raise Conflict(409, "Conflict", "the object has been modified; apply your changes to the latest")
            return self._write(obj)

    def put(self, **spec: Any) -> None:
        """Write the lease as another replica would (create or overwrite), bumping its version."""
        body = {"metadata": {"name": NAME, "namespace": NAMESPACE}, "spec": spec}
        with self._lock:
            self._write(body)

    def spec(self) -> dict[str, Any]:
        return self.get(LEASES, NAMESPACE, NAME)["spec"]

    def _let_a_competitor_write_first(self) -> None:
        if self.meanwhile is not None:
            competitor, self.meanwhile = self.meanwhile, None
            competitor()

    def _write(self, obj: dict[str, Any]) -> dict[str, Any]:
        self._version += 1
        stored = copy.deepcopy(obj)
        stored["metadata"]["resourceVersion"] = str(self._version)
        self._objects[self._key(stored)] = stored
        return copy.deepcopy(stored)

    @staticmethod
    def _key(obj: dict[str, Any]) -> tuple[str, str]:
        return obj["metadata"].get("namespace") or "", obj["metadata"]["name"]


class Clock:
    """Monotonic seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def elector(
    store: LeaseStore,
    identity: str,
    clock: Callable[[], float] = time.monotonic,
    retry_period: float = 2.0,
    renew_deadline: float = 10.0,
) -> LeaderElector:
    return LeaderElector(
        store,  # type: ignore[arg-type]
        NAMESPACE,
        NAME,
        identity,
        lease_seconds=LEASE_SECONDS,
        renew_deadline=renew_deadline,
        retry_period=retry_period,
        clock=clock,
    )


def held_by(store: LeaseStore, holder: str, renewed: str, transitions: int = 0) -> None:
    store.put(
        holderIdentity=holder,
        leaseDurationSeconds=LEASE_SECONDS,
        acquireTime=LONG_AGO,
        renewTime=renewed,
        leaseTransitions=transitions,
    )


def test_a_missing_lease_is_created_with_this_process_as_its_holder():
    store = LeaseStore()
    assert elector(store, "me", Clock()).try_acquire_or_renew() is True
    spec = store.spec()
    assert spec["holderIdentity"] == "me"
    assert spec["leaseTransitions"] == 0
    assert spec["leaseDurationSeconds"] == LEASE_SECONDS
    assert spec["acquireTime"] and spec["renewTime"] == spec["acquireTime"]


def test_a_lease_whose_holder_keeps_renewing_is_not_taken_even_when_checks_are_further_apart_than_its_duration():
    store, clock = LeaseStore(), Clock()
    held_by(store, "other", renewed="2030-01-01T00:00:00.000000Z")
    standby = elector(store, "me", clock)
    assert standby.try_acquire_or_renew() is False
    for renewal in range(1, 6):
        clock.advance(LEASE_SECONDS + 5)
        held_by(store, "other", renewed=f"2030-01-01T00:00:{renewal:02d}.000000Z")
        assert standby.try_acquire_or_renew() is False, f"taken after renewal {renewal}"
    assert store.spec()["holderIdentity"] == "other"


def test_a_lease_left_unchanged_for_longer_than_its_duration_is_taken_over():
    store, clock = LeaseStore(), Clock()
    held_by(store, "other", renewed=LONG_AGO, transitions=2)
    standby = elector(store, "me", clock)
    assert standby.try_acquire_or_renew() is False, "expiry is judged by the local clock, not the renewTime"
    clock.advance(LEASE_SECONDS - 1)
    assert standby.try_acquire_or_renew() is False
    clock.advance(2)
    assert standby.try_acquire_or_renew() is True
    spec = store.spec()
    assert spec["holderIdentity"] == "me"
    assert spec["leaseTransitions"] == 3
    assert spec["acquireTime"] != LONG_AGO
    assert spec["renewTime"] == spec["acquireTime"]


def test_the_holder_renewing_moves_the_renew_time_and_keeps_the_acquire_time_and_transitions():
    store = LeaseStore()
    held_by(store, "me", renewed=LONG_AGO, transitions=4)
    version = store.get(LEASES, NAMESPACE, NAME)["metadata"]["resourceVersion"]
    assert elector(store, "me", Clock()).try_acquire_or_renew() is True
    lease = store.get(LEASES, NAMESPACE, NAME)
    assert lease["metadata"]["resourceVersion"] != version
    assert lease["spec"]["holderIdentity"] == "me"
    assert lease["spec"]["renewTime"] > LONG_AGO
    assert lease["spec"]["acquireTime"] == LONG_AGO
    assert lease["spec"]["leaseTransitions"] == 4


def test_an_attempt_that_loses_a_write_conflict_returns_false_and_leaves_the_winner_holding():
    store, clock = LeaseStore(), Clock()
    held_by(store, "gone", renewed=LONG_AGO)
    standby = elector(store, "me", clock)
    standby.try_acquire_or_renew()
    clock.advance(LEASE_SECONDS + 1)
    store.meanwhile = lambda: held_by(store, "faster", renewed=LONG_AGO, transitions=1)
    assert standby.try_acquire_or_renew() is False
    assert store.spec()["holderIdentity"] == "faster"


def test_an_attempt_that_loses_the_race_to_create_the_lease_returns_false():
    store = LeaseStore()
    store.meanwhile = lambda: held_by(store, "faster", renewed=LONG_AGO)
    assert elector(store, "me", Clock()).try_acquire_or_renew() is False
    assert store.spec()["holderIdentity"] == "faster"


def test_a_released_lease_is_taken_by_a_standby_at_once():
    store, clock = LeaseStore(), Clock()
    leader = elector(store, "me", retry_period=0.01)
    standby = elector(store, "standby", clock)
    started, stop = threading.Event(), threading.Event()
    runner = threading.Thread(target=leader.run, args=(started.set, lambda: None, stop), daemon=True)
    runner.start()
    assert started.wait(2)
    assert standby.try_acquire_or_renew() is False
    stop.set()
    runner.join(2)
    assert not runner.is_alive()
    assert store.spec()["holderIdentity"] == "me", "stopping keeps the lease until the caller's work is done"
    leader.release()
    assert not leader.leading.is_set()
    released = store.spec()
    assert released["holderIdentity"] is None
    assert released["leaseDurationSeconds"] == 1
    assert standby.try_acquire_or_renew() is True, "no wait for the lease to expire"
    assert store.spec()["holderIdentity"] == "standby"
    assert store.spec()["leaseTransitions"] == 1


def test_a_leader_that_cannot_renew_within_the_deadline_calls_on_lost_and_returns():
    store = LeaseStore()
    leader = elector(store, "me", retry_period=0.01, renew_deadline=0.05)
    started_at: list[float] = []
    lost_at: list[float] = []

    def started() -> None:
        started_at.append(time.monotonic())
        store.failing = ApiError(500, "InternalError", "etcdserver: request timed out")

    stop = threading.Event()
    runner = threading.Thread(target=leader.run, args=(started, lambda: lost_at.append(time.monotonic()), stop))
    runner.daemon = True
    runner.start()
    runner.join(2)
    stop.set()
    assert not runner.is_alive(), "run() kept going with no renewal"
    assert len(started_at) == 1
    assert len(lost_at) == 1
    assert lost_at[0] - started_at[0] >= 0.05, "leadership given up before the renew deadline"
    assert not leader.leading.is_set()


def test_a_refused_create_is_a_failed_attempt_not_a_crash():
    store = LeaseStore()
    store.failing = ApiError(403, "Forbidden", 'leases is forbidden: User "x" cannot create resource "leases"')
    assert elector(store, "me").try_acquire_or_renew() is False


def test_an_unreachable_api_server_while_leading_ends_in_on_lost():
    store = LeaseStore()
    leader = elector(store, "me", retry_period=0.01, renew_deadline=0.05)
    lost = threading.Event()

    def started() -> None:
        store.failing = Unreachable(ConnectionRefusedError("connection refused"))

    runner = threading.Thread(target=leader.run, args=(started, lost.set, threading.Event()), daemon=True)
    runner.start()
    assert lost.wait(2), "on_lost was not called"
    runner.join(2)
    assert not runner.is_alive()
    assert not leader.leading.is_set()


def test_renewal_goes_on_while_the_started_callback_is_still_starting():
    store = LeaseStore()
    leader = elector(store, "me", retry_period=0.01)
    release_start, stop = threading.Event(), threading.Event()
    runner = threading.Thread(target=leader.run, args=(lambda: release_start.wait(5), lambda: None, stop))
    runner.daemon = True
    runner.start()
    first = _wait_for(lambda: store.get(LEASES, NAMESPACE, NAME)["metadata"]["resourceVersion"])
    renewed = _wait_for(
        lambda: (rv := store.get(LEASES, NAMESPACE, NAME)["metadata"]["resourceVersion"]) != first and rv
    )
    assert renewed != first, "the lease was not renewed while on_started blocked"
    release_start.set()
    stop.set()
    runner.join(2)


def _wait_for(check: Callable[[], Any], timeout: float = 2.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if result := check():
                return result
        except NotFound:
            pass
        time.sleep(0.005)
    raise AssertionError("timed out")
