"""One pass over one Wukong, top to bottom: observe, assess, plan, execute, write the status.

- **observe**: the Wukong and its children from the informer caches, the StorageClasses, and the few facts
  nothing watches (lookups.py: networks, SSH keys, snapshots); the spec is parsed once (``Observed.spec``).
- **assess** (assess.py, pure): each disk's volume, what the VM waits for, name conflicts, what a restart would
  apply -- judged once and read by planning and status alike.
- **plan** (planning.py, pure): the writes that converge the Wukong.
- **execute** (execution.py): each write, its answer folded back into the observation; an object that vanished
  under the pass ends it with a retry.
- **status** (status.py, pure; statuswrites.py decides when): rebuilt from the world as the writes left it, and
  written only when it changed. Events mark what a user acts on.

Level-triggered: nothing is remembered between passes but what the API holds, the status this replica last wrote
(statuswrites.py) and the objects found not ours (execution.py). The pass returns a ``Result``: come back later (a
wait nothing watches, a status held back), or soon after a conflict -- a stale write or an object that exists is
expected in a concurrent world, not an error.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from kubeclient.controller import Result
from kubeclient.informer import Key
from kubeclient.rest import AlreadyExists, Conflict, Kube
from reconciler import planning, status
from reconciler.assess import Assessment, assess
from reconciler.events import EventRecorder, now
from reconciler.execution import Executor
from reconciler.lookups import Lookups
from reconciler.observation import Observed
from reconciler.statuswrites import StatusWrites
from wukong import api
from wukong.api import WUKONGS
from wukong.naming import vm_name, volume_name
from wukong.spec import WukongSpec
from wukong.storageclass import StorageClass

log = logging.getLogger("wukong.reconciler")
BLOCKED_RECHECK_SECONDS = 15.0  # nothing we watch tells when Multus, a NAD or a Secret appears
SNAPSHOT_RECHECK_SECONDS = 1.0  # nor when a VolumeSnapshot a growth waits for is ready (listed per pass, not watched)


class Store(Protocol):
    """A cache of one resource (an informer's, or a test's)."""

    def get(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    def by_label(self, namespace: str, value: str, label: str | None = None) -> list[dict[str, Any]]: ...

    def items(self) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class Caches:
    """What a pass reads without asking: children are indexed by the ``vm.novasphere.dev/wukong`` label."""

    wukongs: Store
    pvcs: Store
    data_volumes: Store
    vms: Store
    vmis: Store
    storage_classes: Store


class Reconciler:
    def __init__(
        self,
        kube: Kube,
        caches: Caches,
        lookups: Lookups,
        events: EventRecorder,
        writes: StatusWrites,
        hotplug_disks: bool = False,
        pass_scheduled: Callable[[Key], bool] = lambda _key: False,
    ) -> None:
        """``pass_scheduled``: whether another pass of the key is already due (the controller's coalescing)."""
        self.kube, self.caches, self.lookups, self.events, self.writes = kube, caches, lookups, events, writes
        self.hotplug_disks, self.pass_scheduled = hotplug_disks, pass_scheduled
        self.executor = Executor(kube, events)

    def reconcile(self, key: Key) -> Result:
        namespace, name = key
        wukong = self.caches.wukongs.get(namespace, name)
        if wukong is None or wukong["metadata"].get("deletionTimestamp"):
            self.release_retained(namespace, name)
            self.writes.forget(key)
            return Result()
        log.debug("pass %s/%s started at %.6f", namespace, name, time.time())  # wall clock: the sharding audit
        try:
            return self._pass(key, wukong)
        finally:
            log.debug("pass %s/%s ended at %.6f", namespace, name, time.time())

    def _pass(self, key: Key, wukong: dict[str, Any]) -> Result:
        observed = self.observe(self.writes.latest(key, wukong))
        assessed = assess(observed)
        try:
            actions = planning.plan(assessed, self.hotplug_disks)
            for action in actions:
                outcome = self.executor.execute(observed, action)
                if outcome.retry is not None:
                    return Result(conflict=outcome.retry)
                observed = outcome.observed
            if actions:  # the writes changed the world the status describes
                assessed = assess(observed)
            held = self.write_status(key, assessed, acted=bool(actions))
        except (Conflict, AlreadyExists) as error:  # a stale resourceVersion: the next pass sees the news
            return Result(conflict=str(error))
        gates = assessed.snapshot_gates.values()
        snapshotting = any(g.pending for g in gates)
        stopped = any(not g.pending and not g.open for g in gates)  # a class to be created, a failed one deleted
        waits = [
            held,
            BLOCKED_RECHECK_SECONDS if assessed.blockers or stopped else None,
            SNAPSHOT_RECHECK_SECONDS if snapshotting else None,
        ]
        return Result(requeue_after=min((w for w in waits if w is not None), default=None))

    # -- observe -----------------------------------------------------------------------------------------
    def observe(self, wukong: dict[str, Any]) -> Observed:
        spec = WukongSpec.from_object(wukong)  # once: every observation of this pass carries it
        namespace, name = wukong["metadata"]["namespace"], wukong["metadata"]["name"]
        names = {volume_name(name, d.name) for d in spec.disks}
        found: dict[str, dict[str, dict[str, Any]]] = {"pvcs": {}, "data_volumes": {}}
        for field, cache in (("pvcs", self.caches.pvcs), ("data_volumes", self.caches.data_volumes)):
            for child in cache.by_label(namespace, name):
                found[field][child["metadata"]["name"]] = child
            for child_name in names:  # a same-named object without our label: a conflict, or a retained volume
                if (named := cache.get(namespace, child_name)) is not None:
                    found[field][child_name] = named
        released = {  # what the Wukong still holds of its removed disks
            f"{kind}/{child['metadata']['name']}": child
            for kind, cache in (("PersistentVolumeClaim", self.caches.pvcs), ("DataVolume", self.caches.data_volumes))
            for child in cache.by_label(namespace, name, api.RELEASED_FROM_LABEL)
        }
        classes = {c["metadata"]["name"]: StorageClass.from_manifest(c) for c in self.caches.storage_classes.items()}
        observed = Observed(
            wukong=wukong,
            pvcs=found["pvcs"],
            data_volumes=found["data_volumes"],
            released=released,
            policy_scope=self.lookups.scope(namespace),
            vm=self.caches.vms.get(namespace, vm_name(name)),
            vmi=self.caches.vmis.get(namespace, vm_name(name)),
            storage_classes=classes,
            parsed=(wukong, spec),
        )
        return self.lookups.snapshot_facts(self.lookups.guest_facts(observed))

    # -- a Wukong that is gone ---------------------------------------------------------------------------
    def release_retained(self, namespace: str, name: str) -> None:
        """The garbage collector deletes the VM (and the volumes under Delete); retained volumes are released."""
        data_volumes = {o["metadata"]["name"]: o for o in self.caches.data_volumes.by_label(namespace, name)}
        pvcs = {o["metadata"]["name"]: o for o in self.caches.pvcs.by_label(namespace, name)}
        self.executor.release_retained(namespace, planning.release_retained(name, data_volumes, pvcs))

    # -- status ------------------------------------------------------------------------------------------
    def write_status(self, key: Key, assessed: Assessment, acted: bool = False) -> float | None:
        """Write the status if it changed and is due; otherwise return when what is held back is due. ``acted``:
        this pass wrote children (statuswrites.py)."""
        observed = assessed.observed
        wukong = observed.wukong
        before = wukong.get("status") or {}
        after = status.compute(assessed, now())
        decision = self.writes.decide(key, before, after, self.pass_scheduled(key), acted)
        if not decision.write:
            return decision.after
        patch = {"metadata": {"resourceVersion": wukong["metadata"]["resourceVersion"]}, "status": after}
        written = self.kube.patch(WUKONGS, observed.namespace, observed.name, patch, subresource="status")
        self.writes.written(key, str(written["metadata"].get("resourceVersion") or ""), after)
        self.transition_events(wukong, before, after)
        return None

    def transition_events(self, wukong: dict[str, Any], before: dict[str, Any], after: dict[str, Any]) -> None:
        """Warnings when a problem appears or changes, not on every pass that still sees it."""
        problem, previous = _condition(after, "Degraded"), _condition(before, "Degraded")
        if problem is not None and problem != previous:
            self.events.warning(wukong, *problem)
        restart = _condition(after, "RestartRequired")
        if restart is not None and restart != _condition(before, "RestartRequired"):
            self.events.normal(wukong, "RestartRequired", restart[1])


def _condition(status_: dict[str, Any], kind: str) -> tuple[str, str] | None:
    """(reason, message) of a condition that is True, else None."""
    for condition in status_.get("conditions") or []:
        if condition.get("type") == kind and condition.get("status") == "True":
            return condition["reason"], condition["message"]
    return None
