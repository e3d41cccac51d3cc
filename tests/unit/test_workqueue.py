import threading
import time

import pytest

from kubeclient.workqueue import ShutDown, WorkQueue


def test_a_key_added_twice_is_queued_once():
    queue = WorkQueue()
    queue.add("a")
    queue.add("a")
    queue.add("b")
    assert len(queue) == 2


def test_a_key_added_while_being_processed_comes_back_after_done():
    queue = WorkQueue()
    queue.add("a")
    assert queue.get() == "a"
    queue.add("a")
    assert len(queue) == 0  # not handed to a second worker while the first holds it
    queue.done("a")
    assert queue.get(timeout=1) == "a"


def test_backoff_doubles_per_failure_and_forget_resets_it():
    queue = WorkQueue(base_delay=0.01, max_delay=0.05)
    delays = [queue.add_rate_limited("a") for _ in range(4)]
    assert delays == [0.01, 0.02, 0.04, 0.05]
    queue.forget("a")
    assert queue.add_rate_limited("a") == 0.01


def test_delayed_adds_arrive_after_their_delay():
    queue = WorkQueue()
    started = time.monotonic()
    queue.add_after("a", 0.1)
    with pytest.raises(TimeoutError):
        queue.get(timeout=0.05)
    assert queue.get(timeout=1) == "a"
    assert time.monotonic() - started >= 0.1


def test_shut_down_releases_waiting_workers():
    queue = WorkQueue()
    raised = threading.Event()

    def worker():
        try:
            queue.get()
        except ShutDown:
            raised.set()

    thread = threading.Thread(target=worker)
    thread.start()
    queue.shut_down()
    thread.join(timeout=2)
    assert raised.is_set()
