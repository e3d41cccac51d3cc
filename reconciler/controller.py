"""The reconciler's wiring: informers feed the generic controller (kubeclient/controller.py), which runs the pass
(reconcile.py) one Wukong at a time.

The child informers hold only what this reconciler manages (by label), and of each object only what a pass reads
(caching.py). A Wukong's event requeues it, except the echo of our own status write; a child's event requeues the
Wukongs its labels and ownerReferences name, coalesced; a StorageClass's event requeues every Wukong. The metrics are
named here.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from kubeclient import controller
from kubeclient.informer import Informer, Key, key_of
from kubeclient.resources import (
    DATA_VOLUMES,
    PVCS,
    STORAGE_CLASSES,
    VIRTUAL_MACHINE_INSTANCES,
    VIRTUAL_MACHINES,
)
from kubeclient.rest import Kube
from reconciler.caching import CacheTransforms
from reconciler.events import EventRecorder
from reconciler.lookups import Lookups
from reconciler.ownership import owners
from reconciler.policies import Policies
from reconciler.reconcile import Caches, Reconciler
from reconciler.statuswrites import HOLD_SECONDS, StatusWrites
from wukong import api
from wukong.api import WUKONGS

RECONCILES = Counter("wukong_reconciler_reconciles", "Reconcile passes by result.", ["result"])
ERRORS = Counter("wukong_reconciler_reconcile_errors", "Reconcile passes that failed with an error.")
LATENCY = Histogram(
    "wukong_reconciler_reconcile_duration_seconds",
    "Time of one reconcile pass.",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
RESYNCS = Counter("wukong_reconciler_resyncs", "Periodic resyncs: every Wukong requeued.")
QUEUE_DEPTH = Gauge("wukong_reconciler_queue_depth", "Wukongs waiting to be reconciled.")
LEADER = Gauge(
    "wukong_reconciler_leader",
    "1 while this replica reconciles: it holds the Lease (--leader-elect) or a shard (--shards), or needs neither.",
)
SHARDS = Gauge("wukong_reconciler_shards", "Shards the Wukongs are hashed into (--shards; 0 without).")
SHARDS_HELD = Gauge("wukong_reconciler_shards_held", "Shards whose Lease this replica holds (0 without --shards).")
MANAGED = f"{api.MANAGED_BY_LABEL}={api.MANAGED_BY}"  # our volumes and VMs, released volumes included
INSTANCES = api.WUKONG_LABEL  # KubeVirt copies the VM template's labels onto the instance
# A burst of child changes (a claim binding: its volume name, then its phase; CDI's claim, then the DataVolume) comes
# within a few requests of the simulation or the real controllers, well inside this; a longer window only delays the
# next step (the VM created, Running said) by up to its length, twice per Wukong. The status' own waits
# (statuswrites.py) keep the writes few, whatever the window.
COALESCE_SECONDS = 0.2


@dataclasses.dataclass
class Settings:
    namespace: str | None = None
    workers: int = 16  # passes wait on API round trips: concurrency, not CPU, bounds how many converge at once
    resync_period: float = 300.0
    hotplug_disks: bool = False  # KubeVirt's DeclarativeHotplugVolumes is on: attach added disks live
    coalesce: float = COALESCE_SECONDS  # child changes within this of a Wukong's last pass share one pass
    status_hold: float = HOLD_SECONDS  # seconds: the longest a changed detail of the status waits for company
    owns: Callable[[str, str], bool] | None = None  # sharding: whether this replica reconciles (namespace, name)
    instance: str = dataclasses.field(default_factory=lambda: f"wukong-reconciler-{uuid.uuid4().hex[:8]}")


def _passed(outcome: str, seconds: float) -> None:
    RECONCILES.labels(outcome).inc()
    if outcome == controller.ERROR:
        ERRORS.inc()
    LATENCY.observe(seconds)


HOOKS = controller.Hooks(passed=_passed, resynced=RESYNCS.inc, depth=QUEUE_DEPTH.set_function)


class Controller:
    def __init__(self, kube: Kube, settings: Settings) -> None:
        self.kube, self.settings = kube, settings
        ns, kept = settings.namespace, CacheTransforms()
        self.wukongs = Informer(kube, WUKONGS, ns, transform=kept.default)
        self.pvcs = Informer(kube, PVCS, ns, MANAGED, kept.default)
        self.data_volumes = Informer(kube, DATA_VOLUMES, ns, MANAGED, kept.default)
        self.vms = Informer(kube, VIRTUAL_MACHINES, ns, MANAGED, kept.default)
        self.vmis = Informer(kube, VIRTUAL_MACHINE_INSTANCES, ns, INSTANCES, kept.instances)
        self.storage_classes = Informer(kube, STORAGE_CLASSES, transform=kept.default)
        self.policies = Policies(kube)
        self.status_writes = StatusWrites(settings.status_hold)
        owns = settings.owns
        self.loop: controller.Controller[Key] = controller.Controller(
            self._reconcile,
            lambda: [key_of(obj) for obj in self.wukongs.items()],
            workers=settings.workers,
            resync_period=settings.resync_period,
            coalesce=settings.coalesce,
            owns=(lambda key: owns(*key)) if owns is not None else None,
            hooks=HOOKS,
        )
        self.reconciler = Reconciler(
            kube,
            Caches(self.wukongs, self.pvcs, self.data_volumes, self.vms, self.vmis, self.storage_classes),
            Lookups(kube, self.policies.scope),
            EventRecorder(kube, settings.instance),
            self.status_writes,
            settings.hotplug_disks,
            self.loop.pass_scheduled,
        )
        for informer in (self.pvcs, self.data_volumes, self.vms, self.vmis):
            informer.index_by_label(api.WUKONG_LABEL)
            informer.on_change(self._child_changed)
        for informer in (self.pvcs, self.data_volumes):
            informer.index_by_label(api.RELEASED_FROM_LABEL)  # what a Wukong still holds of its removed disks
        self.wukongs.on_change(self._wukong_changed)
        self.storage_classes.on_change(lambda _kind, _obj: self.loop.enqueue_all())

    def _reconcile(self, key: Key) -> controller.Result:
        return self.reconciler.reconcile(key)

    def _wukong_changed(self, _kind: str, obj: dict[str, Any]) -> None:
        """Every change of a Wukong gets a pass, but the echo of this replica's own status write: that pass would
        find what the one that wrote it already knew."""
        key = key_of(obj)
        if not self.status_writes.echo(key, obj["metadata"].get("resourceVersion") or ""):
            self.loop.enqueue(key)

    def _child_changed(self, _kind: str, obj: dict[str, Any]) -> None:
        namespace = obj["metadata"].get("namespace", "")
        for owner in owners(obj):
            self.loop.enqueue_coalesced((namespace, owner))

    @property
    def informers(self) -> tuple[Informer, ...]:
        return (
            self.wukongs,
            self.pvcs,
            self.data_volumes,
            self.vms,
            self.vmis,
            self.storage_classes,
            *self.policies.informers,
        )

    def start_informers(self) -> None:
        for informer in self.informers:
            informer.start()

    def synced(self) -> bool:
        return all(informer.synced for informer in self.informers)

    def run_workers(self) -> None:
        """Start the workers once every cache has synced (a pass on a partial cache would act on a lie)."""
        while not self.synced():
            if self.loop.stopped.wait(0.05):
                return
        self.loop.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Graceful: no new work is taken, passes under way finish."""
        self.loop.stop(timeout)
        for informer in self.informers:
            informer.stop()

    def enqueue_shard(self, shard: int, shard_of: Callable[[str, str], int]) -> None:
        """A shard this replica just took: every Wukong in it gets a pass."""
        for obj in self.wukongs.items():
            if shard_of(*key_of(obj)) == shard:
                self.loop.enqueue(key_of(obj))
