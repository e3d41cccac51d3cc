"""The EventRecorder: one Event per problem, repeats within the window counted on the first, as client-go does."""

from __future__ import annotations

from kubeclient.resources import EVENTS
from kubeclient.rest import ApiError
from reconciler.events import MAX_MESSAGE, REPEAT_WINDOW_SECONDS, EventRecorder
from tests.builders import disk, wukong
from tests.fakekube import FakeKube
from wukong.api import WUKONGS


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def setup() -> tuple[FakeKube, Clock, EventRecorder, dict]:
    kube, clock = FakeKube(), Clock()
    owner = kube.put(WUKONGS, wukong(disk("data")))
    return kube, clock, EventRecorder(kube, "replica-1", clock), owner


def events(kube: FakeKube) -> list[dict]:
    return [o for (plural, _, _), o in kube.objects.items() if plural == "events"]


def test_an_event_names_its_wukong_the_component_and_the_replica():
    kube, _, recorder, owner = setup()
    recorder.warning(owner, "ShrinkRefused", "disk data: 10Gi to 5Gi")
    [event] = events(kube)
    assert event["involvedObject"] == {
        "apiVersion": "vm.novasphere.dev/v1alpha1",
        "kind": "Wukong",
        "name": "vm1",
        "namespace": "default",
        "uid": owner["metadata"]["uid"],
    }
    assert (event["type"], event["reason"], event["count"]) == ("Warning", "ShrinkRefused", 1)
    assert (event["reportingComponent"], event["reportingInstance"]) == ("wukong-reconciler", "replica-1")
    assert event["metadata"]["name"].startswith("vm1.")


def test_a_repeat_within_the_window_counts_up_on_the_first_and_after_it_is_a_new_event():
    kube, clock, recorder, owner = setup()
    recorder.warning(owner, "ShrinkRefused", "disk data: 10Gi to 5Gi")
    recorder.warning(owner, "ShrinkRefused", "disk data: 10Gi to 5Gi")
    recorder.warning(owner, "ShrinkRefused", "disk data: 10Gi to 4Gi")  # another message: another event
    assert kube.take_requests() == [
        ("POST", "events", "ShrinkRefused"),
        ("PATCH", "events", "ShrinkRefused"),
        ("POST", "events", "ShrinkRefused"),
    ]
    assert sorted((e["message"], e["count"]) for e in events(kube)) == [
        ("disk data: 10Gi to 4Gi", 1),
        ("disk data: 10Gi to 5Gi", 2),
    ]
    clock.now = REPEAT_WINDOW_SECONDS + 1
    recorder.warning(owner, "ShrinkRefused", "disk data: 10Gi to 5Gi")
    assert kube.take_requests() == [("POST", "events", "ShrinkRefused")]


def test_a_repeat_of_an_event_that_expired_is_recorded_anew():
    kube, _, recorder, owner = setup()
    recorder.normal(owner, "Expanding", "Expanding disk data")
    [event] = events(kube)
    del kube.objects[("events", "default", event["metadata"]["name"])]  # the API server's TTL
    recorder.normal(owner, "Expanding", "Expanding disk data")
    assert [e["count"] for e in events(kube)] == [1]


def test_an_event_the_api_refuses_is_lost_without_failing_the_caller():
    kube, _, recorder, owner = setup()
    kube.fail_next("POST", "events", ApiError(403, "Forbidden", "no"))
    recorder.warning(owner, "VolumeFailed", "x" * (MAX_MESSAGE + 10))
    assert events(kube) == []
    recorder.warning(owner, "VolumeFailed", "x" * (MAX_MESSAGE + 10))
    assert [len(e["message"]) for e in events(kube)] == [MAX_MESSAGE]


def test_events_are_written_to_the_events_resource():
    kube, _, recorder, owner = setup()
    recorder.normal(owner, "Updated", "Updated VirtualMachine vm1-vm")
    assert {plural for plural, _, _ in kube.objects} == {"wukongs", EVENTS.plural}
