"""Informers: a local cache of one resource kept current by list + watch, calling handlers on change.

Like client-go's reflector: list once, then watch from the list's resourceVersion with bookmarks so the
version stays fresh. Whenever a watch ends -- the server's timeout, a dropped connection, an error -- the
next one resumes from the last version seen (event or bookmark), never from an older one, with no relist.
Only a 410 Gone relists. A failed attempt backs off with jitter, so a restarted API server is not met by
every informer at once; a watch that delivered anything counts as a success and resets the back-off.

A ``transform`` (kubeclient/transforms.py) decides what the cache keeps of each object: it runs once per object as
it arrives, and the cache and the handlers see only its result.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from typing import Any

from prometheus_client import Counter
from urllib3.exceptions import HTTPError

from kubeclient.resources import Resource
from kubeclient.rest import ApiError, Gone, Kube
from kubeclient.transforms import Transform

log = logging.getLogger("wukong.kubeclient.informer")
Key = tuple[str, str]  # (namespace, name)
Handler = Callable[[str, dict[str, Any]], None]  # (event type, object)
WATCH_TIMEOUT_SECONDS = 300
MAX_BACKOFF_SECONDS = 30.0
WATCHES = Counter("wukong_informer_watches", "Watch requests an informer started.", ["resource"])
RELISTS = Counter("wukong_informer_relists", "Full lists: the first, and one after each 410 Gone.", ["resource"])
STALE = Counter(
    "wukong_informer_stale_events",
    "Events older than the cached object, ignored: the cache never moves back in time.",
    ["resource"],
)


def key_of(obj: dict[str, Any]) -> Key:
    metadata = obj["metadata"]
    return metadata.get("namespace", ""), metadata["name"]


class Informer:
    def __init__(
        self,
        kube: Kube,
        resource: Resource,
        namespace: str | None = None,
        label_selector: str | None = None,
        transform: Transform | None = None,
    ) -> None:
        self.kube, self.resource = kube, resource
        self.namespace, self.label_selector = namespace, label_selector
        self._transform = transform
        self._store: dict[Key, dict[str, Any]] = {}
        self._index_labels: list[str] = []
        self._index: dict[tuple[str, str, str], set[str]] = {}  # (label, namespace, value) -> names
        self._lock = threading.Lock()
        self._handlers: list[Handler] = []
        self._synced = threading.Event()
        self._stopped = threading.Event()
        self._version: str | None = None  # the newest resourceVersion seen; None: list first
        self._delivered = False  # the current watch has delivered an event or bookmark
        self._thread = threading.Thread(target=self._run, name=f"informer-{resource.plural}", daemon=True)

    def index_by_label(self, label: str) -> None:
        """Keep an index of object names by (namespace, value of ``label``); the first label indexed is the one
        ``by_label`` reads unless told another."""
        self._index_labels.append(label)

    def by_label(self, namespace: str, value: str, label: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            names = list(self._index.get((label or self._index_labels[0], namespace, value), ()))
            return [self._store[(namespace, n)] for n in names if (namespace, n) in self._store]

    def on_change(self, handler: Handler) -> None:
        self._handlers.append(handler)

    def start(self) -> Informer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()

    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    def wait_synced(self, timeout: float | None = None) -> bool:
        return self._synced.wait(timeout)

    @property
    def resource_version(self) -> str | None:
        """The newest resourceVersion this cache has seen: what the next watch starts from."""
        return self._version

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._store.get((namespace, name))

    def items(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._store.values())

    # -- the loop ----------------------------------------------------------------------------------------
    def _run(self) -> None:
        backoff = 0.5
        while not self._stopped.is_set():
            self._delivered = False
            try:
                if self._version is None:
                    self._relist()
                self._watch()
                backoff = 0.5
            except Gone:
                log.info("%s: watch expired (410); relisting", self.resource.plural)
                self._version = None
            except Exception as error:  # never let the cache thread die: the API may be away for a while
                if self._stopped.is_set():
                    return
                if self._delivered:  # the watch worked, then broke: reconnect at once, from where it was
                    backoff = 0.5
                    continue
                delay = backoff * random.uniform(0.5, 1.5)
                expected = isinstance(error, ApiError | HTTPError | OSError | ValueError)
                log.log(
                    logging.WARNING if expected else logging.ERROR,
                    "%s: watch failed (%s); retrying in %.1fs",
                    self.resource.plural,
                    error if expected else repr(error),
                    delay,
                )
                self._stopped.wait(delay)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    def _relist(self) -> None:
        RELISTS.labels(self.resource.plural).inc()
        items, version = self.kube.list(self.resource, self.namespace, self.label_selector)
        if self._transform is not None:
            items = [self._transform(item) for item in items]
        fresh = {key_of(item): item for item in items}
        with self._lock:
            gone = [obj for key, obj in self._store.items() if key not in fresh]
            self._store = fresh
            self._index = {}
            for item in items:
                self._reindex(None, item)
        self._version = version
        for obj in gone:
            self._notify("DELETED", obj)
        for obj in items:
            self._notify("ADDED", obj)
        self._synced.set()

    def _watch(self) -> None:
        assert self._version is not None
        WATCHES.labels(self.resource.plural).inc()
        for event in self.kube.watch(
            self.resource, self.namespace, self._version, self.label_selector, WATCH_TIMEOUT_SECONDS
        ):
            self._delivered = True
            kind, obj = event["type"], event["object"]
            if kind != "BOOKMARK":
                obj.setdefault("apiVersion", self.resource.api_version)
                obj.setdefault("kind", self.resource.kind)
                if self._transform is not None:
                    obj = self._transform(obj)
                with self._lock:
                    if _older(obj, self._store.get(key_of(obj))):
                        STALE.labels(self.resource.plural).inc()
                        continue
                    before = self._store.pop(key_of(obj), None)
                    if kind != "DELETED":
                        self._store[key_of(obj)] = obj
                    self._reindex(before, obj if kind != "DELETED" else None)
            self._version = obj.get("metadata", {}).get("resourceVersion") or self._version
            if kind != "BOOKMARK":
                self._notify(kind, obj)
            if self._stopped.is_set():
                return

    def _reindex(self, before: dict[str, Any] | None, after: dict[str, Any] | None) -> None:
        for label in self._index_labels:
            for obj, add in ((before, False), (after, True)):
                value = ((obj or {}).get("metadata", {}).get("labels") or {}).get(label)
                if obj is None or value is None:
                    continue
                namespace, name = key_of(obj)
                names = self._index.setdefault((label, namespace, value), set())
                if add:
                    names.add(name)
                else:
                    names.discard(name)

    def _notify(self, kind: str, obj: dict[str, Any]) -> None:
        for handler in self._handlers:
            try:
                handler(kind, obj)
            except Exception:
                log.exception("%s: handler failed", self.resource.plural)


def _older(new: dict[str, Any], cached: dict[str, Any] | None) -> bool:
    """Whether an event carries an older version of the object than the cache holds. resourceVersions are
    opaque to clients, but the API server's are etcd revisions: compared only when both are integers."""
    if cached is None:
        return False
    versions = [(o.get("metadata") or {}).get("resourceVersion") or "" for o in (new, cached)]
    return all(v.isdigit() for v in versions) and int(versions[0]) < int(versions[1])
