"""The cluster's StorageClasses as admission facts, from a watch-backed cache: never an API call per request.

The cache is the client layer's informer; on every change the facts are rebuilt once and swapped in as one
immutable snapshot, so a request reads them without a lock. ``ready()`` stays False until the first list has
arrived (``/readyz``), and the informer keeps the cache current across dropped watches and API restarts.
"""

from __future__ import annotations

from typing import Any

from kubeclient.informer import Informer
from kubeclient.resources import STORAGE_CLASSES
from kubeclient.rest import Kube
from webhook.facts import ClusterFacts
from wukong.storageclass import StorageClass


class StorageClassCache:
    def __init__(self, kube: Kube, configured_default: str | None = None) -> None:
        self._configured_default = configured_default
        self._facts = ClusterFacts.of(None, configured_default)  # unknown until the first list has arrived
        self._informer = Informer(kube, STORAGE_CLASSES)
        self._informer.on_change(self._changed)

    def start(self) -> StorageClassCache:
        self._informer.start()
        return self

    def stop(self) -> None:
        self._informer.stop()

    def ready(self) -> bool:
        return self._informer.synced

    def facts(self) -> ClusterFacts:
        return self._facts

    def _changed(self, _event: str, _obj: dict[str, Any]) -> None:
        classes = [StorageClass.from_manifest(item) for item in self._informer.items()]
        self._facts = ClusterFacts.of(classes, self._configured_default)
