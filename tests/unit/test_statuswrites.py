"""When a status is written: what a user watches for at once, any other change within the hold, nothing twice."""

from __future__ import annotations

from reconciler.statuswrites import StatusWrites

KEY = ("default", "vm1")


class Clock:
    def __init__(self) -> None:
        self.now = 10.0

    def __call__(self) -> float:
        return self.now


def status(phase: str = "Pending", message: str = "0/2 volumes bound", generation: int = 1) -> dict:
    return {
        "phase": phase,
        "observedGeneration": generation,
        "conditions": [{"type": "VolumesBound", "status": "False", "message": message}],
    }


def test_a_change_a_user_watches_for_is_written_at_once():
    writes = StatusWrites(clock=Clock())
    assert writes.decide(KEY, {}, status()).write
    assert writes.decide(KEY, status(), status(phase="Error")).write
    assert writes.decide(KEY, status(), status(generation=2)).write


def test_an_unchanged_status_is_never_written():
    decision = StatusWrites(clock=Clock()).decide(KEY, status(), status())
    assert not decision.write and decision.after is None


def test_a_changed_message_waits_for_company_at_most_the_hold_from_when_it_was_first_seen():
    clock = Clock()
    writes = StatusWrites(hold=2.0, clock=clock)
    first = writes.decide(KEY, status(), status(message="1/2 volumes bound"))
    assert (first.write, first.after) == (False, 2.0)
    clock.now += 1.5
    later = writes.decide(KEY, status(), status(message="1/2 volumes bound; waiting for data"))
    assert (later.write, later.after) == (False, 0.5)  # a newer change does not push the write back
    clock.now += 0.5
    assert writes.decide(KEY, status(), status(message="1/2 volumes bound; waiting for data")).write


def test_an_urgent_write_takes_the_held_change_along_and_the_next_change_waits_afresh():
    clock = Clock()
    writes = StatusWrites(hold=2.0, clock=clock)
    writes.decide(KEY, status(), status(message="1/2"))
    clock.now += 1
    assert writes.decide(KEY, status(), status(phase="Running", message="1/2")).write
    writes.written(KEY, "7", status(phase="Running", message="1/2"))
    clock.now += 5
    assert writes.decide(KEY, status(), status(message="2/2")).after == 2.0


def test_a_change_that_reverted_before_its_write_is_no_longer_held():
    clock = Clock()
    writes = StatusWrites(hold=2.0, clock=clock)
    writes.decide(KEY, status(), status(message="1/2"))
    assert writes.decide(KEY, status(), status()).after is None
    clock.now += 3
    assert writes.decide(KEY, status(), status(message="1/2")).after == 2.0


def test_while_another_pass_is_coming_nothing_is_written_and_the_hold_keeps_counting():
    clock = Clock()
    writes = StatusWrites(hold=2.0, clock=clock)
    assert not writes.decide(KEY, status(), status(phase="Error"), another_pass_coming=True).write
    clock.now += 2
    assert writes.decide(KEY, status(), status(message="1/2")).write  # first seen 2 s ago


def test_a_pass_before_the_cache_saw_this_replicas_write_starts_from_that_write():
    writes = StatusWrites(clock=Clock())
    cached = {"metadata": {"name": "vm1", "resourceVersion": "5"}, "status": status()}
    writes.written(KEY, "8", status(phase="Running"))
    assert writes.latest(KEY, cached)["status"]["phase"] == "Running"
    assert writes.latest(KEY, cached)["metadata"]["resourceVersion"] == "8"
    caught_up = {"metadata": {"name": "vm1", "resourceVersion": "9"}, "status": status(phase="Stopped")}
    assert writes.latest(KEY, caught_up) is caught_up
    writes.forget(KEY)
    assert writes.latest(KEY, cached) is cached


def test_an_urgent_change_seen_by_a_pass_that_wrote_children_waits_the_settling_second_for_their_answers():
    clock = Clock()
    writes = StatusWrites(hold=2.0, settle=1.0, clock=clock)
    assert writes.decide(KEY, {}, status(), acted=True).after == 1.0
    clock.now += 1.0
    assert writes.decide(KEY, {}, status(message="1/2 volumes bound")).write


def test_the_record_of_a_lost_volume_never_waits():
    lost = {**status(), "volumes": [{"name": "data", "lost": True}]}
    assert StatusWrites(clock=Clock()).decide(KEY, status(), lost, acted=True).write


def converged(phase: str = "Running") -> dict:
    done = {"type": "Reconciling", "status": "False", "message": "the Wukong is as its spec asks"}
    return {**status(phase=phase), "conditions": [done]}


def test_a_phase_reached_with_nothing_under_way_is_written_at_once_by_a_pass_that_wrote_nothing():
    clock = Clock()
    writes = StatusWrites(hold=2.0, settle=2.0, clock=clock)
    assert writes.decide(KEY, {}, converged(), acted=True).after == 2.0  # its own writes are answered first
    assert writes.decide(KEY, {}, converged()).write
    assert not writes.decide(KEY, {}, status(phase="Creating")).write  # on the way: the answers are awaited


def test_once_a_status_is_stored_only_the_pass_that_wrote_children_waits_for_their_answers():
    clock = Clock()
    writes = StatusWrites(hold=2.0, settle=2.0, clock=clock)
    grown = converged() | {"observedGeneration": 2}
    assert writes.decide(KEY, converged(), grown, acted=True).after == 2.0  # the claim's new size was just asked
    clock.now += 0.2
    assert writes.decide(KEY, converged(), grown).write  # the next pass says Resizing at once


def test_a_new_wukongs_first_status_waits_for_the_answers_to_the_writes_of_an_earlier_pass_too():
    clock = Clock()
    writes = StatusWrites(hold=2.0, settle=2.0, clock=clock)
    assert writes.decide(KEY, {}, status(), acted=True).after == 2.0
    clock.now += 0.5  # a claim bound: the pass writes nothing, the VM is not made yet
    assert writes.decide(KEY, {}, status(message="1/2 volumes bound")).after == 1.5
    clock.now += 0.5  # the VM runs: nothing is under way
    assert writes.decide(KEY, {}, converged()).write


def test_an_urgent_change_seen_once_the_answers_are_due_is_written_at_once():
    clock = Clock()
    writes = StatusWrites(hold=2.0, settle=2.0, clock=clock)
    writes.decide(KEY, status(), status(message="1/2"), acted=True)
    writes.written(KEY, "7", status(message="1/2"))
    clock.now += 2.0
    assert writes.decide(KEY, status(), status(phase="Error")).write


def test_the_echo_of_this_replicas_last_write_is_known_and_no_other_version_is():
    writes = StatusWrites(clock=Clock())
    assert not writes.echo(KEY, "8")
    writes.written(KEY, "8", status(phase="Running"))
    assert writes.echo(KEY, "8")
    assert not writes.echo(KEY, "9") and not writes.echo(KEY, "") and not writes.echo(("default", "vm2"), "8")
