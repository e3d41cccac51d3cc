"""The controller loop: informers feed a work queue; workers reconcile one Wukong at a time.

Level-triggered: a pass reads the Wukong and its children from the informer caches, executes the
planner's actions, and writes status only when it changed. A child's event requeues its owner at once;
a periodic resync requeues every Wukong; failures back off per key. Stale writes (409) and objects
that already exist are expected in a concurrent world and handled as such, not reported as errors.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import threading
import time
import uuid
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from reconciler import planning, status
from reconciler.children import is_owned_by
from reconciler.informer import Informer, Key, key_of
from reconciler.kube import AlreadyExists, ApiError, Conflict, Kube, NotFound
from reconciler.planning import Create, Expand, Observed, Release, UpdateVM
from reconciler.resources import (
    DATA_VOLUMES,
    EVENTS,
    PVCS,
    STORAGE_CLASSES,
    VIRTUAL_MACHINE_INSTANCES,
    VIRTUAL_MACHINES,
    WUKONGS,
    Resource,
)
from reconciler.workqueue import ShutDown, WorkQueue
from wukong import api
from wukong.naming import vm_name, volume_name
from wukong.storageclass import StorageClass

log = logging.getLogger("wukong.reconciler")
RECONCILES = Counter("wukong_reconciler_reconciles", "Reconcile passes by result.", ["result"])
ERRORS = Counter("wukong_reconciler_reconcile_errors", "Reconcile passes that failed with an error.")
LATENCY = Histogram(
    "wukong_reconciler_reconcile_duration_seconds",
    "Time of one reconcile pass.",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
QUEUE_DEPTH = Gauge("wukong_reconciler_queue_depth", "Wukongs waiting to be reconciled.")
RESOURCE_OF_KIND: dict[str, Resource] = {
    "PersistentVolumeClaim": PVCS,
    "DataVolume": DATA_VOLUMES,
    "VirtualMachine": VIRTUAL_MACHINES,
}


@dataclasses.dataclass
class Settings:
    namespace: str | None = None
    workers: int = 4
    resync_period: float = 300.0
    instance: str = dataclasses.field(default_factory=lambda: f"wukong-reconciler-{uuid.uuid4().hex[:8]}")


class Controller:
    def __init__(self, kube: Kube, settings: Settings) -> None:
        self.kube, self.settings = kube, settings
        ns = settings.namespace
        self.wukongs = Informer(kube, WUKONGS, ns)
        self.pvcs = Informer(kube, PVCS, ns)
        self.data_volumes = Informer(kube, DATA_VOLUMES, ns)
        self.vms = Informer(kube, VIRTUAL_MACHINES, ns)
        self.vmis = Informer(kube, VIRTUAL_MACHINE_INSTANCES, ns)
        self.storage_classes = Informer(kube, STORAGE_CLASSES)
        for informer in (self.pvcs, self.data_volumes, self.vms, self.vmis):
            informer.index_by_label(api.WUKONG_LABEL)
            informer.on_change(self._child_changed)
        self.wukongs.on_change(lambda _kind, obj: self.queue.add(key_of(obj)))
        self.storage_classes.on_change(lambda _kind, _obj: self._enqueue_all())
        self.queue: WorkQueue[Key] = WorkQueue()
        QUEUE_DEPTH.set_function(lambda: len(self.queue))
        self._stopped = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def informers(self) -> tuple[Informer, ...]:
        return self.wukongs, self.pvcs, self.data_volumes, self.vms, self.vmis, self.storage_classes

    # -- lifecycle ---------------------------------------------------------------------------------------
    def start_informers(self) -> None:
        for informer in self.informers:
            informer.start()

    def synced(self) -> bool:
        return all(informer.synced for informer in self.informers)

    def run_workers(self) -> None:
        """Start the workers once every cache has synced (a pass on a partial cache would act on a lie)."""
        while not self.synced():
            if self._stopped.wait(0.05):
                return
        for index in range(self.settings.workers):
            thread = threading.Thread(target=self._work, name=f"worker-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)
        resync = threading.Thread(target=self._resync, name="resync", daemon=True)
        resync.start()
        self._enqueue_all()

    def stop(self, timeout: float = 30.0) -> None:
        """Graceful: no new work is taken, passes under way finish."""
        self._stopped.set()
        self.queue.shut_down()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        for informer in self.informers:
            informer.stop()

    def _resync(self) -> None:
        while not self._stopped.wait(self.settings.resync_period):
            self._enqueue_all()

    def _enqueue_all(self) -> None:
        for obj in self.wukongs.items():
            self.queue.add(key_of(obj))

    def _child_changed(self, _kind: str, obj: dict[str, Any]) -> None:
        for key in self._owners(obj):
            self.queue.add(key)

    def _owners(self, obj: dict[str, Any]) -> list[Key]:
        namespace, name = key_of(obj)
        metadata = obj["metadata"]
        labels = metadata.get("labels") or {}
        owners = {labels[label] for label in (api.WUKONG_LABEL, api.RELEASED_FROM_LABEL) if label in labels}
        for reference in metadata.get("ownerReferences") or []:
            if reference.get("kind") == api.KIND:
                owners.add(reference["name"])
            elif reference.get("kind") == "DataVolume" and (dv := self.data_volumes.get(namespace, reference["name"])):
                owners.update(v for k, v in (dv["metadata"].get("labels") or {}).items() if k == api.WUKONG_LABEL)
        if not owners:  # an object nobody claims may be blocking a Wukong's child of the same name
            owners = {key_of(w)[1] for w in self.wukongs.items() if key_of(w)[0] == namespace and _child_named(w, name)}
        return [(namespace, owner) for owner in owners]

    # -- workers -----------------------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            try:
                key = self.queue.get()
            except ShutDown:
                return
            started = time.perf_counter()
            try:
                self.reconcile(key)
                self.queue.forget(key)
                RECONCILES.labels("success").inc()
            except (Conflict, AlreadyExists):
                RECONCILES.labels("conflict").inc()
                self.queue.add_rate_limited(key)
            except Exception as error:
                RECONCILES.labels("error").inc()
                ERRORS.inc()
                delay = self.queue.add_rate_limited(key)
                log.warning("reconcile %s/%s failed (%s); retrying in %.2fs", *key, error, delay)
            finally:
                LATENCY.observe(time.perf_counter() - started)
                self.queue.done(key)

    # -- one pass ----------------------------------------------------------------------------------------
    def reconcile(self, key: Key) -> None:
        namespace, name = key
        wukong = self.wukongs.get(namespace, name)
        if wukong is None or wukong["metadata"].get("deletionTimestamp"):
            return  # garbage collection removes what it owned; released volumes are not its children any more
        observed = self.observe(wukong)
        for action in planning.plan(observed):
            observed = self._execute(observed, action)
        self._write_status(observed)

    def observe(self, wukong: dict[str, Any]) -> Observed:
        namespace, name = key_of(wukong)
        names = {volume_name(name, d.name) for d in Observed(wukong).spec.disks}
        pvcs, dvs = {}, {}
        for informer, found in ((self.pvcs, pvcs), (self.data_volumes, dvs)):
            for child in informer.by_label(namespace, name):
                found[child["metadata"]["name"]] = child
            for child_name in names:
                if (child := informer.get(namespace, child_name)) is not None:
                    found[child_name] = child
        classes = {c["metadata"]["name"]: StorageClass.from_manifest(c) for c in self.storage_classes.items()}
        return Observed(
            wukong=wukong,
            pvcs=pvcs,
            data_volumes=dvs,
            vm=self.vms.get(namespace, vm_name(name)),
            vmi=self.vmis.get(namespace, vm_name(name)),
            storage_classes=classes,
        )

    def _execute(self, observed: Observed, action: planning.Action) -> Observed:
        namespace = observed.wukong["metadata"]["namespace"]
        if isinstance(action, Create):
            return self._create(observed, action)
        if isinstance(action, Expand):
            patch = {"spec": {"resources": {"requests": {"storage": action.size}}}}
            pvc = self.kube.patch(PVCS, namespace, action.pvc, patch)
            self.event(
                observed.wukong,
                "Normal",
                "Expanding",
                f"Expanding disk {action.disk} from {action.previous} to {action.size} (PVC {action.pvc})",
            )
            return dataclasses.replace(observed, pvcs={**observed.pvcs, action.pvc: pvc})
        if isinstance(action, Release):
            self.kube.patch(RESOURCE_OF_KIND[action.kind], namespace, action.name, action.patch)
            self.event(
                observed.wukong,
                "Normal",
                "Released",
                f"Disk {action.disk} was removed from the spec: kept {action.kind} {action.name}, labelled "
                f"{api.RELEASED_FROM_LABEL}={observed.name}",
            )
            kept = {"DataVolume": observed.data_volumes, "PersistentVolumeClaim": observed.pvcs}[action.kind]
            remaining = {n: o for n, o in kept.items() if n != action.name}
            field = "data_volumes" if action.kind == "DataVolume" else "pvcs"
            return dataclasses.replace(observed, **{field: remaining})
        if isinstance(action, UpdateVM):
            vm = self.kube.patch(VIRTUAL_MACHINES, namespace, vm_name(observed.name), action.patch)
            self.event(observed.wukong, "Normal", "Updated", f"Updated VirtualMachine {vm_name(observed.name)}")
            return dataclasses.replace(observed, vm=vm)
        raise TypeError(f"unknown action {action!r}")

    def _create(self, observed: Observed, action: Create) -> Observed:
        resource = RESOURCE_OF_KIND[action.kind]
        metadata = action.object["metadata"]
        try:
            created = self.kube.create(resource, action.object)
            purpose = f" for disk {action.disk}" if action.disk else ""
            self.event(observed.wukong, "Normal", "Created", f"Created {action.kind} {metadata['name']}{purpose}")
        except AlreadyExists:
            try:
                created = self.kube.get(resource, metadata["namespace"], metadata["name"])
            except NotFound:
                raise Conflict(409, "Conflict", f"{action.kind} {metadata['name']} vanished; retrying") from None
            if not is_owned_by(created, observed.uid):
                why = f"{action.kind} {metadata['name']} exists and is not owned by this Wukong; it is left alone"
                return dataclasses.replace(observed, conflicts={**observed.conflicts, metadata["name"]: why})
        if action.kind == "VirtualMachine":
            return dataclasses.replace(observed, vm=created)
        field = "data_volumes" if action.kind == "DataVolume" else "pvcs"
        return dataclasses.replace(observed, **{field: {**getattr(observed, field), metadata["name"]: created}})

    def _write_status(self, observed: Observed) -> None:
        wukong = observed.wukong
        before = wukong.get("status") or {}
        after = status.compute(observed, _now())
        if after == before:
            return
        patch = {"metadata": {"resourceVersion": wukong["metadata"]["resourceVersion"]}, "status": after}
        namespace, name = key_of(wukong)
        self.kube.patch(WUKONGS, namespace, name, patch, subresource="status")
        self._transition_events(wukong, before, after)

    def _transition_events(self, wukong: dict[str, Any], before: dict[str, Any], after: dict[str, Any]) -> None:
        """Warnings when a problem appears or changes, not on every pass that still sees it."""

        def degraded(status_: dict[str, Any]) -> tuple[str, str] | None:
            for condition in status_.get("conditions") or []:
                if condition["type"] == "Degraded" and condition["status"] == "True":
                    return condition["reason"], condition["message"]
            return None

        now, then = degraded(after), degraded(before)
        if now is not None and now != then:
            self.event(wukong, "Warning", now[0], now[1])
        if after.get("phase") == status.PHASE_RUNNING and before.get("phase") != status.PHASE_RUNNING:
            self.event(wukong, "Normal", "Running", f"VirtualMachine {vm_name(key_of(wukong)[1])} is running")

    def event(self, wukong: dict[str, Any], kind: str, reason: str, message: str) -> None:
        metadata = wukong["metadata"]
        stamp = _now()
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
            "message": message[:1024],
            "count": 1,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "source": {"component": "wukong-reconciler"},
            "reportingComponent": "wukong-reconciler",
            "reportingInstance": self.settings.instance,
        }
        try:
            self.kube.create(EVENTS, event)
        except ApiError as error:  # an event lost is not worth failing the pass
            log.warning(
                "could not record event %s for %s/%s: %s", reason, metadata["namespace"], metadata["name"], error
            )


def _child_named(wukong: dict[str, Any], name: str) -> bool:
    wukong_name = wukong["metadata"]["name"]
    return name == vm_name(wukong_name) or any(
        name == volume_name(wukong_name, d.name) for d in Observed(wukong).spec.disks
    )


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
