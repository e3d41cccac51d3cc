"""Admission facts from watch-backed caches: never an API call per request.

The StorageClasses, the WukongPolicies and the namespaces' labels are each the client layer's informer; on every
change the facts are rebuilt once and swapped in as one immutable snapshot, so a request reads them without a lock.
``ready()`` stays False until every first list has arrived (``/readyz``), and the informers keep the caches current
across dropped watches and API restarts.
"""

from __future__ import annotations

import threading
from typing import Any

from kubeclient.informer import Informer
from kubeclient.resources import NAMESPACES, STORAGE_CLASSES, WUKONG_POLICIES
from kubeclient.rest import Kube
from webhook.facts import ClusterFacts
from wukong.policy import Policy
from wukong.storageclass import StorageClass


class FactsCache:
    """``policies``: also follow WukongPolicies and the namespaces' labels (off only where the WukongPolicy CRD
    is not installed, e.g. a unit test's scripted API)."""

    def __init__(self, kube: Kube, configured_default: str | None = None, policies: bool = True) -> None:
        self._configured_default = configured_default
        self._facts = ClusterFacts.of(None, configured_default)  # unknown until the first list has arrived
        self._classes = Informer(kube, STORAGE_CLASSES)
        self._informers = [self._classes]
        self._policies = self._namespaces = None
        if policies:
            self._policies, self._namespaces = Informer(kube, WUKONG_POLICIES), Informer(kube, NAMESPACES)
            self._informers += [self._policies, self._namespaces]
        self._lock = threading.Lock()
        for informer in self._informers:
            informer.on_change(self._changed)

    def start(self) -> FactsCache:
        for informer in self._informers:
            informer.start()
        return self

    def stop(self) -> None:
        for informer in self._informers:
            informer.stop()

    def ready(self) -> bool:
        return all(informer.synced for informer in self._informers)

    def facts(self) -> ClusterFacts:
        return self._facts

    def _changed(self, _event: str, _obj: dict[str, Any]) -> None:
        with self._lock:  # informers call from their own threads: one rebuild at a time, the newest last
            classes = [StorageClass.from_manifest(item) for item in self._classes.items()]
            policies = [Policy.from_object(item) for item in self._policies.items()] if self._policies else []
            labels = {}
            if self._namespaces is not None:
                for namespace in self._namespaces.items():
                    metadata = namespace.get("metadata") or {}
                    labels[metadata.get("name", "")] = dict(metadata.get("labels") or {})
            self._facts = ClusterFacts.of(classes, self._configured_default, policies, labels)
