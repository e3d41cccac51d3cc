"""``kubectl wukong``: the status view and its text from recorded objects, the start/stop/restart decisions, the
offline check's exit codes through the plugin, and one-line errors without a cluster."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from wukongctl import power
from wukongctl.cli import _command_index, main
from wukongctl.render import render
from wukongctl.view import status_view

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "deploy" / "samples"
CLASSES = str(ROOT / "deploy" / "storageclasses" / "devcluster.yaml")
ANSI = re.compile(r"\033\[[0-9;]*m")

# As the API server returned them on devcluster: a Wukong growing its data disk while the VM runs, and its children.
RUNNING = {
    "apiVersion": "vm.novasphere.dev/v1alpha1",
    "kind": "Wukong",
    "metadata": {"name": "system-and-data", "namespace": "default", "generation": 3, "uid": "w-1"},
    "spec": {
        "cpu": 4,
        "memory": "8Gi",
        "disks": [
            {
                "name": "system",
                "size": "80Gi",
                "image": "docker://quay.io/containerdisks/fedora:40",
                "storageClassName": "longhorn",
                "boot": True,
            },
            {
                "name": "data",
                "size": "1Ti",
                "storageClassName": "longhorn",
                "boot": False,
                "snapshotBeforeExpand": {"keep": 1},
            },
        ],
    },
    "status": {
        "phase": "Running",
        "observedGeneration": 3,
        "vmName": "system-and-data-vm",
        "vmStatus": "Running",
        "nodeName": "devcluster-node",
        "volumes": [
            {
                "name": "system",
                "pvcName": "system-and-data-system",
                "bound": True,
                "everBound": True,
                "source": "dataVolume",
                "size": "80Gi",
                "capacity": "80Gi",
            },
            {
                "name": "data",
                "pvcName": "system-and-data-data",
                "bound": True,
                "everBound": True,
                "source": "pvc",
                "size": "1Ti",
                "capacity": "500Gi",
                "snapshots": [
                    {
                        "name": "system-and-data-data-1",
                        "readyToUse": True,
                        "size": "500Gi",
                        "time": "2026-11-28T01:00:00Z",
                    }
                ],
            },
        ],
        "conditions": [
            {"type": "VolumesBound", "status": "True", "reason": "AllBound", "message": "2/2 volumes bound"},
            {"type": "Resizing", "status": "True", "reason": "ExpansionInProgress", "message": "data: 500Gi -> 1Ti"},
            {"type": "Ready", "status": "True", "reason": "Running", "message": "the virtual machine is running"},
            {"type": "RestartRequired", "status": "False", "reason": "UpToDate", "message": "up to date"},
            {"type": "Degraded", "status": "False", "reason": "AsExpected", "message": "no problems found"},
        ],
    },
}
VM = {
    "metadata": {"name": "system-and-data-vm", "namespace": "default", "ownerReferences": [{"uid": "w-1"}]},
    "spec": {"runStrategy": "Always"},
    "status": {"printableStatus": "Running", "ready": True},
}
VMI = {
    "metadata": {"name": "system-and-data-vm", "uid": "i-1", "creationTimestamp": "2026-11-28T01:00:00Z"},
    "status": {"phase": "Running", "nodeName": "devcluster-node"},
}
BLOCKED_MESSAGE = (
    "blocked: no virtual machine is created until this is fixed: disk data asks for StorageClass fast, which does not "
    "exist; its volume stays Pending until the class is created or the disk's storageClassName is corrected"
)
BLOCKED = {
    "metadata": {"name": "web", "namespace": "team-a", "generation": 1},
    "spec": {"disks": [{"name": "data", "size": "10Gi", "storageClassName": "fast"}]},
    "status": {
        "phase": "Blocked",
        "observedGeneration": 1,
        "volumes": [{"name": "data", "pvcName": "web-data", "bound": False, "everBound": False, "source": "pvc"}],
        "conditions": [
            {"type": "VolumesBound", "status": "False", "reason": "WaitingForVolumes", "message": "0/1 volumes bound"},
            {"type": "Ready", "status": "False", "reason": "StorageClassNotFound", "message": BLOCKED_MESSAGE},
            {"type": "Degraded", "status": "True", "reason": "StorageClassNotFound", "message": "disk data asks ..."},
        ],
    },
}


# -- the view ------------------------------------------------------------------------------------------------
def test_a_running_wukong_shows_each_disk_with_its_class_capacity_and_snapshots_and_the_vm_and_instance():
    view = status_view(RUNNING, VM, VMI)
    assert (view["phase"], view["ready"]["status"], view["degraded"]["reason"]) == ("Running", "True", "AsExpected")
    system, data = view["disks"]
    assert (system["storageClass"], system["source"], system["image"], system["boot"]) == (
        "longhorn",
        "dataVolume",
        "docker://quay.io/containerdisks/fedora:40",
        True,
    )
    assert (data["requested"], data["capacity"], data["bound"], data["volume"]) == (
        "1Ti",
        "500Gi",
        True,
        "system-and-data-data",
    )
    assert data["snapshots"][0]["name"] == "system-and-data-data-1"
    assert view["vm"] == {
        "name": "system-and-data-vm",
        "runStrategy": "Always",
        "printableStatus": "Running",
        "ready": True,
        "restartRequired": False,
    }
    assert (view["vmi"]["uid"], view["vmi"]["node"]) == ("i-1", "devcluster-node")
    assert [w["reason"] for w in view["waitingFor"]] == ["Resizing: ExpansionInProgress"]


def test_a_blocked_wukong_waits_for_what_blocks_it_and_has_no_vm():
    view = status_view(BLOCKED, None, None)
    assert view["phase"] == "Blocked"
    assert {"reason": "Ready: StorageClassNotFound", "message": BLOCKED_MESSAGE} in view["waitingFor"]
    assert view["vm"] is None and view["vmi"] is None
    assert view["disks"][0]["bound"] is False


def test_a_new_wukong_without_status_waits_for_the_reconciler_and_lists_its_disks_from_the_spec():
    fresh = {"metadata": {"name": "x", "namespace": "default", "generation": 1}, "spec": BLOCKED["spec"]}
    view = status_view(fresh, None, None)
    assert view["phase"] is None
    assert [w["reason"] for w in view["waitingFor"]] == ["NoStatus"]
    assert view["disks"][0]["name"] == "data" and view["disks"][0]["capacity"] is None


def test_a_status_behind_the_spec_says_the_reconciler_has_not_observed_it_yet():
    behind = copy.deepcopy(RUNNING)
    behind["metadata"]["generation"] = 4
    reasons = [w["reason"] for w in status_view(behind, VM, VMI)["waitingFor"]]
    assert reasons[0] == "NotObserved"


def test_a_vm_the_user_may_not_read_is_said_so_instead_of_none_yet():
    text = render(status_view(RUNNING, None, None, "forbidden: virtualmachines is forbidden"))
    assert "VM        not shown: forbidden: virtualmachines is forbidden" in text
    assert "none yet" not in text


def test_kstatus_conditions_read_as_waiting_when_they_hold():
    stalled = copy.deepcopy(BLOCKED)
    stalled["status"]["conditions"] += [
        {"type": "Reconciling", "status": "False", "reason": "Blocked", "message": "-"},
        {"type": "Stalled", "status": "True", "reason": "StorageClassNotFound", "message": "no class fast"},
    ]
    reasons = [w["reason"] for w in status_view(stalled, None, None)["waitingFor"]]
    assert "Stalled: StorageClassNotFound" in reasons and not any(r.startswith("Reconciling") for r in reasons)


def test_a_stopped_wukong_waits_for_nothing():
    stopped = copy.deepcopy(RUNNING)
    stopped["status"]["phase"] = "Stopped"
    stopped["status"]["conditions"] = [
        {"type": "Ready", "status": "False", "reason": "Stopped", "message": "the virtual machine is stopped"}
    ]
    assert status_view(stopped, VM, None)["waitingFor"] == []


@pytest.mark.parametrize(
    "status",
    [
        "Running",
        {"volumes": "x", "conditions": [1, None, {"type": 3}], "observedGeneration": "1"},
        {"volumes": [{"name": "data", "snapshots": "many", "bound": "yes", "importProgress": {"a": 1}}]},
    ],
    ids=["a-string", "wrong-types", "wrong-types-inside-a-volume"],
)
def test_a_status_of_any_shape_reads_as_missing_fields_and_renders(status):
    odd = {**BLOCKED, "status": status}
    view = status_view(odd, {"spec": "x", "status": []}, {"metadata": 5})
    assert view["disks"][0]["name"] == "data"
    render(view)
    json.dumps(view)


def test_the_json_document_keeps_its_documented_keys():
    view = status_view(RUNNING, VM, VMI)
    assert list(view) == [
        "formatVersion",
        "name",
        "namespace",
        "generation",
        "observedGeneration",
        "phase",
        "ready",
        "degraded",
        "waitingFor",
        "disks",
        "vm",
        "vmi",
        "conditions",
        "vmUnreadable",
    ]
    assert view["formatVersion"] == 1
    assert list(view["disks"][0]) == [
        "name",
        "size",
        "requested",
        "capacity",
        "storageClass",
        "image",
        "source",
        "volume",
        "bound",
        "boot",
        "importProgress",
        "importRestartCount",
        "expansionFailed",
        "resizeStatus",
        "lost",
        "everBound",
        "snapshots",
    ]


def test_an_import_under_way_and_a_failed_expansion_show_in_the_disk_state():
    importing = copy.deepcopy(BLOCKED)
    importing["status"]["volumes"][0].update(importProgress="45.20%", importRestartCount=2)
    assert "importing 45.20%, 2 importer restarts" in render(status_view(importing, None, None))
    failed = copy.deepcopy(RUNNING)
    failed["status"]["volumes"][1].update(expansionFailed=True, resizeStatus="ControllerResizeInfeasible")
    assert "expansion failed (ControllerResizeInfeasible)" in render(status_view(failed, VM, VMI))


# -- the text ------------------------------------------------------------------------------------------------
def test_plain_text_has_no_colour_and_aligns_the_disk_table():
    text = render(status_view(RUNNING, VM, VMI))
    assert not ANSI.search(text)
    lines = text.splitlines()
    assert lines[0].split() == ["Wukong", "default/system-and-data", "Running", "generation", "3,", "observed", "3"]
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["DISK", "SIZE"])
    rows = lines[header : header + 3]
    column = rows[0].index("CAPACITY")
    assert [row[column:].split()[0] for row in rows[1:]] == ["80Gi", "500Gi"]  # under its heading
    assert rows[2].split()[:7] == ["data", "1Ti", "500Gi", "longhorn", "blank", "yes", "system-and-data-data"]
    assert "growing 500Gi -> 1Ti" in rows[2]
    assert "snapshot of data: system-and-data-data-1 (ready, 500Gi, 2026-11-28T01:00:00Z)" in text
    assert "VM        system-and-data-vm   Running   runStrategy Always" in text
    assert "instance  system-and-data-vm   Running   node devcluster-node   uid i-1" in text
    assert "Resizing: ExpansionInProgress: data: 500Gi -> 1Ti" in text


def test_plain_text_of_a_blocked_wukong_keeps_each_message_on_one_line():
    text = render(status_view(BLOCKED, None, None))
    assert f"Ready: StorageClassNotFound: {BLOCKED_MESSAGE}" in text
    assert "none yet (created once every volume is bound)" in text


def test_a_terminal_gets_colours_and_messages_folded_to_its_width():
    text = render(status_view(BLOCKED, None, None), colour=True, width=80)
    assert "\033[31mBlocked\033[0m" in text
    assert "\033[33mStopped\033[0m" in render(
        status_view({**BLOCKED, "status": {"phase": "Stopped"}}, None, None), True
    )
    plain = ANSI.sub("", text)
    assert all(len(line) <= 80 for line in plain.splitlines())
    assert BLOCKED_MESSAGE not in plain  # folded
    assert " ".join(BLOCKED_MESSAGE.split()) in " ".join(plain.split())


# -- start, stop, restart ----------------------------------------------------------------------------------
def vm(strategy):
    return {"metadata": {"name": "x-vm"}, "spec": {"runStrategy": strategy}}


RUNNING_VMI = {"metadata": {"uid": "i-1"}, "status": {"phase": "Running"}}


@pytest.mark.parametrize("verb", power.VERBS)
def test_with_kubevirts_subresource_api_every_verb_is_its_request(verb):
    assert power.plan(verb, vm("Manual"), None, actions_served=True) == power.Plan(action=verb)


@pytest.mark.parametrize(
    ("verb", "strategy", "vmi", "wanted"),
    [
        ("start", "Halted", None, "Always"),
        ("stop", "Always", RUNNING_VMI, "Halted"),
        ("stop", "Once", RUNNING_VMI, "Halted"),
    ],
)
def test_without_it_start_and_stop_patch_the_run_strategy_testing_the_old_value(verb, strategy, vmi, wanted):
    plan = power.plan(verb, vm(strategy), vmi, actions_served=False)
    assert plan.patch == [
        {"op": "test", "path": "/spec/runStrategy", "value": strategy},
        {"op": "replace", "path": "/spec/runStrategy", "value": wanted},
    ]


@pytest.mark.parametrize("strategy", ["Always", "RerunOnFailure"])
def test_without_it_restart_deletes_the_running_instance_by_uid(strategy):
    assert power.plan("restart", vm(strategy), RUNNING_VMI, actions_served=False).delete_instance == "i-1"


@pytest.mark.parametrize(
    ("verb", "strategy", "vmi", "says"),
    [
        ("start", "Always", RUNNING_VMI, "already running"),
        ("start", "Always", None, "KubeVirt starts it by itself"),
        ("start", "Manual", None, "only through KubeVirt's subresource API"),
        ("stop", "Halted", None, "is not running"),
        ("stop", "RerunOnFailure", RUNNING_VMI, "only through KubeVirt's subresource API"),
        ("restart", "Halted", None, "does not take restart requests"),
        ("restart", "Always", None, "is not running"),
        ("restart", "Always", {"metadata": {"uid": "i"}, "status": {"phase": "Succeeded"}}, "is not running"),
        ("restart", "Manual", RUNNING_VMI, "only through KubeVirt's subresource API"),
        ("stop", None, RUNNING_VMI, "no spec.runStrategy"),
    ],
)
def test_without_it_what_virt_api_would_refuse_or_only_it_can_do_is_refused_saying_why(verb, strategy, vmi, says):
    with pytest.raises(power.Refused, match=re.escape(says)):
        power.plan(verb, vm(strategy), vmi, actions_served=False)


# -- the command line ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "index"),
    [(["status", "x"], 0), (["-n", "a", "check", "f"], 2), (["--kubeconfig=k", "stop", "x"], 1), (["-n", "a"], None)],
)
def test_the_command_is_found_past_the_connection_flags(argv, index):
    assert _command_index(argv) == index


def test_check_is_the_offline_checker_with_its_exit_codes(capsys, tmp_path):
    assert main(["check", "--storage-classes", CLASSES, str(SAMPLES / "single-disk.yaml")]) == 0
    shrunk = tmp_path / "bad.yaml"
    shrunk.write_text((SAMPLES / "system-and-data.yaml").read_text().replace("cpu: 4", "cpu: 0"))
    assert main(["check", "--storage-classes", CLASSES, str(shrunk)]) == 1
    assert "denied:" in capsys.readouterr().err
    assert main(["check", str(tmp_path / "missing.yaml")]) == 2


def test_without_a_kubeconfig_the_error_is_one_line(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert main(["status", "x"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: no usable kubeconfig") and err.count("\n") == 1


def test_an_unreachable_cluster_is_one_line(capsys, tmp_path):
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u", "namespace": "team-a"}}],
                "current-context": "x",
            }
        )
    )
    assert main(["--kubeconfig", str(kubeconfig), "stop", "web"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot reach the Kubernetes API server") and err.count("\n") == 1
    assert main(["status", "web", "--kubeconfig", str(kubeconfig), "--context", "nope"]) == 1
    assert capsys.readouterr().err.startswith("error: no usable kubeconfig")
