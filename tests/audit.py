"""An audit of every PVC write in a namespace, from a watch started before the run: what a fault must never cause."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from kubeclient.resources import PVCS
from kubeclient.rest import Kube
from wukong.quantity import parse


@dataclass
class PVCAudit:
    kube: Kube
    namespace: str
    events: int = 0
    uids: dict[str, set[str]] = field(default_factory=dict)  # name -> every uid seen: >1 is a duplicate
    deleted: list[str] = field(default_factory=list)
    decreased: list[str] = field(default_factory=list)
    _requested: dict[str, Any] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> PVCAudit:
        items, version = self.kube.list(PVCS, self.namespace)
        for item in items:
            self._record("ADDED", item)
        self._thread = threading.Thread(target=self._follow, args=(version,), name="pvc-audit", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _follow(self, version: str) -> None:
        while not self._stop.is_set():
            try:
                for event in self.kube.watch(PVCS, self.namespace, version, timeout_seconds=1):
                    version = event["object"]["metadata"].get("resourceVersion", version)
                    if event["type"] != "BOOKMARK":
                        self._record(event["type"], event["object"])
            except Exception:  # the API server may be restarting: follow on from the last version
                self._stop.wait(0.2)

    def _record(self, kind: str, pvc: dict[str, Any]) -> None:
        self.events += 1
        name, uid = pvc["metadata"]["name"], pvc["metadata"]["uid"]
        self.uids.setdefault(name, set()).add(uid)
        if kind == "DELETED":
            self.deleted.append(name)
            return
        size = parse(pvc["spec"]["resources"]["requests"]["storage"])
        before = self._requested.get(uid)
        if before is not None and size < before:
            self.decreased.append(f"{name}: {before} -> {size}")
        self._requested[uid] = size

    @property
    def duplicates(self) -> list[str]:
        return [name for name, uids in self.uids.items() if len(uids) > 1]

    def summary(self) -> str:
        return (
            f"{self.events} PVC events audited for {len(self.uids)} PVCs: {len(self.deleted)} deleted, "
            f"{len(self.decreased)} decreased, {len(self.duplicates)} duplicated"
        )
