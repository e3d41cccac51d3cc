"""Events on a Wukong, as ``kubectl describe`` shows them: what the reconciler did, and what went wrong."""

from __future__ import annotations

import datetime
import logging
import uuid
from typing import Any

from kubeclient.resources import EVENTS
from kubeclient.rest import ApiError, Kube
from wukong import api

log = logging.getLogger("wukong.reconciler.events")
COMPONENT = "wukong-reconciler"
MAX_MESSAGE = 1024


class EventRecorder:
    def __init__(self, kube: Kube, instance: str) -> None:
        self.kube, self.instance = kube, instance

    def normal(self, wukong: dict[str, Any], reason: str, message: str) -> None:
        self._record(wukong, "Normal", reason, message)

    def warning(self, wukong: dict[str, Any], reason: str, message: str) -> None:
        self._record(wukong, "Warning", reason, message)

    def _record(self, wukong: dict[str, Any], kind: str, reason: str, message: str) -> None:
        metadata = wukong["metadata"]
        stamp = now()
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{metadata['name']}.{uuid.uuid4().hex[:16]}", "namespace": metadata["namespace"]},
            "involvedObject": {
                "apiVersion": api.API_VERSION,
                "kind": api.KIND,
                "name": metadata["name"],
                "namespace": metadata["namespace"],
                "uid": metadata["uid"],
            },
            "type": kind,
            "reason": reason,
            "message": message[:MAX_MESSAGE],
            "count": 1,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "reportingInstance": self.instance,
        }
        try:
            self.kube.create(EVENTS, event)
        except ApiError as error:  # an event lost is not worth failing the pass
            log.warning(
                "could not record event %s for %s/%s: %s", reason, metadata["namespace"], metadata["name"], error
            )


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
