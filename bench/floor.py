"""The floor of the convergence benchmark: an ideal reconciler, played by the benchmark itself.

It knows everything at once and costs nothing to think: it creates each Wukong's children -- a DataVolume or a claim
per disk and the VirtualMachine, built by the product's own functions (reconciler/volumes.py, reconciler/vm.py) --
the moment it creates the Wukong, without waiting for the volumes to bind (KubeVirt waits for them), and writes the
Wukong's status once, ``Running``, as soon as the VM's instance runs. Against the same API server and the same
simulation, no reconciler can converge the same Wukongs sooner: what ours takes beyond it is ours.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kubeclient.informer import Informer
from kubeclient.resources import DATA_VOLUMES, PVCS, VIRTUAL_MACHINE_INSTANCES, VIRTUAL_MACHINES
from kubeclient.rest import Kube
from reconciler.guest import cloud_init_secret
from reconciler.observation import Observed
from reconciler.vm import virtual_machine
from reconciler.volumes import data_volume, persistent_volume_claim
from wukong import api
from wukong.api import WUKONGS
from wukong.naming import vm_name
from wukong.spec import DELETE


class IdealReconciler:
    """``user``: who creates the Wukongs; ``kube``: the reconciler's identity (its ServiceAccount), which alone may
    write volumes labelled for a Wukong (deploy/rbac/ownership-guard.yaml) and which pays the same admission for
    them. ``writers``: threads that write the statuses, so that the writes of many instances running at once are not
    taken one after the other."""

    def __init__(self, user: Kube, kube: Kube, namespace: str, writers: int = 4) -> None:
        self.user, self.kube, self.namespace = user, kube, namespace
        self.instances = Informer(kube, VIRTUAL_MACHINE_INSTANCES, namespace)
        self.instances.on_change(self._instance)
        self._writers = ThreadPoolExecutor(writers, thread_name_prefix="floor-status")
        self._lock = threading.Lock()
        self._generations: dict[str, int] = {}  # Wukong -> the generation its status observes
        self._written: set[str] = set()
        self.writes = 0

    def start(self) -> IdealReconciler:
        self.instances.start()
        if not self.instances.wait_synced(30):
            raise RuntimeError("the floor's cache of VirtualMachineInstances did not sync")
        return self

    def stop(self) -> None:
        self.instances.stop()
        self._writers.shutdown(wait=True)

    def create(self, manifest: dict[str, Any]) -> float:
        """The Wukong and, at once, its children; returns when the Wukong was created (wall clock)."""
        wukong = self.user.create(WUKONGS, manifest)
        created = time.time()
        with self._lock:
            self._generations[wukong["metadata"]["name"]] = int(wukong["metadata"].get("generation") or 1)
        observed = Observed(wukong)
        delete_with_owner = observed.spec.when_deleted == DELETE
        for disk in observed.spec.disks:
            if disk.image:
                self.kube.create(DATA_VOLUMES, data_volume(wukong, disk, delete_with_owner))
            else:
                self.kube.create(PVCS, persistent_volume_claim(wukong, disk, delete_with_owner))
        self.kube.create(VIRTUAL_MACHINES, virtual_machine(observed, cloud_init_secret(observed)))
        with self._lock:
            self.writes += len(observed.spec.disks) + 1
        return created

    def _instance(self, _event: str, obj: dict[str, Any]) -> None:
        status = obj.get("status") or {}
        owner = (obj["metadata"].get("labels") or {}).get(api.WUKONG_LABEL)
        if status.get("phase") != "Running" or owner is None:
            return
        with self._lock:
            if owner in self._written:
                return
            self._written.add(owner)
            generation = self._generations.get(owner, 1)
        self._writers.submit(self._write_running, owner, generation, status.get("nodeName"))

    def _write_running(self, name: str, generation: int, node: str | None) -> None:
        status = {"phase": "Running", "observedGeneration": generation, "vmName": vm_name(name), "nodeName": node}
        self.kube.patch(WUKONGS, self.namespace, name, {"status": status}, subresource="status")
        with self._lock:
            self.writes += 1
