"""The informer's list/watch protocol, with a fake of the project's own API wrapper (never of the client)."""

from __future__ import annotations

import threading
import time

from reconciler.informer import Informer
from reconciler.kube import ApiError, Gone
from reconciler.resources import PVCS


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
        yield from step


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
    monkeypatch.setattr("reconciler.informer.random.uniform", lambda *_: 0.01)
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
