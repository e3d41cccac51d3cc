"""The generic controller: requeues are results, changes in a burst share a pass, failures back off per key."""

from __future__ import annotations

import threading

import pytest

from kubeclient.controller import Controller, Hooks, Result
from kubeclient.workqueue import WorkQueue


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


class RecordingQueue(WorkQueue[str]):
    """A real queue that remembers the backoff delays it handed out."""

    def __init__(self) -> None:
        super().__init__(base_delay=0.001, max_delay=1.0)
        self.backoffs: list[float] = []

    def add_rate_limited(self, item: str) -> float:
        delay = super().add_rate_limited(item)
        self.backoffs.append(delay)
        return delay


def controller(reconcile, clock=None, **kwargs) -> tuple[Controller[str], list[str]]:
    outcomes: list[str] = []
    hooks = Hooks(passed=lambda outcome, _seconds: outcomes.append(outcome))
    made = Controller(reconcile, lambda: ["a", "b"], hooks=hooks, queue=RecordingQueue(), clock=clock or Clock(),
                      **kwargs)  # fmt: skip
    return made, outcomes


def test_a_pass_that_asks_to_come_back_is_queued_again_after_that_delay_without_backoff():
    made, outcomes = controller(lambda _key: Result(requeue_after=0.01))
    made.process("a")
    assert made.queue.get(timeout=2) == "a"
    assert outcomes == ["success"]
    assert made.queue.backoffs == []


def test_a_conflict_is_retried_with_backoff_and_counted_apart_from_errors():
    made, outcomes = controller(lambda _key: Result(conflict="the object has been modified"))
    made.process("a")
    made.process("a")
    assert outcomes == ["conflict", "conflict"]
    assert made.queue.backoffs == [0.001, 0.002]
    assert made.queue.get(timeout=2) == "a"


def test_a_pass_that_raises_is_an_error_retried_with_doubling_backoff_until_one_succeeds():
    answers = [RuntimeError("boom"), RuntimeError("boom"), Result(), RuntimeError("boom")]

    def reconcile(_key: str) -> Result:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    made, outcomes = controller(reconcile)
    results = [made.process("a") for _ in range(4)]
    assert outcomes == ["error", "error", "success", "error"]
    assert made.queue.backoffs == [0.001, 0.002, 0.001]  # a success forgets the failures
    assert isinstance(results[0].error, RuntimeError)


def test_changes_within_the_window_of_a_pass_share_one_pass_at_its_end():
    clock = Clock()
    made, _ = controller(lambda _key: Result(), clock=clock, coalesce=0.2)
    made.process("a")
    clock.now += 0.15
    made.enqueue_coalesced("a")
    made.enqueue_coalesced("a")
    assert len(made.queue) == 0 and made.pass_scheduled("a")
    assert made.queue.get(timeout=2) == "a"  # after the 0.05 s left of the window
    made.queue.done("a")
    made.process("a")
    assert not made.pass_scheduled("a")


def test_a_change_to_a_quiet_key_is_queued_at_once():
    clock = Clock()
    made, _ = controller(lambda _key: Result(), clock=clock, coalesce=0.2)
    made.process("a")
    clock.now += 0.2
    made.enqueue_coalesced("a")
    made.enqueue_coalesced("b")  # never reconciled
    assert len(made.queue) == 2


def test_a_key_this_replica_does_not_own_is_not_reconciled():
    seen: list[str] = []
    made, outcomes = controller(lambda key: seen.append(key) or Result(), owns=lambda key: key == "a")
    assert made.process("b") is None
    assert made.process("a") == Result()
    assert seen == ["a"] and outcomes == ["success"]


@pytest.mark.parametrize(
    ("result", "outcome"),
    [(Result(), "success"), (Result(requeue_after=1), "success"), (Result(conflict="x"), "conflict"),
     (Result(error=ValueError()), "error")],
)  # fmt: skip
def test_the_outcome_of_a_result(result, outcome):
    assert result.outcome == outcome


def test_workers_reconcile_every_key_once_started_and_stop_gracefully():
    seen: list[str] = []
    both = threading.Event()

    def reconcile(key: str) -> Result:
        seen.append(key)
        if len(seen) == 2:
            both.set()
        return Result()

    made, _ = controller(reconcile, workers=2)
    made.start()
    try:
        assert both.wait(timeout=5)
    finally:
        made.stop(timeout=2)
    assert sorted(seen) == ["a", "b"]
