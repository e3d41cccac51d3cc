"""Carrying out the planner's actions against the API, one ``match`` arm per action.

Each write's answer is folded back into the observation (the ``Outcome``), so later actions of the same pass and
the status see what the API server now holds. Objects that already exist are the normal outcome of a stale cache:
ours are taken as created; one we do not own is a conflict, never adopted, and remembered so later passes only
read it (a GET) instead of trying to create it again. An object that vanished between two requests ends the pass
with ``retry``: the world moved, and the next pass starts from it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass
from typing import assert_never

from kubeclient.resources import (
    DATA_VOLUMES,
    NETWORK_ATTACHMENT_DEFINITIONS,
    PVCS,
    SECRETS,
    VIRTUAL_MACHINES,
    VOLUME_SNAPSHOTS,
    Resource,
)
from kubeclient.rest import AlreadyExists, Kube, NotFound
from reconciler.events import EventRecorder
from reconciler.observation import Kind, Observed
from reconciler.ownership import is_owned_by
from reconciler.planning import (
    Action,
    Adopt,
    ApplySecret,
    Create,
    Expand,
    KeepDataVolume,
    PruneSnapshot,
    Release,
    Replace,
    SetRetention,
    SetSnapshotRetention,
    TakeSnapshot,
    UpdateNetwork,
    UpdateVM,
)
from wukong import api
from wukong.naming import vm_name

log = logging.getLogger("wukong.reconciler")
RESOURCE_OF_KIND: dict[Kind, Resource] = {
    "PersistentVolumeClaim": PVCS,
    "DataVolume": DATA_VOLUMES,
    "VirtualMachine": VIRTUAL_MACHINES,
    "NetworkAttachmentDefinition": NETWORK_ATTACHMENT_DEFINITIONS,
    "VolumeSnapshot": VOLUME_SNAPSHOTS,
}


@dataclass(frozen=True)
class Outcome:
    """The observation after an action; ``retry``: why the pass should stop here and come back (not an error)."""

    observed: Observed
    retry: str | None = None


class Executor:
    def __init__(self, kube: Kube, events: EventRecorder) -> None:
        self.kube, self.events = kube, events
        self._foreign: set[tuple[Kind, str, str]] = set()  # (kind, namespace, name) found not ours
        self._lock = threading.Lock()

    def execute(self, observed: Observed, action: Action) -> Outcome:
        namespace, wukong = observed.namespace, observed.wukong
        match action:
            case Create():
                return self._create(observed, action)
            case Expand(pvc=pvc, disk=disk, size=size, previous=previous, recovery=recovery):
                patch = {"spec": {"resources": {"requests": {"storage": size}}}}
                patched = self.kube.patch(PVCS, namespace, pvc, patch)
                if recovery:
                    why = f"Lowering disk {disk}'s request from {previous} to {size} after its expansion failed"
                    self.events.normal(wukong, "ExpansionRecovering", f"{why} (PVC {pvc})")
                else:
                    self.events.normal(
                        wukong, "Expanding", f"Expanding disk {disk} from {previous} to {size} (PVC {pvc})"
                    )
                return Outcome(observed.with_child("PersistentVolumeClaim", patched))
            case Release(kind=kind, name=name, disk=disk, patch=patch):
                released = self.kube.patch(RESOURCE_OF_KIND[kind], namespace, name, patch)
                self.events.normal(
                    wukong,
                    "Released",
                    f"Disk {disk} was removed from the spec: kept {kind} {name}, labelled "
                    f"{api.RELEASED_FROM_LABEL}={observed.name}",
                )
                return Outcome(observed.with_released(kind, released))
            case Adopt(kind=kind, name=name, disk=disk, patch=patch):
                adopted = self.kube.patch(RESOURCE_OF_KIND[kind], namespace, name, patch)
                self.events.normal(
                    wukong,
                    "Adopted",
                    f"Took back {kind} {name} for disk {disk}, retained by an earlier {observed.name}",
                )
                return Outcome(observed.with_child(kind, adopted))
            case SetRetention(kind=kind, name=name, delete_with_owner=delete_with_owner, patch=patch):
                changed = self.kube.patch(RESOURCE_OF_KIND[kind], namespace, name, patch)
                what = "is deleted with" if delete_with_owner else "outlives"
                self.events.normal(wukong, "RetentionChanged", f"{kind} {name} now {what} this Wukong")
                return Outcome(observed.with_child(kind, changed))
            case Replace(kind=kind, name=name, disk=disk, uid=uid, resource_version=version, why=why):
                # Foreground: a DataVolume stays (deleting) until CDI's PVC is gone, so nothing new is made early.
                with contextlib.suppress(NotFound):  # already gone: the next pass creates the right one
                    self.kube.delete(RESOURCE_OF_KIND[kind], namespace, name, uid, version, propagation="Foreground")
                self.events.normal(wukong, "Replacing", f"Replacing {kind} {name} of disk {disk}: {why}")
                return Outcome(observed.without_child(kind, name))
            case KeepDataVolume(name=name, patch=patch):
                kept = self.kube.patch(DATA_VOLUMES, namespace, name, patch)
                return Outcome(observed.with_child("DataVolume", kept))
            case TakeSnapshot(disk=disk, object=snapshot):
                name = snapshot["metadata"]["name"]
                try:
                    taken = self.kube.create(VOLUME_SNAPSHOTS, snapshot)
                except AlreadyExists:  # made by an earlier pass, not yet listed: the next pass reads it
                    return Outcome(observed, retry=f"VolumeSnapshot {name} exists")
                pvc = snapshot["spec"]["source"]["persistentVolumeClaimName"]
                self.events.normal(
                    wukong, "Snapshotting", f"Taking VolumeSnapshot {name} of disk {disk} (PVC {pvc}) before it grows"
                )
                return Outcome(observed.with_child("VolumeSnapshot", taken))
            case PruneSnapshot(name=name, disk=disk, uid=uid, resource_version=version):
                with contextlib.suppress(NotFound):
                    self.kube.delete(VOLUME_SNAPSHOTS, namespace, name, uid, version)
                self.events.normal(
                    wukong, "SnapshotPruned", f"Deleted VolumeSnapshot {name} of disk {disk}: beyond keep"
                )
                return Outcome(observed.without_snapshot(name))
            case SetSnapshotRetention(name=name, patch=patch):
                changed = self.kube.patch(VOLUME_SNAPSHOTS, namespace, name, patch)
                return Outcome(observed.with_child("VolumeSnapshot", changed))
            case UpdateVM(patch=patch):
                vm = self.kube.patch(VIRTUAL_MACHINES, namespace, vm_name(observed.name), patch)
                self.events.normal(wukong, "Updated", f"Updated VirtualMachine {vm_name(observed.name)}")
                return Outcome(observed.with_child("VirtualMachine", vm))
            case ApplySecret(secret=secret):
                self._apply_secret(observed, secret)
                return Outcome(observed)
            case UpdateNetwork(name=name, patch=patch):
                nad = self.kube.patch(NETWORK_ATTACHMENT_DEFINITIONS, namespace, name, patch)
                self.events.normal(wukong, "Updated", f"Updated NetworkAttachmentDefinition {name}")
                return Outcome(observed.with_child("NetworkAttachmentDefinition", nad))
            case _:
                assert_never(action)

    def _apply_secret(self, observed: Observed, secret: dict) -> None:
        """Create the cloud-init Secret or bring it to the user-data of now, by server-side apply: never read
        (RBAC gives no get on Secrets). That it is this Wukong's own is the API server's to enforce: the admission
        policy admits a write only to an Opaque Secret named after the Wukong that controls it and labelled as
        ours, before and after."""
        self.kube.apply(SECRETS, secret, force=True)
        if observed.vm is not None:  # a VM already names it: the user-data changed
            name = secret["metadata"]["name"]
            self.events.normal(observed.wukong, "Updated", f"Updated Secret {name} (cloud-init user-data)")

    def release_retained(self, namespace: str, releases: list[Release]) -> None:
        """After the Wukong is gone: no Event (it has nothing left to attach to), a log line per volume."""
        for action in releases:
            self.kube.patch(RESOURCE_OF_KIND[action.kind], namespace, action.name, action.patch)
            log.info(
                "released %s %s/%s (disk %s) of a deleted Wukong", action.kind, namespace, action.name, action.disk
            )

    def _create(self, observed: Observed, action: Create) -> Outcome:
        resource = RESOURCE_OF_KIND[action.kind]
        name = action.object["metadata"]["name"]
        key = (action.kind, observed.namespace, name)
        with self._lock:
            known_foreign = key in self._foreign
        try:
            if known_foreign:
                existing = self.kube.get(resource, observed.namespace, name)
            else:
                created = self.kube.create(resource, action.object)
                return Outcome(observed.with_child(action.kind, created))
        except NotFound:  # the foreign object is gone: the next pass creates ours
            with self._lock:
                self._foreign.discard(key)
            return Outcome(observed, retry=f"{action.kind} {name} went away")
        except AlreadyExists:
            try:
                existing = self.kube.get(resource, observed.namespace, name)
            except NotFound:
                return Outcome(observed, retry=f"{action.kind} {name} was there and vanished")
        if is_owned_by(existing, observed.uid):  # ours, not yet in the cache
            with self._lock:
                self._foreign.discard(key)
            return Outcome(observed.with_child(action.kind, existing))
        with self._lock:
            self._foreign.add(key)
        why = f"{action.kind} {name} exists and is not owned by this Wukong; it is left alone"
        return Outcome(observed.with_conflict(name, why))
