"""``kubectl wukong`` on devcluster, run through kubectl's own plugin lookup: status of a Running and of a Blocked
Wukong, stop and start through the VM's run strategy, restart to a new instance, check, and one-line errors."""

from __future__ import annotations

import json
import subprocess

import pytest

from devcluster.controlplane import ControlPlane
from kubeclient.resources import VIRTUAL_MACHINE_INSTANCES, VIRTUAL_MACHINES
from kubeclient.rest import Kube
from tests.builders import disk, wukong
from tests.e2e.conftest import ROOT, SAMPLES
from tests.e2e.test_reconciler import apply, wait_for_wukong, wait_running
from tests.waiting import wait_for_object
from wukong.api import WUKONGS

pytestmark = pytest.mark.usefixtures("reconciler")
CLASSES = str(ROOT / "deploy" / "storageclasses" / "devcluster.yaml")


def plugin(cluster: ControlPlane, *args: str) -> subprocess.CompletedProcess[str]:
    """``kubectl wukong ARGS``: kubectl finds kubectl-wukong on PATH, as on a user's machine."""
    return subprocess.run(
        [str(cluster.binary("kubectl")), "wukong", *args],
        env={**cluster.environment(), "HOME": "/nonexistent"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )


def status(cluster: ControlPlane, namespace: str, name: str) -> dict:
    result = plugin(cluster, "status", name, "-n", namespace, "-o", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_status_of_a_running_wukong_shows_its_disks_vm_and_instance(cluster, admin: Kube, namespace):
    apply(cluster, namespace, wukong(disk("system", image="docker://quay.io/containerdisks/fedora:40"), disk("data")))
    wait_running(admin, namespace, "vm1")
    view = status(cluster, namespace, "vm1")
    assert (view["phase"], view["ready"]["status"], view["waitingFor"]) == ("Running", "True", [])
    assert [(d["name"], d["capacity"], d["storageClass"], d["source"], d["bound"]) for d in view["disks"]] == [
        ("system", "10Gi", "longhorn", "dataVolume", True),
        ("data", "10Gi", "longhorn", "pvc", True),
    ]
    assert (view["vm"]["name"], view["vm"]["printableStatus"], view["vm"]["runStrategy"]) == (
        "vm1-vm",
        "Running",
        "Always",
    )
    assert view["vmi"]["node"] and view["vmi"]["phase"] == "Running"
    text = plugin(cluster, "status", "vm1", "-n", namespace)
    assert text.returncode == 0 and "\033[" not in text.stdout  # not a terminal: plain
    assert text.stdout.startswith(f"Wukong    {namespace}/vm1   Running")
    assert "instance  vm1-vm   Running" in text.stdout


def test_status_of_a_blocked_wukong_says_what_it_waits_for(cluster, admin: Kube, namespace):
    apply(cluster, namespace, wukong(disk("data", storageClassName="no-such-class"), name="blocked"))
    wait_for_wukong(admin, namespace, "blocked", lambda s: s.get("phase") == "Blocked", "blocked Blocked")
    view = status(cluster, namespace, "blocked")
    assert view["vm"] is None
    waiting = {w["reason"]: w["message"] for w in view["waitingFor"]}
    assert "no-such-class" in waiting["Ready: StorageClassNotFound"]
    text = plugin(cluster, "status", "blocked", "-n", namespace).stdout
    assert "Ready: StorageClassNotFound: blocked: no virtual machine is created" in text


def test_stop_start_and_restart_act_on_the_vm_as_virtctl_does(cluster, admin: Kube, namespace):
    apply(cluster, namespace, wukong(disk("data"), name="power"))
    wait_running(admin, namespace, "power")
    stopped = plugin(cluster, "stop", "power", "-n", namespace)
    assert (stopped.returncode, stopped.stdout) == (
        0,
        "VM power-vm of wukong power was scheduled to stop (runStrategy Halted)\n",
    )
    wait_for_wukong(admin, namespace, "power", lambda s: s.get("phase") == "Stopped", "power Stopped")
    assert admin.get(VIRTUAL_MACHINES, namespace, "power-vm")["spec"]["runStrategy"] == "Halted"
    again = plugin(cluster, "stop", "power", "-n", namespace)
    assert (again.returncode, again.stderr) == (
        1,
        "error: VirtualMachine power-vm is not running (runStrategy Halted)\n",
    )

    assert plugin(cluster, "start", "power", "-n", namespace).returncode == 0
    wait_running(admin, namespace, "power")
    first = wait_for_object(
        admin, VIRTUAL_MACHINE_INSTANCES, namespace, "power-vm", lambda o: o and o["metadata"]["uid"], "an instance"
    )
    restarted = plugin(cluster, "restart", "power", "-n", namespace)
    assert restarted.returncode == 0, restarted.stderr
    wait_for_object(
        admin,
        VIRTUAL_MACHINE_INSTANCES,
        namespace,
        "power-vm",
        lambda o: o is not None and o["metadata"]["uid"] != first,
        "a new instance",
    )
    wait_running(admin, namespace, "power")
    assert status(cluster, namespace, "power")["vmi"]["uid"] != first
    # The run state stays the user's: the Wukong's spec is untouched and the reconciler leaves the VM's as set.
    assert "startStrategy" not in admin.get(WUKONGS, namespace, "power")["spec"]


def test_check_is_the_offline_checker_with_its_exit_codes(cluster, tmp_path):
    assert plugin(cluster, "check", "--storage-classes", CLASSES, str(SAMPLES / "single-disk.yaml")).returncode == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text((SAMPLES / "system-and-data.yaml").read_text().replace("cpu: 4", "cpu: 0"))
    denied = plugin(cluster, "check", "--storage-classes", CLASSES, str(bad))
    assert denied.returncode == 1 and "denied:" in denied.stderr
    assert plugin(cluster, "check", str(tmp_path / "missing.yaml")).returncode == 2


def test_errors_are_one_line_and_the_contexts_namespace_is_the_default(cluster, namespace):
    missing = plugin(cluster, "status", "nothing", "-n", namespace)
    assert (missing.returncode, missing.stderr) == (
        1,
        f'error: wukong "nothing" not found in namespace "{namespace}"\n',
    )
    unknown = plugin(cluster, "start", "nothing", "-n", namespace)
    assert unknown.returncode == 1 and unknown.stderr.count("\n") == 1
    cluster.kubectl("create", "serviceaccount", "nobody", "-n", namespace)
    kubeconfig = cluster.service_account_kubeconfig(namespace, "nobody")  # its context names the namespace
    forbidden = plugin(cluster, "--kubeconfig", str(kubeconfig), "status", "x")
    assert forbidden.returncode == 1
    assert forbidden.stderr.startswith("error: forbidden: ") and forbidden.stderr.count("\n") == 1
    assert f'in the namespace "{namespace}"' in forbidden.stderr
