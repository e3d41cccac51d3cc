"""Changes to a running VM and corrections of mistakes that cost nothing, on the real API server.

The simulation plays KubeVirt: a template change reaches the running instance only for hotpluggable volumes;
anything else sets the VM condition RestartRequired until the instance restarts (``virtctl restart`` deletes it).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml

from kubeclient.resources import PVCS, VIRTUAL_MACHINE_INSTANCES, VIRTUAL_MACHINES
from kubeclient.rest import Kube
from tests.e2e.conftest import SAMPLES
from tests.e2e.test_reconciler import apply, wait_condition, wait_for_wukong, wait_running
from tests.waiting import wait_for_event, wait_for_object

pytestmark = pytest.mark.usefixtures("reconciler")
NAME = "system-and-data"
VM = f"{NAME}-vm"
REMOVAL = {"vm.novasphere.dev/allow-disk-removal": "true"}


def sample() -> dict[str, Any]:
    return yaml.safe_load((SAMPLES / "system-and-data.yaml").read_text())


def instance_volumes(obj: dict[str, Any] | None) -> list[str]:
    return [v["name"] for v in ((obj or {}).get("spec") or {}).get("volumes") or []]


def wait_up_to_date(admin: Kube, namespace: str) -> None:
    """RestartRequired=False because the running instance has every change (not merely while it restarts)."""

    def holds(status: dict[str, Any]) -> bool:
        found = [c for c in status.get("conditions") or [] if c["type"] == "RestartRequired"]
        return bool(found) and found[0]["status"] == "False" and found[0]["reason"] == "UpToDate"

    wait_for_wukong(admin, namespace, NAME, holds, "RestartRequired=False, reason UpToDate")


def restart(admin: Kube, namespace: str) -> str:
    """What ``virtctl restart`` does: delete the instance; KubeVirt starts a new one from the template."""
    old = admin.get(VIRTUAL_MACHINE_INSTANCES, namespace, VM)["metadata"]["uid"]
    admin.delete(VIRTUAL_MACHINE_INSTANCES, namespace, VM)
    new = wait_for_object(
        admin,
        VIRTUAL_MACHINE_INSTANCES,
        namespace,
        VM,
        lambda i: i if i and i["metadata"]["uid"] != old else None,
        "a new",
    )
    return str(new["metadata"]["uid"])


def test_a_cpu_change_waits_for_a_restart_and_says_so_while_the_vm_runs(cluster, admin, namespace):
    apply(cluster, namespace, sample())
    wait_running(admin, namespace, NAME)
    bigger = sample()
    bigger["spec"]["cpu"] = 8
    apply(cluster, namespace, bigger)

    waiting = wait_condition(admin, namespace, NAME, "RestartRequired", "True")
    assert waiting["message"] == f"cpu 4→8; restart the VM to apply (virtctl restart {VM})"
    assert wait_condition(admin, namespace, NAME, "Ready", "True")["reason"] == "Running"
    running = admin.get(VIRTUAL_MACHINE_INSTANCES, namespace, VM)
    assert running["spec"]["domain"]["cpu"]["cores"] == 4, "the running instance changed without a restart"
    vm = admin.get(VIRTUAL_MACHINES, namespace, VM)
    assert vm["spec"]["template"]["spec"]["domain"]["cpu"]["cores"] == 8
    wait_for_event(
        admin,
        namespace,
        lambda e: e["reason"] == "RestartRequired" and e["involvedObject"]["name"] == NAME,
        "a RestartRequired event on the Wukong",
    )

    restart(admin, namespace)
    wait_up_to_date(admin, namespace)
    assert admin.get(VIRTUAL_MACHINE_INSTANCES, namespace, VM)["spec"]["domain"]["cpu"]["cores"] == 8


def test_a_disk_added_to_a_running_vm_is_hot_plugged_and_unplugged_when_removed(cluster, admin, namespace):
    apply(cluster, namespace, sample())
    wait_running(admin, namespace, NAME)
    grown = sample()
    grown["spec"]["disks"].append({"name": "logs", "size": "10Gi"})
    apply(cluster, namespace, grown)

    plugged = wait_for_object(
        admin, VIRTUAL_MACHINE_INSTANCES, namespace, VM, lambda i: i if "logs" in instance_volumes(i) else None, "plug"
    )
    logs = next(v for v in plugged["spec"]["volumes"] if v["name"] == "logs")
    assert logs["persistentVolumeClaim"] == {"claimName": f"{NAME}-logs", "hotpluggable": True}
    bus = next(d for d in plugged["spec"]["domain"]["devices"]["disks"] if d["name"] == "logs")["disk"]["bus"]
    assert bus == "scsi"
    wait_up_to_date(admin, namespace)

    without_logs = sample()
    without_logs["metadata"]["annotations"] = REMOVAL
    apply(cluster, namespace, without_logs)
    wait_for_object(
        admin, VIRTUAL_MACHINE_INSTANCES, namespace, VM, lambda i: i and "logs" not in instance_volumes(i), "unplug"
    )
    wait_up_to_date(admin, namespace)
    kept = admin.get(PVCS, namespace, f"{NAME}-logs")
    assert kept["metadata"]["labels"]["vm.novasphere.dev/released-from"] == NAME


def test_removing_a_disk_that_was_not_hot_plugged_waits_for_a_restart(cluster, admin, namespace):
    apply(cluster, namespace, sample())
    wait_running(admin, namespace, NAME)
    system_only = sample()
    system_only["metadata"]["annotations"] = REMOVAL
    del system_only["spec"]["disks"][1]
    apply(cluster, namespace, system_only)
    waiting = wait_condition(admin, namespace, NAME, "RestartRequired", "True")
    assert waiting["message"] == f'disk "data" removed; restart the VM to apply (virtctl restart {VM})'
    assert "data" in instance_volumes(admin.get(VIRTUAL_MACHINE_INSTANCES, namespace, VM))
    restart(admin, namespace)
    wait_up_to_date(admin, namespace)
    assert instance_volumes(admin.get(VIRTUAL_MACHINE_INSTANCES, namespace, VM)) == ["system"]


def test_a_mistyped_storage_class_is_reported_corrected_and_then_fixed_for_good(cluster, admin, namespace):
    typo = sample()
    typo["spec"]["disks"][1]["storageClassName"] = "longhron"
    created = cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(typo))
    assert 'StorageClass "longhron" does not exist' in created.stderr  # the webhook's warning
    degraded = wait_condition(admin, namespace, NAME, "Degraded", "True")
    assert degraded["reason"] == "StorageClassNotFound"
    assert degraded["message"].startswith("disk data asks for StorageClass longhron, which does not exist")
    stuck = admin.get(PVCS, namespace, f"{NAME}-data")

    fixed = copy.deepcopy(typo)
    fixed["spec"]["disks"][1]["storageClassName"] = "longhorn"
    apply(cluster, namespace, fixed)
    wait_running(admin, namespace, NAME)
    replaced = admin.get(PVCS, namespace, f"{NAME}-data")
    assert replaced["metadata"]["uid"] != stuck["metadata"]["uid"]
    assert replaced["spec"]["storageClassName"] == "longhorn"
    assert replaced["status"]["phase"] == "Bound"
    assert wait_condition(admin, namespace, NAME, "Degraded", "False")["reason"] == "AsExpected"
    wait_for_event(
        admin,
        namespace,
        lambda e: e["reason"] == "Replacing" and "never bound" in e["message"],
        "the Replacing event",
    )

    wait_for_wukong(
        admin,
        namespace,
        NAME,
        lambda s: any(v.get("name") == "data" and v.get("everBound") for v in s.get("volumes") or []),
        "status.volumes[data].everBound",
    )
    moved = copy.deepcopy(fixed)
    moved["spec"]["disks"][1]["storageClassName"] = "longhorn-ssd"
    refused = cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(moved), check=False)
    assert refused.returncode != 0
    assert (
        'The Wukong "system-and-data" is invalid: spec.disks[1].storageClassName: Forbidden: disk "data" is on '
        'StorageClass "longhorn" and its volume has bound'
    ) in refused.stderr
    assert admin.get(PVCS, namespace, f"{NAME}-data")["metadata"]["uid"] == replaced["metadata"]["uid"]
