"""A watch-backed cache of the cluster's StorageClasses: the webhook's only contact with the Kubernetes API.

Admission requests read it from memory, so an API round trip never sits on the request path. It lists
once, then follows a watch from that resourceVersion; an expired watch (410 Gone) relists, other
failures retry with a capped backoff, and ``ready()`` stays False until the first list has arrived.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from kubeclient import load_api_client
from webhook.facts import ClusterFacts
from wukong.storageclass import StorageClass

log = logging.getLogger("wukong.webhook.storageclasses")
WATCH_TIMEOUT_SECONDS = 300
MAX_BACKOFF_SECONDS = 30.0


class StorageClassCache:
    def __init__(self, api: client.ApiClient, configured_default: str | None = None) -> None:
        self._storage = client.StorageV1Api(api)
        self._configured_default = configured_default
        self._classes: dict[str, StorageClass] = {}
        self._facts = ClusterFacts.of([], configured_default)
        self._synced = threading.Event()
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="storageclass-cache", daemon=True)

    def start(self) -> StorageClassCache:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()

    def wait_synced(self, timeout: float | None = None) -> bool:
        return self._synced.wait(timeout)

    def ready(self) -> bool:
        return self._synced.is_set()

    def facts(self) -> ClusterFacts:
        return self._facts

    def _run(self) -> None:
        backoff = 0.5
        while not self._stopped.is_set():
            try:
                version = self._relist()
                backoff = 0.5
                self._follow(version)
            except ApiException as error:
                if error.status != 410:
                    log.warning("StorageClass watch failed (HTTP %s); retrying in %.1fs", error.status, backoff)
                    self._stopped.wait(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
            except Exception as error:  # the API being away must never kill the cache
                log.warning("StorageClass watch failed (%s); retrying in %.1fs", error, backoff)
                self._stopped.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    def _relist(self) -> str:
        raw = self._storage.list_storage_class(_preload_content=False)
        listing = json.loads(raw.data)
        self._replace({item["metadata"]["name"]: StorageClass.from_manifest(item) for item in listing["items"]})
        self._synced.set()
        return listing["metadata"]["resourceVersion"]

    def _follow(self, version: str) -> None:
        """Follow the watch until it ends; a normal end resumes from the last version seen, 410 relists."""
        stream = watch.Watch()
        while not self._stopped.is_set():
            for event in stream.stream(
                self._storage.list_storage_class,
                resource_version=version,
                allow_watch_bookmarks=True,
                timeout_seconds=WATCH_TIMEOUT_SECONDS,
                deserialize=False,
            ):
                self._apply(event)
                if self._stopped.is_set():
                    return
            version = stream.resource_version or version

    def _apply(self, event: dict[str, Any]) -> None:
        kind, obj = event["type"], event["object"]
        if kind == "BOOKMARK":
            return
        classes = dict(self._classes)
        name = obj["metadata"]["name"]
        if kind == "DELETED":
            classes.pop(name, None)
        else:
            classes[name] = StorageClass.from_manifest(obj)
        self._replace(classes)

    def _replace(self, classes: dict[str, StorageClass]) -> None:
        """Readers get an immutable snapshot; a swap of one reference needs no lock on their side."""
        with self._lock:
            self._classes = classes
            self._facts = ClusterFacts.of(classes.values(), self._configured_default)


__all__ = ["StorageClassCache", "load_api_client"]
