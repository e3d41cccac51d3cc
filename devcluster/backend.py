"""A SIMULATED storage and VM backend for devcluster: it plays Longhorn, CDI and KubeVirt.

devcluster has an API server but no controllers, kubelets or storage. This simulation does, through
the same API, what those systems would do, so the reconciler can be exercised end to end:
  - provisioner (Longhorn): binds a Pending PVC to a new PersistentVolume of the requested size
    (WaitForFirstConsumer classes: once a VirtualMachine uses the claim); grows capacity after an
    expansion on classes with allowVolumeExpansion;
  - CDI: gives a DataVolume its PVC (same name, owned by the DataVolume) and moves it to Succeeded once the
    PVC is bound, or to Failed when the source URL contains "simulate-import-failure"; optionally collects a
    Succeeded DataVolume annotated for it, leaving its PVC (CDI's garbage collection);
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
from typing import Any

from kubeclient.informer import Informer
from kubeclient.resources import (
    DATA_VOLUMES,
    PVCS,
    PVS,
    STORAGE_CLASSES,
    VIRTUAL_MACHINE_INSTANCES,
    VIRTUAL_MACHINES,
    Resource,
)
from kubeclient.rest import AlreadyExists, ApiError, Conflict, Kube, NotFound
from kubeclient.workqueue import ShutDown, WorkQueue
from wukong import api
from wukong.storageclass import StorageClass

log = logging.getLogger("wukong.devcluster.simulation")
SIMULATION = "devcluster-simulation"  # the field manager its writes are recorded under
FAILURE_MARKER = "simulate-import-failure"
SIMULATED_NODE = "devcluster-node-1"
_CSI_DRIVER = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
Item = tuple[str, str, str]  # (kind, namespace, name)


class SimulatedBackend:
    def __init__(
        self,
        kube: Kube,
        delay: float = 0.0,
        expand_delay: float | None = None,
        workers: int = 2,
        namespace: str | None = None,
        collect_data_volumes: bool = False,
    ) -> None:
        """``delay``: seconds before each step (provision, import, start); ``expand_delay``: before capacity
        grows; ``namespace``: simulate only there (default: everywhere); ``collect_data_volumes``: play CDI's
        garbage collection with ``dataVolumeTTLSeconds: 0`` (off by default)."""
        self.kube, self.delay, self.workers = kube, delay, workers
        self.collect_data_volumes = collect_data_volumes
        self.expand_delay = delay if expand_delay is None else expand_delay
        self._expanding: set[tuple[str, str]] = set()
        self.pvcs = Informer(kube, PVCS, namespace)
        self.data_volumes = Informer(kube, DATA_VOLUMES, namespace)
        self.vms = Informer(kube, VIRTUAL_MACHINES, namespace)
        self.instances = Informer(kube, VIRTUAL_MACHINE_INSTANCES, namespace)
        self.storage_classes = Informer(kube, STORAGE_CLASSES)
        self.queue: WorkQueue[Item] = WorkQueue()
        for informer, kind in ((self.pvcs, "pvc"), (self.data_volumes, "dv"), (self.vms, "vm")):
            informer.on_change(functools.partial(self._seen, kind))
        self.instances.on_change(self._instance_changed)
        self._threads: list[threading.Thread] = []

    def start(self) -> SimulatedBackend:
        for informer in (self.storage_classes, self.pvcs, self.data_volumes, self.vms, self.instances):
            informer.start()
        for informer in (self.storage_classes, self.pvcs, self.data_volumes, self.vms, self.instances):
            informer.wait_synced(30)
        for index in range(self.workers):
            thread = threading.Thread(target=self._work, name=f"simulation-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self.queue.shut_down()
        for informer in (self.storage_classes, self.pvcs, self.data_volumes, self.vms, self.instances):
            informer.stop()

    def _seen(self, kind: str, event: str, obj: dict[str, Any]) -> None:
        if event == "DELETED":
            return
        item = (kind, obj["metadata"]["namespace"], obj["metadata"]["name"])
        self.queue.add_after(item, self.delay)
        if kind == "vm":  # a VM is the first consumer of its WaitForFirstConsumer claims
            for claim in _claims(obj):
                self.queue.add_after(("pvc", item[1], claim), self.delay)
        if kind == "pvc":  # a bound claim may finish an import or let a VM start
            self.queue.add(("dv", item[1], item[2]))
            for vm in self.vms.items():
                if vm["metadata"]["namespace"] == item[1] and item[2] in _claims(vm):
                    self.queue.add(("vm", item[1], vm["metadata"]["name"]))

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
                {"pvc": self._claim, "dv": self._data_volume, "vm": self._vm}[item[0]](item[1], item[2])
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
            if (namespace, name) not in self._expanding and self.expand_delay > 0:
                self._expanding.add((namespace, name))  # the resize takes a while, as on real storage
                self.queue.add_after(("pvc", namespace, name), self.expand_delay)
                return
            self._expanding.discard((namespace, name))
            volume = pvc["spec"].get("volumeName")
            if volume:
                self.kube.patch(PVS, None, volume, {"spec": {"capacity": {"storage": requested}}})
            self._status(PVCS, namespace, name, {"capacity": {"storage": requested}})

    def _consumed(self, namespace: str, claim: str) -> bool:
        return any(vm["metadata"]["namespace"] == namespace and claim in _claims(vm) for vm in self.vms.items())

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
        if (pvc.get("status") or {}).get("phase") == "Bound":
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
            self.kube.create(
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


def _volume_source(storage_class: StorageClass, volume: str) -> dict[str, Any]:
    """A CSI volume for CSI drivers (Longhorn); a hostPath, as rancher.io/local-path makes, for the others."""
    if _CSI_DRIVER.fullmatch(storage_class.provisioner):
        return {"csi": {"driver": storage_class.provisioner, "volumeHandle": volume}}
    return {"hostPath": {"path": f"/var/lib/simulated-volumes/{volume}", "type": "DirectoryOrCreate"}}


RESTART_REQUIRED = "RestartRequired"


def _restart_required() -> dict[str, Any]:
    return {
        "type": RESTART_REQUIRED,
        "status": "True",
        "lastTransitionTime": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
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
