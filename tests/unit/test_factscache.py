"""The webhook's facts cache, its StorageClass part: admission facts from a list + watch of a scripted fake of
``Kube`` (its WukongPolicy and namespace parts are tested on devcluster, tests/e2e/test_namespace_policy.py)."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kubeclient.resources import STORAGE_CLASSES, Resource
from webhook.factscache import FactsCache

DEFAULT = "storageclass.kubernetes.io/is-default-class"
WAIT = 5.0  # seconds; only reached when the cache is broken


def storage_class(name: str, default: bool = False, created: str = "2024-01-01T00:00:00Z", **fields: Any) -> dict:
    annotations = {DEFAULT: "true" if default else "false"}
    metadata = {"name": name, "annotations": annotations, "creationTimestamp": created, "resourceVersion": "1"}
    return {"metadata": metadata, "provisioner": "driver.longhorn.io", **fields}


def event(kind: str, obj: dict, version: str) -> dict:
    changed = copy.deepcopy(obj)
    changed["metadata"]["resourceVersion"] = version
    return {"type": kind, "object": changed}


class ScriptedKube:
    """Lists ``classes``; then one watch that waits for ``proceed``, delivers ``events`` and stays open.

    The informer handles each event before it asks the watch for the next one, so ``delivered`` is set
    only once every scripted event has reached the cache's facts.
    """

    def __init__(self, classes: list[dict], events: list[dict] | None = None) -> None:
        self.classes, self.events = classes, events or []
        self.may_list = threading.Event()
        self.may_list.set()
        self.watching = threading.Event()  # the list has been handled: the informer is synced
        self.proceed = threading.Event()
        self.proceed.set()
        self.delivered = threading.Event()
        self.closed = threading.Event()

    def list(self, resource: Resource, namespace: str | None = None, label_selector: str | None = None):
        assert resource is STORAGE_CLASSES
        assert self.may_list.wait(WAIT)
        return copy.deepcopy(self.classes), "1"

    def watch(
        self, resource: Resource, namespace: str | None, resource_version: str, label_selector=None, timeout_seconds=300
    ) -> Iterator[dict]:
        self.watching.set()
        assert self.proceed.wait(WAIT)
        events, self.events = self.events, []
        yield from events
        self.delivered.set()
        self.closed.wait(WAIT)

    def close(self) -> None:
        for gate in (self.may_list, self.proceed, self.closed):
            gate.set()


@pytest.fixture
def start() -> Iterator[Callable[..., FactsCache]]:
    started: list[tuple[FactsCache, ScriptedKube]] = []

    def start(kube: ScriptedKube, configured_default: str | None = None) -> FactsCache:
        cache = FactsCache(kube, configured_default, policies=False).start()  # type: ignore[arg-type]
        started.append((cache, kube))
        return cache

    yield start
    for cache, kube in started:
        cache.stop()
        kube.close()


def test_the_cache_is_not_ready_until_the_first_list_has_arrived(start):
    kube = ScriptedKube([storage_class("standard", default=True)])
    kube.may_list.clear()
    cache = start(kube)
    assert not cache.ready()
    assert cache.facts().storage_class("standard") is None
    kube.may_list.set()
    assert kube.watching.wait(WAIT)
    assert cache.ready()
    assert cache.facts().storage_class("standard") is not None


def test_once_ready_the_first_request_finds_the_facts_built(start, monkeypatch):
    kube = ScriptedKube([storage_class("standard", default=True), storage_class("slow")])
    kube.proceed.clear()  # no watch event: the snapshot is the one built from the list
    cache = start(kube)
    assert kube.watching.wait(WAIT)
    assert cache.ready()
    monkeypatch.setattr(FactsCache, "_rebuild", lambda self: pytest.fail("a request rebuilt the facts"))
    assert sorted(cache.facts().storage_classes or {}) == ["slow", "standard"]


def test_the_facts_hold_the_listed_classes_and_the_cluster_default(start):
    kube = ScriptedKube(
        [
            storage_class("standard", default=True, allowVolumeExpansion=True),
            storage_class("slow", volumeBindingMode="WaitForFirstConsumer"),
        ]
    )
    cache = start(kube)
    assert kube.delivered.wait(WAIT)
    facts = cache.facts()
    assert sorted(facts.storage_classes or {}) == ["slow", "standard"]
    assert facts.default_storage_class == "standard"
    assert facts.storage_class("standard").allow_volume_expansion is True
    assert facts.storage_class("slow").waits_for_first_consumer is True


def test_a_newer_default_class_added_by_the_watch_becomes_the_default(start):
    standard = storage_class("standard", default=True, created="2024-01-01T00:00:00Z")
    premium = storage_class("premium", default=True, created="2025-06-01T00:00:00Z")
    kube = ScriptedKube([standard], [event("ADDED", premium, "2")])
    kube.proceed.clear()
    cache = start(kube)
    assert kube.watching.wait(WAIT)
    assert cache.facts().default_storage_class == "standard"
    kube.proceed.set()
    assert kube.delivered.wait(WAIT)
    assert cache.facts().default_storage_class == "premium"
    assert cache.facts().storage_class("premium") is not None


def test_a_default_class_modified_to_be_no_longer_default_leaves_no_cluster_default(start):
    standard = storage_class("standard", default=True)
    kube = ScriptedKube([standard], [event("MODIFIED", storage_class("standard", default=False), "2")])
    kube.proceed.clear()
    cache = start(kube)
    assert kube.watching.wait(WAIT)
    assert cache.facts().default_storage_class == "standard"
    kube.proceed.set()
    assert kube.delivered.wait(WAIT)
    assert cache.facts().default_storage_class is None
    assert cache.facts().storage_class("standard").is_default is False


def test_a_class_deleted_by_the_watch_disappears_from_the_facts(start):
    slow = storage_class("slow")
    kube = ScriptedKube([storage_class("standard", default=True), slow], [event("DELETED", slow, "2")])
    kube.proceed.clear()
    cache = start(kube)
    assert kube.watching.wait(WAIT)
    assert cache.facts().storage_class("slow") is not None
    kube.proceed.set()
    assert kube.delivered.wait(WAIT)
    assert cache.facts().storage_class("slow") is None
    assert cache.facts().storage_class("standard") is not None


def test_a_configured_default_wins_over_the_cluster_default_before_and_after_a_change(start):
    newer = storage_class("premium", default=True, created="2025-06-01T00:00:00Z")
    kube = ScriptedKube([storage_class("standard", default=True), storage_class("slow")], [event("ADDED", newer, "2")])
    kube.proceed.clear()
    cache = start(kube, configured_default="slow")
    assert kube.watching.wait(WAIT)
    assert cache.facts().default_storage_class == "slow"
    kube.proceed.set()
    assert kube.delivered.wait(WAIT)
    assert cache.facts().default_storage_class == "slow"
    assert cache.facts().configured_default == "slow"
