"""Day two on a real garbage collector: deleting and re-creating, stopping through KubeVirt, other DataVolume forms."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml

from kubeclient.resources import DATA_VOLUMES, PVCS, VIRTUAL_MACHINES
from kubeclient.rest import Kube, NotFound
from tests.e2e.conftest import SAMPLES
from tests.e2e.test_reconciler import apply, resyncs_passed, wait_for_wukong, wait_running
from tests.waiting import wait_for_object, watch_quietly
from wukong.api import WUKONGS

pytestmark = pytest.mark.usefixtures("reconciler")
NAME = "system-and-data"
VOLUMES = ((DATA_VOLUMES, f"{NAME}-system"), (PVCS, f"{NAME}-system"), (PVCS, f"{NAME}-data"))


def sample() -> dict[str, Any]:
    return yaml.safe_load((SAMPLES / "system-and-data.yaml").read_text())


def uids(admin: Kube, namespace: str) -> dict[str, str]:
    return {f"{r.kind}/{n}": admin.get(r, namespace, n)["metadata"]["uid"] for r, n in VOLUMES}


def released(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    labels = (obj or {}).get("metadata", {}).get("labels") or {}
    return obj if labels.get("vm.novasphere.dev/released-from") == NAME else None


@pytest.mark.parametrize("cascade", ["background", "foreground"])
def test_deleting_a_wukong_keeps_its_volumes_and_a_new_one_of_the_name_takes_them_back(
    cluster, admin, namespace, cascade
):
    apply(cluster, namespace, sample())
    wait_running(admin, namespace, NAME)
    before = uids(admin, namespace)
    cluster.kubectl("delete", "wukong", NAME, "-n", namespace, f"--cascade={cascade}", "--timeout=60s")
    wait_for_object(admin, VIRTUAL_MACHINES, namespace, f"{NAME}-vm", lambda vm: vm is None, "the VM deleted by the GC")
    for resource, name in ((DATA_VOLUMES, f"{NAME}-system"), (PVCS, f"{NAME}-data")):
        kept = wait_for_object(admin, resource, namespace, name, released, f"{name} released")
        assert not kept["metadata"].get("ownerReferences")
        assert "vm.novasphere.dev/wukong" not in kept["metadata"]["labels"]
    assert uids(admin, namespace) == before

    again = sample()
    again["spec"]["disks"][1]["size"] = "1Ti"  # growing while re-creating
    apply(cluster, namespace, again)
    wait_running(admin, namespace, NAME)
    assert uids(admin, namespace) == before, "the retained volumes were taken back, not replaced"
    new_uid = admin.get(WUKONGS, namespace, NAME)["metadata"]["uid"]
    for resource, name in ((DATA_VOLUMES, f"{NAME}-system"), (PVCS, f"{NAME}-data")):
        adopted = admin.get(resource, namespace, name)
        assert adopted["metadata"]["annotations"]["vm.novasphere.dev/wukong-uid"] == new_uid
        assert "vm.novasphere.dev/released-from" not in adopted["metadata"]["labels"]
    wait_for_object(
        admin,
        PVCS,
        namespace,
        f"{NAME}-data",
        lambda pvc: pvc and pvc["spec"]["resources"]["requests"]["storage"] == "1Ti",
        "the adopted data PVC expanded to 1Ti",
    )
    pvcs, _ = admin.list(PVCS, namespace)
    assert sorted(p["metadata"]["name"] for p in pvcs) == [f"{NAME}-data", f"{NAME}-system"]


def test_a_retained_volume_that_does_not_fit_the_new_disk_is_a_name_conflict(cluster, admin, namespace):
    apply(cluster, namespace, sample())
    wait_running(admin, namespace, NAME)
    cluster.kubectl("delete", "wukong", NAME, "-n", namespace)
    wait_for_object(admin, PVCS, namespace, f"{NAME}-data", released, "the data PVC released")
    other = sample()
    other["spec"]["disks"][1]["storageClassName"] = "longhorn-ssd"
    apply(cluster, namespace, other)
    degraded = wait_for_wukong(
        admin,
        namespace,
        NAME,
        lambda s: next(
            (c for c in s.get("conditions") or [] if c["type"] == "Degraded" and c["status"] == "True"), None
        ),
        "Degraded",
    )
    assert degraded["reason"] == "NameConflict"
    assert (
        "retained from an earlier Wukong system-and-data but its StorageClass is longhorn, not longhorn-ssd"
        in (degraded["message"])
    )


def test_deleting_a_namespace_with_wukongs_in_it_finishes(cluster, admin):
    cluster.kubectl("create", "namespace", "doomed")
    apply(cluster, "doomed", sample())
    wait_running(admin, "doomed", NAME)
    cluster.kubectl("delete", "namespace", "doomed", "--timeout=90s")
    with pytest.raises(NotFound):
        admin.get(WUKONGS, "doomed", NAME)


def test_a_vm_stopped_through_kubevirt_stays_stopped_until_the_wukong_asks_again(cluster, admin, namespace, reconciler):
    apply(cluster, namespace, sample())
    wait_running(admin, namespace, NAME)
    admin.patch(VIRTUAL_MACHINES, namespace, f"{NAME}-vm", {"spec": {"runStrategy": "Halted"}})  # as virtctl stop
    wait_for_wukong(admin, namespace, NAME, lambda s: s.get("phase") == "Stopped", "phase Stopped")
    watch_quietly(admin, VIRTUAL_MACHINES, namespace, f"{NAME}-vm", resyncs_passed(reconciler, 2), "two resyncs")
    vm = admin.get(VIRTUAL_MACHINES, namespace, f"{NAME}-vm")
    assert vm["spec"]["runStrategy"] == "Halted", "the reconciler reverted the user's stop"
    assert admin.get(WUKONGS, namespace, NAME)["status"]["vmStatus"] == "Stopped"

    started = copy.deepcopy(sample())
    started["spec"]["startStrategy"] = {"runStrategy": "Always"}
    apply(cluster, namespace, started)
    wait_for_object(
        admin, VIRTUAL_MACHINES, namespace, f"{NAME}-vm", lambda v: v and v["spec"]["runStrategy"] == "Always", "start"
    )
    wait_running(admin, namespace, NAME)


def test_a_data_volume_written_with_spec_pvc_is_imported_and_bound(cluster, admin, namespace):
    admin.create(
        DATA_VOLUMES,
        {
            "apiVersion": "cdi.kubevirt.io/v1beta1",
            "kind": "DataVolume",
            "metadata": {"name": "legacy", "namespace": namespace},
            "spec": {
                "source": {"http": {"url": "https://images.example/disk.qcow2"}},
                "pvc": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "5Gi"}},
                    "storageClassName": "longhorn",
                },
            },
        },
    )
    wait_for_object(
        admin,
        DATA_VOLUMES,
        namespace,
        "legacy",
        lambda dv: dv and (dv.get("status") or {}).get("phase") == "Succeeded",
        "the DataVolume imported",
    )
    pvc = admin.get(PVCS, namespace, "legacy")
    assert pvc["status"]["phase"] == "Bound"
    assert json.dumps(pvc["spec"]["resources"]["requests"]) == '{"storage": "5Gi"}'
