"""The informer's list/watch protocol, with a fake of the project's own API wrapper (never of the client)."""

from __future__ import annotations

import threading
import time

from urllib3.exceptions import ProtocolError

from kubeclient.informer import Informer
from kubeclient.resources import PVCS
from kubeclient.rest import ApiError, Gone


def pvc(name: str, version: str) -> dict:
    return {"metadata": {"name": name, "namespace": "ns", "resourceVersion": version}}


class ScriptedKube:
    """Answers list and watch from a script; records the versions each watch started from."""

    def __init__(self, watches: list) -> None:
        self.watches = watches
        self.lists = 0
        self.watched_from: list[str] = []
        self.exhausted = threading.Event()

    def list(self, resource, namespace=None, label_selector=None):
        self.lists += 1
        return [pvc("a", "10")], "10"

    def watch(self, resource, namespace, resource_version, label_selector=None, timeout_seconds=300):
        self.watched_from.append(resource_version)
        if not self.watches:
            self.exhausted.set()
            time.sleep(10)
            return
        step = self.watches.pop(0)
        if isinstance(step, Exception):
            raise step
        for event in step:  # a step may end in an exception: the connection dropped mid-stream
            if isinstance(event, Exception):
                raise event
            yield event


def run(kube: ScriptedKube) -> Informer:
    informer = Informer(kube, PVCS)  # type: ignore[arg-type]
    informer.start()
    assert kube.exhausted.wait(5)
    informer.stop()
    return informer


def test_a_watch_that_ends_resumes_from_the_last_version_without_relisting():
    kube = ScriptedKube(
        [
            [{"type": "ADDED", "object": pvc("b", "11")}, {"type": "BOOKMARK", "object": pvc("", "15")}],
            [{"type": "DELETED", "object": pvc("a", "16")}],
        ]
    )
    informer = run(kube)
    assert kube.lists == 1
    assert kube.watched_from == ["10", "15", "16"]
    assert [i["metadata"]["name"] for i in informer.items()] == ["b"]


def test_an_expired_watch_relists_once():
    kube = ScriptedKube([Gone(410, "Expired", "too old")])
    run(kube)
    assert kube.lists == 2
    assert kube.watched_from == ["10", "10"]


def test_other_failures_retry_the_watch_without_relisting(monkeypatch):
    monkeypatch.setattr("kubeclient.informer.random.uniform", lambda *_: 0.01)
    kube = ScriptedKube([ApiError(500, "InternalError", "boom")])
    run(kube)
    assert kube.lists == 1
    assert kube.watched_from == ["10", "10"]


def test_handlers_see_every_change_and_the_label_index_follows():
    seen: list[tuple[str, str]] = []
    labelled = pvc("c", "12")
    labelled["metadata"]["labels"] = {"owner": "w1"}
    kube = ScriptedKube([[{"type": "ADDED", "object": labelled}]])
    informer = Informer(kube, PVCS)  # type: ignore[arg-type]
    informer.index_by_label("owner")
    informer.on_change(lambda kind, obj: seen.append((kind, obj["metadata"]["name"])))
    informer.start()
    assert kube.exhausted.wait(5)
    informer.stop()
    assert seen == [("ADDED", "a"), ("ADDED", "c")]
    assert [o["metadata"]["name"] for o in informer.by_label("ns", "w1")] == ["c"]


def test_a_dropped_watch_resumes_from_the_last_event_seen_at_once(monkeypatch):
    delays: list[float] = []
    monkeypatch.setattr("kubeclient.informer.random.uniform", lambda *_: delays.append(1.0) or 1.0)
    dropped = ProtocolError("Connection broken: IncompleteRead")
    kube = ScriptedKube(
        [
            [{"type": "ADDED", "object": pvc("b", "11")}, {"type": "MODIFIED", "object": pvc("b", "12")}, dropped],
            [{"type": "BOOKMARK", "object": pvc("", "20")}, dropped],
            [{"type": "MODIFIED", "object": pvc("a", "21")}, dropped],
        ]
    )
    informer = run(kube)
    assert kube.lists == 1
    assert kube.watched_from == ["10", "12", "20", "21"]
    assert delays == [], "a watch that delivered events and then dropped is retried without back-off"
    assert informer.resource_version == "21"
    assert informer.get("ns", "b")["metadata"]["resourceVersion"] == "12"


def test_a_watch_that_fails_before_delivering_anything_backs_off(monkeypatch):
    delays: list[float] = []
    monkeypatch.setattr("kubeclient.informer.random.uniform", lambda *_: delays.append(0.01) or 0.01)
    refused = ConnectionRefusedError("connection refused")
    kube = ScriptedKube([[{"type": "ADDED", "object": pvc("b", "11")}], refused, refused])
    run(kube)
    assert kube.watched_from == ["10", "11", "11", "11"]
    assert len(delays) == 2


def test_an_event_older_than_the_cached_object_is_ignored_and_counted():
    from kubeclient.informer import STALE

    before = STALE.labels("persistentvolumeclaims")._value.get()
    seen: list[str] = []
    kube = ScriptedKube(
        [[{"type": "MODIFIED", "object": pvc("a", "12")}, {"type": "MODIFIED", "object": pvc("a", "9")}]]
    )
    informer = Informer(kube, PVCS)  # type: ignore[arg-type]
    informer.on_change(lambda _kind, obj: seen.append(obj["metadata"]["resourceVersion"]))
    informer.start()
    assert kube.exhausted.wait(5)
    informer.stop()
    assert informer.get("ns", "a")["metadata"]["resourceVersion"] == "12"
    assert seen == ["10", "12"]
    assert STALE.labels("persistentvolumeclaims")._value.get() == before + 1
