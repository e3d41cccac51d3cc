"""Events on a Wukong, as ``kubectl describe`` shows them: what went wrong, and what the reconciler changed.

Events are writes, so they are kept for what a user acts on (a problem, a restart waiting, a disk growing, a
claim replaced) and repeats are aggregated the way client-go's recorder does: the same event on the same object
within ``REPEAT_WINDOW_SECONDS`` patches the first one's ``count`` and ``lastTimestamp`` instead of adding one.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubeclient import timestamps
from kubeclient.resources import EVENTS
from kubeclient.rest import ApiError, Kube, NotFound
from wukong import api

log = logging.getLogger("wukong.reconciler.events")
COMPONENT = "wukong-reconciler"
MAX_MESSAGE = 1024
REPEAT_WINDOW_SECONDS = 600.0  # client-go's event correlator aggregates within ten minutes too
REMEMBERED = 4096  # events whose repeats are aggregated; the oldest is forgotten first


@dataclass
class _Recorded:
    namespace: str
    name: str
    count: int
    first_seen: float


class EventRecorder:
    def __init__(self, kube: Kube, instance: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.kube, self.instance, self.clock = kube, instance, clock
        self._recorded: OrderedDict[tuple[str, str, str, str], _Recorded] = OrderedDict()
        self._lock = threading.Lock()

    def normal(self, wukong: dict[str, Any], reason: str, message: str) -> None:
        self._record(wukong, "Normal", reason, message)

    def warning(self, wukong: dict[str, Any], reason: str, message: str) -> None:
        self._record(wukong, "Warning", reason, message)

    def _record(self, wukong: dict[str, Any], kind: str, reason: str, message: str) -> None:
        metadata, message = wukong["metadata"], message[:MAX_MESSAGE]
        key = (metadata["uid"], kind, reason, message)
        try:
            if not self._repeat(key):
                self._create(metadata, key)
        except ApiError as error:  # an event lost is not worth failing the pass
            log.warning(
                "could not record event %s for %s/%s: %s", reason, metadata["namespace"], metadata["name"], error
            )

    def _repeat(self, key: tuple[str, str, str, str]) -> bool:
        """Patch the count of an event recorded within the window; False when there is none to patch."""
        with self._lock:
            seen = self._recorded.get(key)
            if seen is None or self.clock() - seen.first_seen > REPEAT_WINDOW_SECONDS:
                return False
            seen.count += 1
            count = seen.count
        patch = {"count": count, "lastTimestamp": now()}
        try:
            self.kube.patch(EVENTS, seen.namespace, seen.name, patch)
        except NotFound:  # expired (the API server keeps events an hour by default) or deleted
            with self._lock:
                self._recorded.pop(key, None)
            return False
        return True

    def _create(self, metadata: dict[str, Any], key: tuple[str, str, str, str]) -> None:
        uid, kind, reason, message = key
        stamp = now()
        name = f"{metadata['name']}.{uuid.uuid4().hex[:16]}"
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": metadata["namespace"]},
            "involvedObject": {
                "apiVersion": api.API_VERSION,
                "kind": api.KIND,
                "name": metadata["name"],
                "namespace": metadata["namespace"],
                "uid": uid,
            },
            "type": kind,
            "reason": reason,
            "message": message,
            "count": 1,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "reportingInstance": self.instance,
        }
        self.kube.create(EVENTS, event)
        with self._lock:
            self._recorded[key] = _Recorded(metadata["namespace"], name, 1, self.clock())
            self._recorded.move_to_end(key)
            while len(self._recorded) > REMEMBERED:
                self._recorded.popitem(last=False)


now = timestamps.now
