"""The controller loop: informers feed a work queue; workers reconcile one Wukong at a time.

Level-triggered: a pass reads the Wukong and its children from the informer caches, executes the
planner's actions, and writes status only when it changed. The child informers hold only what this
reconciler manages (by label), and a child's event requeues the Wukongs its labels and ownerReferences
name; a periodic resync requeues every Wukong; failures back off per key. Stale writes (409) and objects
that already exist are expected in a concurrent world and handled as such, not reported as errors.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from kubeclient.informer import Informer, Key, key_of
from kubeclient.resources import (
    DATA_VOLUMES,
    NETWORK_ATTACHMENT_DEFINITIONS,
    PVCS,
    SECRETS,
    STORAGE_CLASSES,
    VIRTUAL_MACHINE_INSTANCES,
    VIRTUAL_MACHINES,
    WUKONGS,
)
from kubeclient.rest import AlreadyExists, ApiError, Conflict, Kube, NotFound
from kubeclient.workqueue import ShutDown, WorkQueue
from reconciler import children, planning, status
from reconciler.events import EventRecorder, now
from reconciler.execution import Executor
from reconciler.guest import GuestConfig
from reconciler.observation import Observed
from reconciler.policies import Policies
from wukong import api
from wukong.naming import vm_name, volume_name
from wukong.networkrules import nad_reference
from wukong.storageclass import StorageClass

log = logging.getLogger("wukong.reconciler")
RECONCILES = Counter("wukong_reconciler_reconciles", "Reconcile passes by result.", ["result"])
ERRORS = Counter("wukong_reconciler_reconcile_errors", "Reconcile passes that failed with an error.")
LATENCY = Histogram(
    "wukong_reconciler_reconcile_duration_seconds",
    "Time of one reconcile pass.",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
RESYNCS = Counter("wukong_reconciler_resyncs", "Periodic resyncs: every Wukong requeued.")
QUEUE_DEPTH = Gauge("wukong_reconciler_queue_depth", "Wukongs waiting to be reconciled.")
BLOCKED_RECHECK_SECONDS = 15.0
MULTUS_RECHECK_SECONDS = 5.0
MANAGED = f"{api.MANAGED_BY_LABEL}={api.MANAGED_BY}"  # our volumes and VMs, released volumes included
INSTANCES = api.WUKONG_LABEL  # KubeVirt copies the VM template's labels onto the instance


@dataclasses.dataclass
class Settings:
    namespace: str | None = None
    workers: int = 4
    resync_period: float = 300.0
    hotplug_disks: bool = False  # KubeVirt's DeclarativeHotplugVolumes is on: attach added disks live
    coalesce: float = 1.0  # seconds: child changes within this of a Wukong's last pass share one pass
    detail_delay: float = 30.0  # seconds: progress details wait this long after a write for company, then
    detail_max: float = 120.0  # twice as long each time while nothing a user watches for changes, up to this
    owns: Callable[[str, str], bool] | None = None  # sharding: whether this replica reconciles (namespace, name)
    instance: str = dataclasses.field(default_factory=lambda: f"wukong-reconciler-{uuid.uuid4().hex[:8]}")


class Controller:
    def __init__(self, kube: Kube, settings: Settings) -> None:
        self.kube, self.settings = kube, settings
        ns = settings.namespace
        self.wukongs = Informer(kube, WUKONGS, ns)
        self.pvcs = Informer(kube, PVCS, ns, MANAGED)
        self.data_volumes = Informer(kube, DATA_VOLUMES, ns, MANAGED)
        self.vms = Informer(kube, VIRTUAL_MACHINES, ns, MANAGED)
        self.vmis = Informer(kube, VIRTUAL_MACHINE_INSTANCES, ns, INSTANCES)
        self.storage_classes = Informer(kube, STORAGE_CLASSES)
        self.policies = Policies(kube)
        for informer in (self.pvcs, self.data_volumes, self.vms, self.vmis):
            informer.index_by_label(api.WUKONG_LABEL)
            informer.on_change(self._child_changed)
        self.wukongs.on_change(lambda _kind, obj: self.queue.add(key_of(obj)))
        self.storage_classes.on_change(lambda _kind, _obj: self._enqueue_all())
        self.queue: WorkQueue[Key] = WorkQueue()
        QUEUE_DEPTH.set_function(lambda: len(self.queue))
        self.events = EventRecorder(kube, settings.instance)
        self.executor = Executor(kube, self.events)
        self._stopped = threading.Event()
        self._threads: list[threading.Thread] = []
        self._multus: tuple[bool, float] | None = None
        self._passes_lock = threading.Lock()
        self._last_pass: dict[Key, float] = {}  # when each Wukong's last pass started
        self._trailing: set[Key] = set()  # Wukongs with a pass already scheduled at the end of their window
        self._last_write: dict[Key, float] = {}  # when each Wukong's status was last written
        self._written: dict[Key, tuple[str, dict[str, Any]]] = {}  # (resourceVersion, status) of that write
        self._detail_due: dict[Key, float] = {}  # when the details waiting for company go out on their own
        self._detail_wait: dict[Key, float] = {}  # how long details wait after the last write (doubling)

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
        threading.Thread(target=self._resync, name="resync", daemon=True).start()
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
            RESYNCS.inc()

    def _enqueue_all(self) -> None:
        for obj in self.wukongs.items():
            self.queue.add(key_of(obj))

    def enqueue_shard(self, shard: int, shard_of: Callable[[str, str], int]) -> None:
        """A shard this replica just took: every Wukong in it gets a pass."""
        for obj in self.wukongs.items():
            if shard_of(*key_of(obj)) == shard:
                self.queue.add(key_of(obj))

    def _child_changed(self, _kind: str, obj: dict[str, Any]) -> None:
        namespace = obj["metadata"].get("namespace", "")
        for owner in children.owners(obj):
            self._coalesced((namespace, owner))

    def _coalesced(self, key: Key) -> None:
        """A child's change requeues its Wukong at once when the Wukong has been quiet; during a burst (children
        binding, importing, starting one after the other) the changes within ``coalesce`` seconds of the last pass
        share one pass at the end of the window: one status write instead of one per child event."""
        window = self.settings.coalesce
        now = time.monotonic()
        with self._passes_lock:
            since = now - self._last_pass.get(key, -window)
            if since >= window:
                self.queue.add(key)
            elif key not in self._trailing:
                self._trailing.add(key)
                self.queue.add_after(key, window - since)

    # -- workers -----------------------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            try:
                key = self.queue.get()
            except ShutDown:
                return
            if self.settings.owns is not None and not self.settings.owns(*key):
                self.queue.done(key)  # another replica's shard
                continue
            started = time.perf_counter()
            with self._passes_lock:
                self._last_pass[key] = time.monotonic()
                self._trailing.discard(key)
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
            # The garbage collector deletes the VM (and volumes under Delete); retained volumes are released.
            data_volumes = {o["metadata"]["name"]: o for o in self.data_volumes.by_label(namespace, name)}
            pvcs = {o["metadata"]["name"]: o for o in self.pvcs.by_label(namespace, name)}
            self.executor.release_retained(namespace, planning.release_retained(name, data_volumes, pvcs))
            self._forget(key)
            return
        observed = self.observe(self._with_own_status(wukong))
        log.debug("pass %s/%s started at %.6f", namespace, name, time.time())
        for action in planning.plan(observed, self.settings.hotplug_disks):
            observed = self.executor.execute(observed, action)
        self._write_status(observed)
        log.debug("pass %s/%s ended at %.6f", namespace, name, time.time())
        if planning.guest_blockers(observed):  # nothing we watch tells when Multus, a NAD or a Secret appears
            self.queue.add_after(key, BLOCKED_RECHECK_SECONDS)

    def _forget(self, key: Key) -> None:
        with self._passes_lock:
            for remembered in (self._last_pass, self._last_write, self._written, self._detail_due, self._detail_wait):
                remembered.pop(key, None)

    def _with_own_status(self, wukong: dict[str, Any]) -> dict[str, Any]:
        """The Wukong with the status this replica last wrote, when the cache has not seen that write yet: a
        pass right after a write would otherwise write the same status again (or lose a 409 on a stale
        resourceVersion)."""
        written = self._written.get(key_of(wukong))
        cached = wukong["metadata"].get("resourceVersion") or ""
        if written is None or not cached.isdigit() or not written[0].isdigit() or int(written[0]) <= int(cached):
            return wukong
        return {**wukong, "metadata": {**wukong["metadata"], "resourceVersion": written[0]}, "status": written[1]}

    def observe(self, wukong: dict[str, Any]) -> Observed:
        namespace, name = key_of(wukong)
        names = {volume_name(name, d.name) for d in Observed(wukong).spec.disks}
        pvcs: dict[str, dict[str, Any]] = {}
        dvs: dict[str, dict[str, Any]] = {}
        for informer, found in ((self.pvcs, pvcs), (self.data_volumes, dvs)):
            for child in informer.by_label(namespace, name):
                found[child["metadata"]["name"]] = child
            for child_name in names:
                if (named := informer.get(namespace, child_name)) is not None:
                    found[child_name] = named
        classes = {c["metadata"]["name"]: StorageClass.from_manifest(c) for c in self.storage_classes.items()}
        observed = Observed(
            wukong=wukong,
            pvcs=pvcs,
            data_volumes=dvs,
            vm=self.vms.get(namespace, vm_name(name)),
            vmi=self.vmis.get(namespace, vm_name(name)),
            storage_classes=classes,
        )
        return self._ask_guest_facts(observed)

    def _ask_guest_facts(self, observed: Observed) -> Observed:
        """What the VM needs that nothing here watches: Multus, the NetworkAttachmentDefinitions, the SSH key
        Secret. Asked per pass, only for Wukongs that use them; the Secret without reading it. Another namespace's
        NetworkAttachmentDefinition is looked up only where the policies allow the Wukong to use it."""
        spec, namespace = observed.spec, observed.namespace
        facts: dict[str, Any] = {}
        if spec.networks:
            observed = dataclasses.replace(observed, policy_scope=self.policies.scope(namespace))
            facts["multus"] = self._multus_served()
            if facts["multus"]:
                refused = observed.refused_networks
                facts["nads"] = {
                    nad: self._get_or_none(namespace, nad)
                    for network, nad in zip(spec.networks, GuestConfig(observed).nad_names(), strict=True)
                    if not (network.nad_name and network.name in refused)
                }
        if spec.ssh_key_secret:
            facts["secrets"] = {spec.ssh_key_secret: self._secret_exists(namespace, spec.ssh_key_secret)}
        return dataclasses.replace(observed, **facts) if facts else observed

    def _secret_exists(self, namespace: str, name: str) -> bool:
        """Whether the name is taken, learnt without reading the Secret (RBAC gives no get): a dry-run create of an
        empty Opaque Secret of that name, which the API server refuses with AlreadyExists when one exists and
        otherwise stores nothing. Neither answer carries any Secret's data, and the admission policy admits such a
        probe only empty and only as a dry run."""
        probe = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {"name": name, "namespace": namespace},
        }
        try:
            self.kube.create(SECRETS, probe, dry_run=True)
        except AlreadyExists:
            return True
        except ApiError as error:
            if error.status != 422:  # 422: a name no Secret can have (stored before the CRD said so)
                raise
        return False

    def _get_or_none(self, namespace: str, nad_name: str) -> dict[str, Any] | None:
        try:
            return self.kube.get(NETWORK_ATTACHMENT_DEFINITIONS, *nad_reference(nad_name, namespace))
        except (NotFound, ValueError):
            return None

    def _multus_served(self) -> bool:
        """Discovery, remembered for a few seconds: one request however many Wukongs have networks."""
        now = time.monotonic()
        if self._multus is None or now - self._multus[1] > MULTUS_RECHECK_SECONDS:
            self._multus = (self.kube.serves("k8s.cni.cncf.io", "v1"), now)
        return self._multus[0]

    def _write_status(self, observed: Observed) -> None:
        wukong = observed.wukong
        before = wukong.get("status") or {}
        after = status.compute(observed, now())
        if after == before:
            with self._passes_lock:
                self._detail_due.pop(key_of(wukong), None)
            return
        key, moment = key_of(wukong), time.monotonic()
        with self._passes_lock:
            if key in self._trailing:
                return  # more child changes came in during this pass: the pass already scheduled writes the newer one
            if status.urgent(before, after):
                self._detail_wait[key] = self.settings.detail_delay
            else:
                # Only progress moved (a volume bound, an import scheduled, a message): it goes out with the next
                # urgent write, or on its own detail_delay after the last write, then at doubling intervals while
                # the Wukong stays in the same state; never the moment it is seen, so a change a user watches for
                # that follows within the coalescing window shares the write.
                wait = self._detail_wait.get(key, self.settings.detail_delay)
                last = self._last_write.get(key)
                due = self._detail_due.get(key)
                if due is None:
                    due = max(moment + self.settings.coalesce, (last + wait) if last is not None else moment)
                    self._detail_due[key] = due
                    self.queue.add_after(key, due - moment)
                if moment < due:
                    return
                self._detail_wait[key] = min(2 * wait, self.settings.detail_max)
            self._detail_due.pop(key, None)
            self._last_write[key] = moment
        patch = {"metadata": {"resourceVersion": wukong["metadata"]["resourceVersion"]}, "status": after}
        written = self.kube.patch(WUKONGS, observed.namespace, observed.name, patch, subresource="status")
        with self._passes_lock:
            self._written[key] = (str(written["metadata"].get("resourceVersion") or ""), after)
        self._transition_events(wukong, before, after)

    def _transition_events(self, wukong: dict[str, Any], before: dict[str, Any], after: dict[str, Any]) -> None:
        """Warnings when a problem appears or changes, not on every pass that still sees it."""
        problem, previous = _degraded(after), _degraded(before)
        if problem is not None and problem != previous:
            self.events.warning(wukong, *problem)
        restart = _condition(after, "RestartRequired")
        if restart is not None and restart != _condition(before, "RestartRequired"):
            self.events.normal(wukong, "RestartRequired", restart[1])


def _degraded(status_: dict[str, Any]) -> tuple[str, str] | None:
    return _condition(status_, "Degraded")


def _condition(status_: dict[str, Any], kind: str) -> tuple[str, str] | None:
    """(reason, message) of a condition that is True, else None."""
    for condition in status_.get("conditions") or []:
        if condition.get("type") == kind and condition.get("status") == "True":
            return condition["reason"], condition["message"]
    return None
