"""A SIMULATED storage and VM backend for devcluster: it plays Longhorn, CDI and KubeVirt.

devcluster has an API server but no controllers, kubelets or storage. This simulation does, through
the same API, what those systems would do, so the reconciler can be exercised end to end:
  - provisioner (Longhorn): binds a Pending PVC to a new PersistentVolume of the requested size
    (WaitForFirstConsumer classes: once a VirtualMachine uses the claim); grows capacity after an
    expansion on classes with allowVolumeExpansion -- and, as the external-resizer writes a CSI driver's refusal,
    refuses one beyond the class parameter ``devcluster.novasphere.dev/max-volume-size`` (allocatedResourceStatuses
    ControllerResizeInfeasible, a ControllerResizeError condition), until the request is lowered within it;
  - CDI: gives a DataVolume its PVC (same name, owned by the DataVolume, created as CDI's own ServiceAccount
    ``cdi/cdi-sa``, as the ownership guard in deploy/rbac/ownership-guard.yaml expects) and moves it to Succeeded
    once the PVC is bound, or to Failed when the source URL contains "simulate-import-failure"; a URL containing
    "simulate-image-pull-failure" is an image that cannot be pulled: the importer restarts forever with the kubelet's
    back-off (restartCount, a Running condition False with CDI's ImagePullFailed and the importer's message); one
    containing "simulate-slow-import" reports progress ("45.20%") for a few seconds; optionally collects a
    Succeeded DataVolume annotated for it, leaving its PVC (CDI's garbage collection);
  - the CSI snapshotter (snapshot-controller + csi-snapshotter sidecar): gives a VolumeSnapshot of a bound claim a
    VolumeSnapshotContent (its class named, or the default one of the claim's driver) and marks both ready to use,
    with ``restoreSize`` and ``creationTime`` as they write them; a VolumeSnapshot with no class to take, or of a
    claim annotated ``devcluster.novasphere.dev/snapshot-fails: <message>``, gets ``status.error`` instead (the
    snapshotter retries such a snapshot, and reports the error until it succeeds); a deleted VolumeSnapshot's
    content goes with it under ``deletionPolicy: Delete``;
  - KubeVirt: marks a VirtualMachine Running once all its volumes are bound, with a running
    VirtualMachineInstance on a simulated node (Stopped, and no instance, when Halted); an instance deleted by
    someone (``virtctl restart``) starts again from the current template; a template change reaches the running
    instance only for hotpluggable volumes (declarative hotplug), anything else sets the VM condition
    RestartRequired until the instance restarts.
It is used only by the tests, the benchmarks and the demo; nothing in deploy/ runs it.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import logging
import re
import threading
import time
from fractions import Fraction
from typing import Any

from devcluster.controlplane import ControlPlane
from kubeclient import timestamps
from kubeclient.credentials import load_api_client
from kubeclient.informer import Informer
from kubeclient.resources import (
    DATA_VOLUMES,
    PVCS,
    PVS,
    STORAGE_CLASSES,
    VIRTUAL_MACHINE_INSTANCES,
    VIRTUAL_MACHINES,
    VOLUME_SNAPSHOT_CLASSES,
    VOLUME_SNAPSHOT_CONTENTS,
    VOLUME_SNAPSHOTS,
    Resource,
)
from kubeclient.rest import AlreadyExists, ApiError, Conflict, Kube, NotFound
from kubeclient.workqueue import ShutDown, WorkQueue
from wukong import api
from wukong.quantity import QuantityError, parse
from wukong.storageclass import StorageClass

log = logging.getLogger("wukong.devcluster.simulation")
SIMULATION = "devcluster-simulation"  # the field manager its writes are recorded under
FAILURE_MARKER = "simulate-import-failure"
SNAPSHOT_FAILS = "devcluster.novasphere.dev/snapshot-fails"  # on a PVC: its snapshots fail with this message
PULL_FAILURE_MARKER = "simulate-image-pull-failure"
SLOW_IMPORT_MARKER = "simulate-slow-import"
SLOW_IMPORT_PROGRESS = ("0.00%", "12.50%", "45.20%", "78.90%")  # each reported for SLOW_IMPORT_STEP seconds
SLOW_IMPORT_STEP = 1.5
RESTART_BACKOFF = (0.25, 4.0)  # the kubelet's crash-loop back-off (10 s doubling to 5 min), scaled down
MAX_VOLUME_SIZE = "devcluster.novasphere.dev/max-volume-size"  # StorageClass parameter: the simulated driver's limit
SIMULATED_NODE = "devcluster-node-1"
_CSI_DRIVER = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
Item = tuple[str, str, str]  # (kind, namespace, name)
CDI_NAMESPACE, CDI_ACCOUNT = "cdi", "cdi-sa"  # where CDI's operator installs it, and the account its controller uses


def cdi_identity() -> list[dict[str, Any]]:
    """CDI's ServiceAccount, with the one right the simulation acts on as CDI: creating a DataVolume's claim."""
    name = "devcluster-simulated-cdi"
    subject = {"kind": "ServiceAccount", "name": CDI_ACCOUNT, "namespace": CDI_NAMESPACE}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": CDI_NAMESPACE}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": CDI_ACCOUNT, "namespace": CDI_NAMESPACE}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": name},
            "rules": [{"apiGroups": [""], "resources": ["persistentvolumeclaims"], "verbs": ["create"]}],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [subject],
        },
    ]


class SimulatedBackend:
    def __init__(
        self,
        kube: Kube,
        delay: float = 0.0,
        expand_delay: float | None = None,
        workers: int = 2,
        namespace: str | None = None,
        collect_data_volumes: bool = False,
        cdi: Kube | None = None,
    ) -> None:
        """``delay``: seconds before each step (provision, import, start); ``expand_delay``: before capacity
        grows; ``namespace``: simulate only there (default: everywhere); ``collect_data_volumes``: play CDI's
        garbage collection with ``dataVolumeTTLSeconds: 0`` (off by default); ``cdi``: a client acting as CDI's
        ServiceAccount, for what CDI creates (``on`` makes one), else ``kube``."""
        self.kube, self.delay, self.workers = kube, delay, workers
        self.cdi = cdi or kube
        self.collect_data_volumes = collect_data_volumes
        self.expand_delay = delay if expand_delay is None else expand_delay
        self._expanding: set[tuple[str, str]] = set()
        self._not_before: dict[tuple[str, str], float] = {}  # DataVolume -> when its importer's next step is due
        self.pvcs = Informer(kube, PVCS, namespace)
        self.data_volumes = Informer(kube, DATA_VOLUMES, namespace)
        self.vms = Informer(kube, VIRTUAL_MACHINES, namespace)
        self.instances = Informer(kube, VIRTUAL_MACHINE_INSTANCES, namespace)
        self.storage_classes = Informer(kube, STORAGE_CLASSES)
        self.snapshots = Informer(kube, VOLUME_SNAPSHOTS, namespace)
        self.snapshot_classes = Informer(kube, VOLUME_SNAPSHOT_CLASSES)
        self.queue: WorkQueue[Item] = WorkQueue()
        self._users: dict[tuple[str, str], set[str]] = {}  # (namespace, claim) -> the VMs using it
        self._used: dict[tuple[str, str], set[str]] = {}  # (namespace, VM) -> the claims it uses
        self._users_lock = threading.Lock()
        self.vms.on_change(self._index_users)  # first: the other handlers read the index
        for informer, kind in ((self.pvcs, "pvc"), (self.data_volumes, "dv"), (self.vms, "vm"), (self.snapshots, "vs")):
            informer.on_change(functools.partial(self._seen, kind))
        self.instances.on_change(self._instance_changed)
        self._threads: list[threading.Thread] = []

    @classmethod
    def on(cls, plane: ControlPlane, **options: Any) -> SimulatedBackend:
        """The simulation on devcluster: as an admin for what no product identity does (binding volumes, running
        VMs), and as CDI's own ServiceAccount for the claims CDI makes, which carry a DataVolume's labels."""
        plane.apply(cdi_identity())
        kubeconfig = plane.service_account_kubeconfig(CDI_NAMESPACE, CDI_ACCOUNT)
        cdi = Kube(load_api_client(str(kubeconfig)), field_manager=SIMULATION)
        return cls(plane.client(SIMULATION), cdi=cdi, **options)

    @property
    def _informers(self) -> tuple[Informer, ...]:
        return (
            self.storage_classes,
            self.snapshot_classes,
            self.pvcs,
            self.data_volumes,
            self.vms,
            self.instances,
            self.snapshots,
        )

    def start(self) -> SimulatedBackend:
        for informer in self._informers:
            informer.start()
        for informer in self._informers:
            informer.wait_synced(30)
        for index in range(self.workers):
            thread = threading.Thread(target=self._work, name=f"simulation-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self.queue.shut_down()
        for informer in self._informers:
            informer.stop()

    def _seen(self, kind: str, event: str, obj: dict[str, Any]) -> None:
        if event == "DELETED":
            if kind == "vs":
                self._snapshot_deleted(obj)
            return
        item = (kind, obj["metadata"]["namespace"], obj["metadata"]["name"])
        self.queue.add_after(item, self.delay)
        if kind == "vm":  # a VM is the first consumer of its WaitForFirstConsumer claims
            for claim in _claims(obj):
                self.queue.add_after(("pvc", item[1], claim), self.delay)
        if kind == "pvc":  # a bound claim may finish an import or let a VM start
            self.queue.add(("dv", item[1], item[2]))
            for vm in self._users_of(item[1], item[2]):
                self.queue.add(("vm", item[1], vm))

    def _index_users(self, event: str, vm: dict[str, Any]) -> None:
        """Which VMs use each claim: a claim's change looks its VMs up here, not through every VM (the
        simulation's cost per change stays flat however many VMs there are)."""
        namespace, name = vm["metadata"]["namespace"], vm["metadata"]["name"]
        claims = set() if event == "DELETED" else set(_claims(vm))
        with self._users_lock:
            for claim in self._used.pop((namespace, name), set()) - claims:
                users = self._users.get((namespace, claim), set())
                users.discard(name)
                if not users:
                    self._users.pop((namespace, claim), None)
            for claim in claims:
                self._users.setdefault((namespace, claim), set()).add(name)
            if claims:
                self._used[(namespace, name)] = claims

    def _users_of(self, namespace: str, claim: str) -> list[str]:
        with self._users_lock:
            return sorted(self._users.get((namespace, claim), ()))

    def _instance_changed(self, event: str, obj: dict[str, Any]) -> None:
        """An instance deleted by someone else (``virtctl restart``, an eviction) is started again from the
        VM's template, unless the VM is Halted."""
        if event == "DELETED":
            self.queue.add_after(("vm", obj["metadata"]["namespace"], obj["metadata"]["name"]), self.delay)

    def _work(self) -> None:
        while True:
            try:
                item = self.queue.get()
            except ShutDown:
                return
            try:
                work = {"pvc": self._claim, "dv": self._data_volume, "vm": self._vm, "vs": self._snapshot}
                work[item[0]](item[1], item[2])
                self.queue.forget(item)
            except (Conflict, AlreadyExists, NotFound):
                self.queue.add_rate_limited(item)
            except ApiError as error:
                log.warning("simulation of %s %s/%s failed: %s", *item, error)
                self.queue.add_rate_limited(item)
            finally:
                self.queue.done(item)

    def _class(self, name: str | None) -> StorageClass | None:
        for obj in self.storage_classes.items():
            if obj["metadata"]["name"] == name:
                return StorageClass.from_manifest(obj)
        return None

    # -- Longhorn ----------------------------------------------------------------------------------------
    def _claim(self, namespace: str, name: str) -> None:
        pvc = self.pvcs.get(namespace, name)
        if pvc is None:
            return
        storage_class = self._class(pvc["spec"].get("storageClassName"))
        if storage_class is None:
            return  # no provisioner for it: stays Pending, as on a real cluster
        requested = pvc["spec"]["resources"]["requests"]["storage"]
        status = pvc.get("status") or {}
        if status.get("phase") != "Bound":
            if storage_class.waits_for_first_consumer and not self._consumed(namespace, name):
                return
            self._bind(pvc, storage_class, requested)
        elif storage_class.allow_volume_expansion and (status.get("capacity") or {}).get("storage") != requested:
            if _refused(status, requested):
                return  # refused as it stands: the external-resizer waits for a new request
            if (namespace, name) not in self._expanding and self.expand_delay > 0:
                self._expanding.add((namespace, name))  # the resize takes a while, as on real storage
                self.queue.add_after(("pvc", namespace, name), self.expand_delay)
                return
            self._expanding.discard((namespace, name))
            volume = pvc["spec"].get("volumeName")
            limit = self._parameters(storage_class.name).get(MAX_VOLUME_SIZE)
            if limit and _quantity(requested) > _quantity(limit):
                self._refuse_resize(pvc, storage_class, requested, limit)
                return
            if volume:
                self.kube.patch(PVS, None, volume, {"spec": {"capacity": {"storage": requested}}})
            done: dict[str, Any] = {"capacity": {"storage": requested}}
            if status.get("allocatedResourceStatuses"):  # a refused resize that now fits: the error is over
                done.update(allocatedResources=None, allocatedResourceStatuses=None, conditions=[])
            self._status(PVCS, namespace, name, done)

    def _refuse_resize(self, pvc: dict[str, Any], storage_class: StorageClass, requested: str, limit: str) -> None:
        """What the external-resizer writes when the CSI driver answers ControllerExpandVolume with a final error
        (OUT_OF_RANGE): the resize is infeasible until the request changes (Kubernetes' recovery from expansion
        failure lets it be lowered, above status.capacity)."""
        metadata = pvc["metadata"]
        volume = pvc["spec"].get("volumeName") or f"pvc-{metadata['uid']}"
        message = (
            f'resize volume "{volume}" by resizer "{storage_class.provisioner}" failed: rpc error: code = OutOfRange '
            f"desc = requested size {requested} exceeds the {limit} the simulated driver can allocate"
        )
        condition = {
            "type": "ControllerResizeError",
            "status": "True",
            "lastTransitionTime": timestamps.now(),
            "message": message,
        }
        status = {
            "allocatedResources": {"storage": requested},
            "allocatedResourceStatuses": {"storage": "ControllerResizeInfeasible"},
            "conditions": [condition],
        }
        self._status(PVCS, metadata["namespace"], metadata["name"], status)

    def _parameters(self, class_name: str) -> dict[str, str]:
        for obj in self.storage_classes.items():
            if obj["metadata"]["name"] == class_name:
                return dict(obj.get("parameters") or {})
        return {}

    def _consumed(self, namespace: str, claim: str) -> bool:
        return bool(self._users_of(namespace, claim))

    def _bind(self, pvc: dict[str, Any], storage_class: StorageClass, requested: str) -> None:
        metadata = pvc["metadata"]
        volume = pvc["spec"].get("volumeName") or f"pvc-{metadata['uid']}"
        with contextlib.suppress(AlreadyExists):
            self.kube.create(
                PVS,
                {
                    "apiVersion": "v1",
                    "kind": "PersistentVolume",
                    "metadata": {"name": volume, "labels": {"devcluster.novasphere.dev/simulated": "true"}},
                    "spec": {
                        "capacity": {"storage": requested},
                        "accessModes": pvc["spec"].get("accessModes") or ["ReadWriteOnce"],
                        "persistentVolumeReclaimPolicy": "Delete",
                        "storageClassName": storage_class.name,
                        "claimRef": {
                            "apiVersion": "v1",
                            "kind": "PersistentVolumeClaim",
                            "namespace": metadata["namespace"],
                            "name": metadata["name"],
                            "uid": metadata["uid"],
                        },
                        **_volume_source(storage_class, volume),
                    },
                },
            )
        self._status(PVS, None, volume, {"phase": "Bound"})
        if not pvc["spec"].get("volumeName"):
            self.kube.patch(PVCS, metadata["namespace"], metadata["name"], {"spec": {"volumeName": volume}})
        self._status(
            PVCS,
            metadata["namespace"],
            metadata["name"],
            {
                "phase": "Bound",
                "capacity": {"storage": requested},
                "accessModes": pvc["spec"].get("accessModes") or ["ReadWriteOnce"],
            },
        )

    # -- CDI ---------------------------------------------------------------------------------------------
    def _data_volume(self, namespace: str, name: str) -> None:
        dv = self.data_volumes.get(namespace, name)
        if dv is None:
            return
        status = dv.get("status") or {}
        if status.get("phase") == "Succeeded" and self.collect_data_volumes:
            self._garbage_collect(dv)
        if status.get("phase") in ("Succeeded", "Failed"):
            return
        source = dv["spec"].get("source") or {}
        url = next((s.get("url", "") for s in source.values() if isinstance(s, dict)), "")
        if FAILURE_MARKER in url:
            self._status(
                DATA_VOLUMES,
                namespace,
                name,
                {
                    "phase": "Failed",
                    "progress": "N/A",
                    "claimName": name,
                    "conditions": [
                        {
                            "type": "Running",
                            "status": "False",
                            "reason": "Error",
                            "message": f"Unable to process data: simulated import failure for {url}",
                        }
                    ],
                },
            )
            return
        pvc = self.pvcs.get(namespace, name)
        if pvc is None:
            self._create_claim(dv)
            self._status(
                DATA_VOLUMES, namespace, name, {"phase": "ImportScheduled", "progress": "N/A", "claimName": name}
            )
            return
        bound = (pvc.get("status") or {}).get("phase") == "Bound"
        if bound and (PULL_FAILURE_MARKER in url or SLOW_IMPORT_MARKER in url):
            wait = self._not_before.get((namespace, name), 0.0) - time.monotonic()
            if wait > 0:  # the step is not due yet (a status write of ours woke this up)
                self.queue.add_after(("dv", namespace, name), wait)
                return
            if PULL_FAILURE_MARKER in url:
                self._importer_fails(dv, url)
                return
            if self._import_progresses(dv):
                return
            self._not_before.pop((namespace, name), None)
        if bound:
            # CDI's import controller records the importer pod's end on the claim before the DataVolume succeeds.
            if (pvc["metadata"].get("annotations") or {}).get(api.CDI_POD_PHASE) != "Succeeded":
                self.kube.patch(PVCS, namespace, name, {"metadata": {"annotations": {api.CDI_POD_PHASE: "Succeeded"}}})
            self._status(DATA_VOLUMES, namespace, name, {"phase": "Succeeded", "progress": "100.0%", "claimName": name})
        elif (storage_class := self._class(pvc["spec"].get("storageClassName"))) and (
            storage_class.waits_for_first_consumer
        ):
            self._status(
                DATA_VOLUMES, namespace, name, {"phase": "WaitForFirstConsumer", "progress": "N/A", "claimName": name}
            )

    def _importer_fails(self, dv: dict[str, Any], url: str) -> None:
        """An importer that cannot pull its image, as CDI reports it: the pod exits with "Unable to process data:
        failed to pull image: ..." (importer.go), CDI's import controller reads that termination message into the
        claim's running-condition annotations (reason ImagePullFailed, util.go) and the pod's restarts into
        restartCount; the phase stays ImportInProgress, since only a checksum mismatch is fatal. The kubelet
        restarts it after a back-off that doubles."""
        metadata = dv["metadata"]
        namespace, name = metadata["namespace"], metadata["name"]
        restarts = int((dv.get("status") or {}).get("restartCount") or 0) + 1
        message = (
            f"Unable to process data: failed to pull image: initializing source {url}: reading manifest: "
            f"manifest unknown"
        )
        conditions = [
            {"type": "Bound", "status": "True", "reason": "Bound", "message": f"PVC {name} Bound"},
            {"type": "Ready", "status": "False", "reason": "TransferRunning", "message": ""},
            {"type": "Running", "status": "False", "reason": "ImagePullFailed", "message": message},
        ]
        status = {
            "phase": "ImportInProgress",
            "progress": "N/A",
            "claimName": name,
            "restartCount": restarts,
            "conditions": conditions,
        }
        self._status(DATA_VOLUMES, namespace, name, status)
        backoff = min(RESTART_BACKOFF[0] * 2 ** (restarts - 1), RESTART_BACKOFF[1])
        self._not_before[(namespace, name)] = time.monotonic() + backoff
        self.queue.add_after(("dv", namespace, name), backoff)

    def _import_progresses(self, dv: dict[str, Any]) -> bool:
        """A slow import: CDI polls the importer's progress metric every 2 s and writes it as ``"%.2f%%"``.
        False once the last step was shown: the import then succeeds."""
        metadata = dv["metadata"]
        namespace, name = metadata["namespace"], metadata["name"]
        shown = (dv.get("status") or {}).get("progress")
        steps = list(SLOW_IMPORT_PROGRESS)
        following = steps[steps.index(shown) + 1] if shown in steps[:-1] else None if shown in steps else steps[0]
        if following is None:
            return False
        running = {"type": "Running", "status": "True", "reason": "Pod is running", "message": ""}
        status = {"phase": "ImportInProgress", "progress": following, "claimName": name, "conditions": [running]}
        self._status(DATA_VOLUMES, namespace, name, status)
        self._not_before[(namespace, name)] = time.monotonic() + SLOW_IMPORT_STEP
        self.queue.add_after(("dv", namespace, name), SLOW_IMPORT_STEP)
        return True

    def _garbage_collect(self, dv: dict[str, Any]) -> None:
        """CDI's garbage collection of a finished DataVolume (``garbageCollect``/``detachPvcDeleteDv`` in CDI's
        datavolume controller, with ``dataVolumeTTLSeconds: 0``): only a DataVolume annotated
        ``deleteAfterCompletion: "true"`` (CDI's webhook writes "true" at creation unless it says "false"); its PVC
        loses the DataVolume's ownerReference, takes the DataVolume's own ones, and drops ``populatedFor``; then
        the DataVolume is deleted and the PVC, with the data, stays."""
        metadata = dv["metadata"]
        if (metadata.get("annotations") or {}).get(api.CDI_DELETE_AFTER_COMPLETION) != "true":
            return
        pvc = self.pvcs.get(metadata["namespace"], metadata["name"])
        if pvc is None:
            return
        references = [r for r in pvc["metadata"].get("ownerReferences") or [] if r.get("uid") != metadata["uid"]]
        uids = {r.get("uid") for r in references}
        references += [r for r in metadata.get("ownerReferences") or [] if r.get("uid") not in uids]
        patch = {
            "metadata": {
                "resourceVersion": pvc["metadata"]["resourceVersion"],
                "ownerReferences": references or None,
                "annotations": {api.CDI_POPULATED_FOR: None},
            }
        }
        self.kube.patch(PVCS, metadata["namespace"], metadata["name"], patch)
        self.kube.delete(DATA_VOLUMES, metadata["namespace"], metadata["name"], metadata["uid"])

    def _create_claim(self, dv: dict[str, Any]) -> None:
        """CDI's PVC for a DataVolume, from either form CDI accepts: ``spec.storage`` (CDI fills access and volume
        modes from the StorageProfile) or ``spec.pvc`` (a PVC spec, taken as written)."""
        metadata = dv["metadata"]
        storage = dv["spec"].get("storage") or dv["spec"].get("pvc") or {}
        spec: dict[str, Any] = {
            "accessModes": storage.get("accessModes") or ["ReadWriteOnce"],
            "resources": {"requests": dict(storage["resources"]["requests"])},
        }
        for key in ("storageClassName", "volumeMode"):
            if storage.get(key):
                spec[key] = storage[key]
        with contextlib.suppress(AlreadyExists):
            self.cdi.create(
                PVCS,
                {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "metadata": {
                        "name": metadata["name"],
                        "namespace": metadata["namespace"],
                        "labels": dict(metadata.get("labels") or {}),
                        "annotations": dict(metadata.get("annotations") or {}),  # CDI copies both
                        "ownerReferences": [
                            {
                                "apiVersion": "cdi.kubevirt.io/v1beta1",
                                "kind": "DataVolume",
                                "name": metadata["name"],
                                "uid": metadata["uid"],
                                "controller": True,
                                "blockOwnerDeletion": True,
                            }
                        ],
                    },
                    "spec": spec,
                },
            )

    # -- the CSI snapshotter -----------------------------------------------------------------------------
    def _snapshot(self, namespace: str, name: str) -> None:
        """As the snapshot-controller and the csi-snapshotter sidecar do for a dynamically provisioned snapshot:
        the class (named, or the driver's default), a VolumeSnapshotContent ``snapcontent-<uid>`` bound to the
        VolumeSnapshot, the CSI snapshot taken, and both marked ready with the size to restore."""
        snapshot = self.snapshots.get(namespace, name)
        if snapshot is None or snapshot["metadata"].get("deletionTimestamp"):
            return
        status = snapshot.get("status") or {}
        if status.get("readyToUse") is True or status.get("error"):
            return
        claim = (snapshot["spec"].get("source") or {}).get("persistentVolumeClaimName")
        pvc = self.pvcs.get(namespace, claim) if claim else None
        if pvc is None or (pvc.get("status") or {}).get("phase") != "Bound":
            return  # the snapshotter waits for its source; a claim's event brings it back
        storage_class = self._class(pvc["spec"].get("storageClassName"))
        driver = storage_class.provisioner if storage_class else ""
        snapshot_class = self._snapshot_class(snapshot["spec"].get("volumeSnapshotClassName"), driver)
        if snapshot_class is None:
            self._snapshot_error(
                snapshot,
                "Failed to set default snapshot class with error cannot find default snapshot class for driver "
                + driver,
            )
            return
        if failing := (pvc["metadata"].get("annotations") or {}).get(SNAPSHOT_FAILS):
            handle = pvc["spec"].get("volumeName") or ""
            self._snapshot_error(
                snapshot,
                f"Failed to check and update snapshot content: failed to take snapshot of the volume {handle}: "
                f'"rpc error: code = Internal desc = {failing}"',
            )
            return
        uid = snapshot["metadata"]["uid"]
        content_name = f"snapcontent-{uid}"
        size = (pvc.get("status") or {}).get("capacity", {}).get("storage") or pvc["spec"]["resources"]["requests"][
            "storage"
        ]
        now = datetime.datetime.now(datetime.UTC)
        with contextlib.suppress(AlreadyExists):
            self.kube.create(
                VOLUME_SNAPSHOT_CONTENTS,
                {
                    "apiVersion": "snapshot.storage.k8s.io/v1",
                    "kind": "VolumeSnapshotContent",
                    "metadata": {"name": content_name},
                    "spec": {
                        "deletionPolicy": snapshot_class.get("deletionPolicy", "Delete"),
                        "driver": driver,
                        "source": {"volumeHandle": pvc["spec"].get("volumeName") or ""},
                        "sourceVolumeMode": pvc["spec"].get("volumeMode") or "Filesystem",
                        "volumeSnapshotClassName": snapshot_class["metadata"]["name"],
                        "volumeSnapshotRef": {
                            "apiVersion": "snapshot.storage.k8s.io/v1",
                            "kind": "VolumeSnapshot",
                            "name": name,
                            "namespace": namespace,
                            "uid": uid,
                        },
                    },
                },
            )
        content_status = {
            "creationTime": int(now.timestamp() * 1e9),  # the sidecar writes nanoseconds since the epoch
            "readyToUse": True,
            "restoreSize": _bytes(size),
            "snapshotHandle": f"snap-{uid}",
        }
        self._status(VOLUME_SNAPSHOT_CONTENTS, None, content_name, content_status)
        self._status(
            VOLUME_SNAPSHOTS,
            namespace,
            name,
            {
                "boundVolumeSnapshotContentName": content_name,
                "creationTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "readyToUse": True,
                "restoreSize": size,
            },
        )

    def _snapshot_class(self, name: str | None, driver: str) -> dict[str, Any] | None:
        classes = self.snapshot_classes.items()
        if name:
            return next((c for c in classes if c["metadata"]["name"] == name), None)
        defaults = [
            c
            for c in classes
            if c.get("driver") == driver
            and (c["metadata"].get("annotations") or {}).get(api.DEFAULT_SNAPSHOT_CLASS_ANNOTATION) == "true"
        ]
        return defaults[0] if len(defaults) == 1 else None

    def _snapshot_error(self, snapshot: dict[str, Any], message: str) -> None:
        now = timestamps.now()
        metadata = snapshot["metadata"]
        self._status(
            VOLUME_SNAPSHOTS,
            metadata["namespace"],
            metadata["name"],
            {"readyToUse": False, "error": {"message": message, "time": now}},
        )

    def _snapshot_deleted(self, snapshot: dict[str, Any]) -> None:
        content = (snapshot.get("status") or {}).get("boundVolumeSnapshotContentName")
        if not content:
            return
        with contextlib.suppress(NotFound, ApiError):
            found = self.kube.get(VOLUME_SNAPSHOT_CONTENTS, None, content)
            if found["spec"].get("deletionPolicy") == "Delete":
                self.kube.delete(VOLUME_SNAPSHOT_CONTENTS, None, content, found["metadata"]["uid"])

    # -- KubeVirt ----------------------------------------------------------------------------------------
    def _vm(self, namespace: str, name: str) -> None:
        vm = self.vms.get(namespace, name)
        if vm is None:
            return
        instance = self.instances.get(namespace, name)
        restart = False
        if vm["spec"].get("runStrategy") == "Halted":
            wanted: dict[str, Any] = {"created": False, "ready": False, "printableStatus": "Stopped"}
            self._stop(instance)
        elif instance is not None:
            wanted = {"created": True, "ready": True, "printableStatus": "Running"}
            self._hotplug(vm, instance)
            restart = _cold(vm["spec"]["template"]["spec"]) != _cold(instance["spec"])
        elif all(self._claim_bound(namespace, claim) for claim in _claims(vm)):
            wanted = {"created": True, "ready": True, "printableStatus": "Running"}
            self._start(vm)
        else:
            wanted = {"created": False, "ready": False, "printableStatus": "WaitingForVolumeBinding"}
        current = vm.get("status") or {}
        was_required = any(c.get("type") == RESTART_REQUIRED for c in current.get("conditions") or [])
        if {k: current.get(k) for k in wanted} != wanted or was_required != restart:
            conditions = [_restart_required()] if restart else []
            self._status(VIRTUAL_MACHINES, namespace, name, {**wanted, "conditions": conditions})

    def _stop(self, instance: dict[str, Any] | None) -> None:
        if instance is not None:
            with contextlib.suppress(NotFound):
                metadata = instance["metadata"]
                self.kube.delete(VIRTUAL_MACHINE_INSTANCES, metadata["namespace"], metadata["name"])

    def _start(self, vm: dict[str, Any]) -> None:
        """KubeVirt runs a VM as a VirtualMachineInstance of the same name, from the template as it is now."""
        metadata = vm["metadata"]
        namespace, name = metadata["namespace"], metadata["name"]
        template = vm["spec"]["template"]
        with contextlib.suppress(AlreadyExists):
            self.kube.create(
                VIRTUAL_MACHINE_INSTANCES,
                {
                    "apiVersion": "kubevirt.io/v1",
                    "kind": "VirtualMachineInstance",
                    "metadata": {
                        "name": name,
                        "namespace": namespace,
                        "labels": dict((template.get("metadata") or {}).get("labels") or {}),
                        "annotations": dict((template.get("metadata") or {}).get("annotations") or {}),
                        "ownerReferences": [
                            {
                                "apiVersion": "kubevirt.io/v1",
                                "kind": "VirtualMachine",
                                "name": name,
                                "uid": metadata["uid"],
                                "controller": True,
                                "blockOwnerDeletion": True,
                            }
                        ],
                    },
                    "spec": template["spec"],
                },
            )
            status = {"phase": "Running", "nodeName": SIMULATED_NODE, "volumeStatus": _volume_status(template["spec"])}
            self._status(VIRTUAL_MACHINE_INSTANCES, namespace, name, status)

    def _hotplug(self, vm: dict[str, Any], instance: dict[str, Any]) -> None:
        """Declarative volume hotplug: hotpluggable volumes in the template whose claims are bound are attached
        to the running instance, and the instance's hotplugged volumes that left the template are detached.
        Everything else in the template waits for a restart."""
        template, running = vm["spec"]["template"]["spec"], instance["spec"]
        namespace = vm["metadata"]["namespace"]
        wanted = {v["name"]: v for v in template.get("volumes") or [] if _hotpluggable(v)}
        attached = {v["name"]: v for v in running.get("volumes") or [] if _hotpluggable(v)}
        ready = {n for n, v in wanted.items() if self._claim_bound(namespace, _claim_of(v))}
        plug = [n for n in wanted if n not in attached and n in ready]
        unplug = [n for n in attached if n not in wanted]
        if not plug and not unplug:
            return
        disks_of = {d["name"]: d for d in (template.get("domain") or {}).get("devices", {}).get("disks") or []}
        volumes = [v for v in running.get("volumes") or [] if v["name"] not in unplug] + [wanted[n] for n in plug]
        disks = [d for d in running["domain"]["devices"].get("disks") or [] if d["name"] not in unplug]
        disks += [disks_of[n] for n in plug if n in disks_of]
        spec = {"volumes": volumes, "domain": {"devices": {"disks": disks}}}
        metadata = instance["metadata"]
        self.kube.patch(VIRTUAL_MACHINE_INSTANCES, namespace, metadata["name"], {"spec": spec})
        status = {"volumeStatus": _volume_status({"volumes": volumes})}
        self._status(VIRTUAL_MACHINE_INSTANCES, namespace, metadata["name"], status)

    def _claim_bound(self, namespace: str, claim: str) -> bool:
        pvc = self.pvcs.get(namespace, claim)
        return pvc is not None and (pvc.get("status") or {}).get("phase") == "Bound"

    def _status(self, resource: Resource, namespace: str | None, name: str, status: dict[str, Any]) -> None:
        self.kube.patch(resource, namespace, name, {"status": status}, subresource="status")


def _bytes(size: str) -> int:
    try:
        return int(parse(size).value)
    except QuantityError:
        return 0


def _volume_source(storage_class: StorageClass, volume: str) -> dict[str, Any]:
    """A CSI volume for CSI drivers (Longhorn); a hostPath, as rancher.io/local-path makes, for the others."""
    if _CSI_DRIVER.fullmatch(storage_class.provisioner):
        return {"csi": {"driver": storage_class.provisioner, "volumeHandle": volume}}
    return {"hostPath": {"path": f"/var/lib/simulated-volumes/{volume}", "type": "DirectoryOrCreate"}}


RESTART_REQUIRED = "RestartRequired"


def _quantity(size: str) -> Fraction:
    return parse(size).value


def _refused(status: dict[str, Any], requested: str) -> bool:
    allocated = (status.get("allocatedResources") or {}).get("storage")
    state = (status.get("allocatedResourceStatuses") or {}).get("storage")
    return (
        state == "ControllerResizeInfeasible" and allocated is not None and _quantity(allocated) == _quantity(requested)
    )


def _restart_required() -> dict[str, Any]:
    return {
        "type": RESTART_REQUIRED,
        "status": "True",
        "lastTransitionTime": timestamps.now(),
        "message": "a non-live-updatable field was changed in the template spec",
    }


def _hotpluggable(volume: dict[str, Any]) -> bool:
    source = volume.get("dataVolume") or volume.get("persistentVolumeClaim") or {}
    return bool(source.get("hotpluggable"))


def _claim_of(volume: dict[str, Any]) -> str:
    if "dataVolume" in volume:
        return str(volume["dataVolume"]["name"])
    return str(volume["persistentVolumeClaim"]["claimName"])


def _cold(spec: dict[str, Any]) -> dict[str, Any]:
    """A VM spec without its hotpluggable volumes and their disks: what only a restart can change."""
    hot = {v["name"] for v in spec.get("volumes") or [] if _hotpluggable(v)}
    domain = dict(spec.get("domain") or {})
    devices = dict(domain.get("devices") or {})
    devices["disks"] = [d for d in devices.get("disks") or [] if d.get("name") not in hot]
    domain["devices"] = devices
    return {**spec, "domain": domain, "volumes": [v for v in spec.get("volumes") or [] if v["name"] not in hot]}


def _volume_status(spec: dict[str, Any]) -> list[dict[str, Any]]:
    entries = []
    for index, volume in enumerate(spec.get("volumes") or []):
        entry: dict[str, Any] = {"name": volume["name"], "target": f"sd{chr(ord('a') + index)}", "phase": "Ready"}
        if _hotpluggable(volume):
            entry["hotplugVolume"] = {"attachPodName": f"hp-volume-{volume['name']}"}
        entries.append(entry)
    return entries


def _claims(vm: dict[str, Any]) -> list[str]:
    volumes = (((vm.get("spec") or {}).get("template") or {}).get("spec") or {}).get("volumes") or []
    names = []
    for volume in volumes:
        if "persistentVolumeClaim" in volume:
            names.append(volume["persistentVolumeClaim"]["claimName"])
        elif "dataVolume" in volume:
            names.append(volume["dataVolume"]["name"])
    return names
