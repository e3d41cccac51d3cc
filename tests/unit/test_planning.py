"""Planning and status without a server: observed state in, actions and status out."""

from __future__ import annotations

import copy
import dataclasses

import jsonschema
import pytest

from reconciler import guest, ownership, planning, restarts, status, vm, volumes
from reconciler.assess import made_networks
from reconciler.observation import Observed
from reconciler.planning import Adopt, Create, Expand, Release, SetRetention, UpdateVM
from tests import upstream
from tests.builders import CLASSES, disk, wukong
from wukong import api
from wukong.policy import Policy, Scope
from wukong.spec import DELETE, Disk

UID = "0f0f0f0f-1111-2222-3333-444444444444"
NOW = "2026-11-25T12:00:00Z"
CLASSES_BY_NAME = {c.name: c for c in CLASSES}


def live(*disks, **spec) -> dict:
    obj = wukong(*disks, **spec)
    obj["metadata"].update(uid=UID, generation=3, resourceVersion="10")
    return obj


SYSTEM = disk(
    "system", "80Gi", storageClassName="longhorn", boot=True, image="docker://quay.io/containerdisks/fedora:40"
)
DATA = disk("data", "500Gi", storageClassName="longhorn", boot=False)
SYSTEM_DISK = Disk.from_dict(SYSTEM)


def bound(pvc: dict, capacity: str | None = None) -> dict:
    pvc = copy.deepcopy(pvc)
    pvc["metadata"].update(uid=f"uid-{pvc['metadata']['name']}", resourceVersion="5")
    pvc["status"] = {
        "phase": "Bound",
        "capacity": {"storage": capacity or pvc["spec"]["resources"]["requests"]["storage"]},
    }
    return pvc


def succeeded(dv: dict) -> dict:
    dv = copy.deepcopy(dv)
    dv["metadata"].update(uid=f"uid-{dv['metadata']['name']}", resourceVersion="6")
    dv["status"] = {"phase": "Succeeded", "progress": "100.0%", "claimName": dv["metadata"]["name"]}
    return dv


def cdi_pvc(dv: dict) -> dict:
    """The PVC CDI makes for a DataVolume: same name, owned by the DataVolume."""
    pvc = bound(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {
                "name": dv["metadata"]["name"],
                "namespace": "default",
                "ownerReferences": [{"kind": "DataVolume", "uid": dv["metadata"]["uid"], "controller": True}],
            },
            "spec": {
                "resources": {"requests": dv["spec"]["storage"]["resources"]["requests"]},
                "storageClassName": "longhorn",
            },
        }
    )
    return pvc


def built_claim(obj: dict, d: Disk) -> dict:
    return volumes.persistent_volume_claim(obj, d, Observed(obj).spec.when_deleted == DELETE)


def built_data_volume(obj: dict, d: Disk) -> dict:
    return volumes.data_volume(obj, d, Observed(obj).spec.when_deleted == DELETE)


def built_vm(obj: dict, hotplug: frozenset[str] | set[str] = frozenset()) -> dict:
    observed = Observed(obj)
    return vm.virtual_machine(observed, guest.cloud_init_secret(observed), hotplug)


def converged(obj: dict) -> Observed:
    """Everything created, bound and running, as the cluster would report it."""
    spec = Observed(obj).spec
    dvs, pvcs = {}, {}
    for d in spec.disks:
        if d.image:
            dv = succeeded(built_data_volume(obj, d))
            dvs[dv["metadata"]["name"]] = dv
            pvcs[dv["metadata"]["name"]] = cdi_pvc(dv)
        else:
            pvc = bound(built_claim(obj, d))
            pvcs[pvc["metadata"]["name"]] = pvc
    vm = built_vm(obj)
    vm["metadata"]["resourceVersion"] = "7"
    vm["status"] = {"printableStatus": "Running", "ready": True}
    return Observed(obj, pvcs=pvcs, data_volumes=dvs, vm=vm, storage_classes=CLASSES_BY_NAME)


# -- building children -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "image",
    [
        "docker://quay.io/containerdisks/fedora:40",
        "quay.io/containerdisks/fedora:40",
        "https://cloud-images.ubuntu.com/noble.img",
    ],
)
def test_every_data_volume_is_valid_for_the_real_cdi_schema(image):
    jsonschema.validate(built_data_volume(live(), _disk(image)), upstream.strict_schema(upstream.DATA_VOLUME))


def _disk(image: str) -> Disk:
    return Disk("system", "80Gi", "longhorn", True, image)


def test_a_bare_registry_reference_becomes_a_docker_url():
    dv = built_data_volume(live(), _disk("quay.io/containerdisks/fedora:40"))
    assert dv["spec"]["source"] == {"registry": {"url": "docker://quay.io/containerdisks/fedora:40"}}


def test_an_http_image_uses_the_http_source():
    dv = built_data_volume(live(), _disk("https://example.com/disk.qcow2"))
    assert dv["spec"]["source"] == {"http": {"url": "https://example.com/disk.qcow2"}}


@pytest.mark.parametrize(
    ("start", "run_strategy"),
    [(None, "Always"), ({"autoStart": False}, "Halted"), ({"runStrategy": "RerunOnFailure"}, "RerunOnFailure")],
    ids=["default", "autostart-false", "explicit"],
)
def test_every_virtual_machine_is_valid_for_the_real_kubevirt_schema(start, run_strategy):
    extra = {"startStrategy": start} if start else {}
    obj = live(SYSTEM, DATA, **extra)
    vm = built_vm(obj)
    jsonschema.validate(vm, upstream.strict_schema(upstream.VIRTUAL_MACHINE))
    assert vm["spec"]["runStrategy"] == run_strategy


def test_an_unknown_field_would_be_caught_by_the_strict_schema():
    obj = live(SYSTEM)
    vm = built_vm(obj)
    vm["spec"]["template"]["spec"]["domain"]["cpu"]["coresPerSocket"] = 2
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(vm, upstream.strict_schema(upstream.VIRTUAL_MACHINE))


def test_the_vm_boots_from_the_boot_disk_and_mounts_each_volume_by_its_kind():
    obj = live(DATA, SYSTEM)
    template = built_vm(obj)["spec"]["template"]["spec"]
    assert template["domain"]["devices"]["disks"] == [
        {"name": "data", "disk": {"bus": "virtio"}},
        {"name": "system", "disk": {"bus": "virtio"}, "bootOrder": 1},
    ]
    assert template["volumes"] == [
        {"name": "data", "persistentVolumeClaim": {"claimName": "vm1-data"}},
        {"name": "system", "dataVolume": {"name": "vm1-system"}},
    ]


def test_volumes_are_labelled_and_under_retain_carry_no_owner_reference():
    pvc = built_claim(live(DATA), Observed(live(DATA)).spec.disks[0])
    assert pvc["metadata"]["labels"] == {
        "vm.novasphere.dev/wukong": "vm1",
        "vm.novasphere.dev/disk": "data",
        "app.kubernetes.io/managed-by": "wukong-reconciler",
    }
    assert pvc["metadata"]["annotations"] == {"vm.novasphere.dev/wukong-uid": UID}
    assert "ownerReferences" not in pvc["metadata"], "the garbage collector must not be able to delete it"


OWNER = {
    "apiVersion": "vm.novasphere.dev/v1alpha1",
    "kind": "Wukong",
    "name": "vm1",
    "uid": UID,
    "controller": True,
    "blockOwnerDeletion": True,
}


def test_under_delete_volumes_carry_the_controller_reference():
    obj = live(DATA, volumeRetentionPolicy={"whenDeleted": "Delete"})
    pvc = built_claim(obj, Observed(obj).spec.disks[0])
    assert pvc["metadata"]["ownerReferences"] == [OWNER]


def test_the_vm_always_carries_the_controller_reference_and_the_run_strategy_applied():
    vm = built_vm(live(DATA))
    assert vm["metadata"]["ownerReferences"] == [OWNER]
    assert vm["metadata"]["annotations"] == {"vm.novasphere.dev/start-strategy": "{}"}


# -- planning --------------------------------------------------------------------------------------------
def test_a_new_wukong_gets_a_data_volume_and_a_pvc_and_no_vm_yet():
    actions = planning.plan(Observed(live(SYSTEM, DATA), storage_classes=CLASSES_BY_NAME))
    assert [(type(a), a.kind, a.object["metadata"]["name"]) for a in actions] == [
        (Create, "DataVolume", "vm1-system"),
        (Create, "PersistentVolumeClaim", "vm1-data"),
    ]


def test_a_converged_wukong_needs_nothing_and_its_status_is_stable():
    observed = converged(live(SYSTEM, DATA))
    assert planning.plan(observed) == []
    first = status.compute(observed, NOW)
    again = status.compute(
        dataclasses.replace(observed, **{"wukong": {**observed.wukong, "status": first}}), "2026-11-25T13:00:00Z"
    )
    assert again == first  # lastTransitionTime kept: nothing to write


def test_the_vm_is_created_once_every_volume_is_bound():
    observed = converged(live(SYSTEM, DATA))
    observed = dataclasses.replace(observed, **{"vm": None})
    [action] = planning.plan(observed)
    assert isinstance(action, Create) and action.kind == "VirtualMachine"


def test_no_vm_while_a_volume_is_pending():
    observed = converged(live(SYSTEM, DATA))
    pvcs = dict(observed.pvcs)
    pvcs["vm1-data"] = {**pvcs["vm1-data"], "status": {"phase": "Pending"}}
    assert planning.plan(dataclasses.replace(observed, **{"vm": None, "pvcs": pvcs})) == []


def test_a_wait_for_first_consumer_claim_is_ready_to_attach():
    obj = live(SYSTEM, disk("scratch", "10Gi", storageClassName="local-path", boot=False))
    observed = converged(obj)
    pvcs = dict(observed.pvcs)
    pvcs["vm1-scratch"] = {**pvcs["vm1-scratch"], "status": {"phase": "Pending"}}
    observed = dataclasses.replace(observed, **{"vm": None, "pvcs": pvcs})
    assert [a.kind for a in planning.plan(observed)] == ["VirtualMachine"]


@pytest.mark.parametrize("volume", ["vm1-data", "vm1-system"], ids=["pvc-disk", "data-volume-disk"])
def test_growing_a_disk_patches_its_pvc(volume):
    grown = live(
        disk(
            "system", "100Gi", storageClassName="longhorn", boot=True, image="docker://quay.io/containerdisks/fedora:40"
        ),
        disk("data", "1Ti", storageClassName="longhorn"),
    )
    observed = converged(live(SYSTEM, DATA))
    observed = dataclasses.replace(observed, **{"wukong": grown})
    expands = {a.pvc: a for a in planning.plan(observed) if isinstance(a, Expand)}
    assert expands[volume].size == {"vm1-data": "1Ti", "vm1-system": "100Gi"}[volume]


def test_a_shrink_is_never_patched_and_is_reported():
    observed = converged(live(SYSTEM, DATA))
    observed = dataclasses.replace(
        observed, **{"wukong": live(SYSTEM, disk("data", "400Gi", storageClassName="longhorn"))}
    )
    assert planning.plan(observed) == []
    degraded = _condition(status.compute(observed, NOW), "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "ShrinkRefused")
    assert "asks for 400Gi but its volume vm1-data has 500Gi" in degraded["message"]


def test_growth_on_a_class_without_expansion_waits_and_says_why():
    obj = live(SYSTEM, disk("scratch", "10Gi", storageClassName="local-path"))
    observed = converged(obj)
    observed = dataclasses.replace(
        observed, **{"wukong": live(SYSTEM, disk("scratch", "20Gi", storageClassName="local-path"))}
    )
    assert not any(isinstance(a, Expand) for a in planning.plan(observed))
    assert _condition(status.compute(observed, NOW), "Degraded")["reason"] == "ExpansionNotSupported"


def test_resizing_is_true_while_the_request_exceeds_the_capacity():
    observed = converged(live(SYSTEM, DATA))
    pvcs = dict(observed.pvcs)
    pvcs["vm1-data"] = bound(pvcs["vm1-data"], capacity="400Gi")
    computed = status.compute(dataclasses.replace(observed, **{"pvcs": pvcs}), NOW)
    assert _condition(computed, "Resizing")["status"] == "True"
    assert computed["volumes"][1] == {
        "name": "data",
        "pvcName": "vm1-data",
        "bound": True,
        "size": "500Gi",
        "capacity": "400Gi",
        "source": "pvc",
        "everBound": True,
    }


def test_a_removed_disk_is_released_never_deleted():
    observed = converged(live(SYSTEM, DATA))
    observed = dataclasses.replace(observed, **{"wukong": live(SYSTEM)})
    releases = [a for a in planning.plan(observed) if isinstance(a, Release)]
    assert [(a.kind, a.name) for a in releases] == [("PersistentVolumeClaim", "vm1-data")]
    metadata = releases[0].patch["metadata"]
    assert metadata["ownerReferences"] is None
    assert metadata["labels"] == {"vm.novasphere.dev/wukong": None, "vm.novasphere.dev/released-from": "vm1"}
    assert metadata["resourceVersion"] == "5"
    [update] = [a for a in planning.plan(observed) if isinstance(a, UpdateVM)]
    assert [v["name"] for v in update.patch["spec"]["template"]["spec"]["volumes"]] == ["system"]


def test_a_same_named_pvc_it_does_not_own_is_a_conflict_not_adopted():
    foreign = {
        "metadata": {"name": "vm1-data", "namespace": "default", "uid": "x"},
        "spec": {"resources": {"requests": {"storage": "1Gi"}}},
    }
    observed = Observed(live(SYSTEM, DATA), pvcs={"vm1-data": foreign}, storage_classes=CLASSES_BY_NAME)
    assert [a.object["metadata"]["name"] for a in planning.plan(observed)] == ["vm1-system"]
    computed = status.compute(observed, NOW)
    assert _condition(computed, "Degraded")["reason"] == "NameConflict"
    assert computed["phase"] == "Blocked"  # no pass gets past a foreign object: it waits for someone to act
    assert _condition(computed, "Ready")["reason"] == "NameConflict"


def test_a_failed_import_is_an_error():
    observed = converged(live(SYSTEM))
    dvs = {
        "vm1-system": {
            **observed.data_volumes["vm1-system"],
            "status": {"phase": "Failed", "conditions": [{"type": "Running", "message": "unable to pull"}]},
        }
    }
    computed = status.compute(dataclasses.replace(observed, **{"data_volumes": dvs, "vm": None}), NOW)
    assert computed["phase"] == "Error"
    assert _condition(computed, "Degraded")["message"] == "DataVolume vm1-system failed: unable to pull"


def collected(observed: Observed, name: str, finished: bool = True) -> Observed:
    """CDI's garbage collection of a DataVolume: its PVC (labels and annotations copied from it, the importer's
    phase recorded) loses the DataVolume's ownerReference and takes the DataVolume's own ones; the DataVolume goes."""
    dv = observed.data_volumes[name]
    pvc = copy.deepcopy(observed.pvcs[name])
    pvc["metadata"]["labels"] = dict(dv["metadata"]["labels"])
    pvc["metadata"]["annotations"] = {**dv["metadata"]["annotations"], api.CDI_POD_PHASE: "Succeeded"}
    if not finished:
        pvc["metadata"]["annotations"][api.CDI_POD_PHASE] = "Running"
    pvc["metadata"]["ownerReferences"] = dv["metadata"].get("ownerReferences") or []
    dvs = {n: o for n, o in observed.data_volumes.items() if n != name}
    return dataclasses.replace(observed, **{"data_volumes": dvs, "pvcs": {**observed.pvcs, name: pvc}})


def test_data_volumes_ask_cdi_to_keep_them_after_the_import():
    dv = built_data_volume(live(SYSTEM), SYSTEM_DISK)
    assert dv["metadata"]["annotations"]["cdi.kubevirt.io/storage.deleteAfterCompletion"] == "false"


@pytest.mark.parametrize("when_deleted", ["Retain", "Delete"])
def test_the_pvc_a_collected_data_volume_left_is_adopted_as_the_volume(when_deleted):
    observed = collected(converged(live(SYSTEM, volumeRetentionPolicy={"whenDeleted": when_deleted})), "vm1-system")
    assert planning.plan(observed) == []  # nothing re-imported, nothing moved, the VM untouched
    computed = status.compute(observed, NOW)
    assert _condition(computed, "Degraded")["message"] == "no problems found"
    assert computed["phase"] == "Running"
    [entry] = computed["volumes"]
    assert (entry["source"], entry["bound"], entry["everBound"], entry["dataVolumeCollected"]) == (
        "dataVolume",
        True,
        True,
        True,
    )


def test_a_pvc_whose_import_did_not_finish_is_not_taken_for_the_imported_volume():
    observed = collected(converged(live(SYSTEM)), "vm1-system", finished=False)
    assert planning.plan(observed) == []  # it bound, so it is never replaced either
    computed = status.compute(observed, NOW)
    assert _condition(computed, "Degraded")["reason"] == "VolumeImmutable"
    assert "dataVolumeCollected" not in computed["volumes"][0]


@pytest.mark.parametrize(
    ("vm_status", "start", "phase"),
    [
        ({"printableStatus": "Running", "ready": True}, None, "Running"),
        ({"printableStatus": "Starting"}, None, "Creating"),
        ({"printableStatus": "Stopped"}, {"autoStart": False}, "Stopped"),
    ],
    ids=["running", "starting", "halted"],
)
def test_phase_follows_the_vm(vm_status, start, phase):
    extra = {"startStrategy": start} if start else {}
    observed = converged(live(SYSTEM, **extra))
    vm = {**observed.vm, "status": vm_status}
    assert status.compute(dataclasses.replace(observed, **{"vm": vm}), NOW)["phase"] == phase


def test_kubevirt_defaults_on_the_vm_do_not_cause_updates():
    observed = converged(live(SYSTEM))
    vm = copy.deepcopy(observed.vm)
    vm["spec"]["template"]["spec"]["domain"]["machine"] = {"type": "q35"}
    vm["spec"]["template"]["spec"]["domain"]["firmware"] = {"uuid": "abc"}
    assert planning.plan(dataclasses.replace(observed, **{"vm": vm})) == []


def _condition(computed: dict, kind: str) -> dict:
    return next(c for c in computed["conditions"] if c["type"] == kind)


def test_the_node_comes_from_the_running_instance():
    observed = converged(live(SYSTEM))
    vmi = {"metadata": {"name": "vm1-vm"}, "status": {"phase": "Running", "nodeName": "node-7"}}
    assert status.compute(dataclasses.replace(observed, **{"vmi": vmi}), NOW)["nodeName"] == "node-7"
    assert "nodeName" not in status.compute(observed, NOW)


# -- retention, re-creation and run state ----------------------------------------------------------------
NEW_UID = "99999999-8888-7777-6666-555555555555"


def recreated(observed: Observed, obj: dict) -> Observed:
    """The children of ``observed`` after its Wukong was deleted (volumes released) and ``obj`` created."""
    pvcs = {}
    for name, pvc in observed.pvcs.items():
        pvc = copy.deepcopy(pvc)
        if name == "vm1-data":  # what the release patch leaves
            pvc["metadata"]["labels"].pop("vm.novasphere.dev/wukong")
            pvc["metadata"]["labels"]["vm.novasphere.dev/released-from"] = "vm1"
            pvc["metadata"]["annotations"] = {}
        pvcs[name] = pvc
    obj["metadata"]["uid"] = NEW_UID
    return Observed(obj, pvcs=pvcs, storage_classes=CLASSES_BY_NAME)


def test_a_new_wukong_of_the_name_takes_back_a_retained_volume_that_fits():
    observed = recreated(converged(live(DATA)), live(disk("data", "1Ti", storageClassName="longhorn", boot=True)))
    [adopt] = planning.plan(observed)
    assert isinstance(adopt, Adopt)
    metadata = adopt.patch["metadata"]
    assert metadata["labels"] == {"vm.novasphere.dev/wukong": "vm1", "vm.novasphere.dev/released-from": None}
    assert metadata["annotations"] == {"vm.novasphere.dev/wukong-uid": NEW_UID}
    assert metadata["ownerReferences"] is None  # Retain
    assert metadata["resourceVersion"] == "5"


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (disk("data", "500Gi", storageClassName="longhorn-ssd", boot=True), "its StorageClass is longhorn"),
        (disk("data", "100Gi", storageClassName="longhorn", boot=True), "it holds 500Gi, more than the 100Gi"),
    ],
    ids=["another-class", "smaller"],
)
def test_a_retained_volume_that_does_not_fit_is_a_name_conflict(data, why):
    observed = recreated(converged(live(DATA)), live(data))
    assert planning.plan(observed) == []
    degraded = _condition(status.compute(observed, NOW), "Degraded")
    assert degraded["reason"] == "NameConflict"
    assert why in degraded["message"]


def test_a_volume_still_owned_by_a_deleted_wukong_is_never_taken_back():
    obj = live(DATA, volumeRetentionPolicy={"whenDeleted": "Delete"})
    observed = recreated(converged(obj), live(DATA))
    assert planning.plan(observed) == [], "the garbage collector is deleting it"


@pytest.mark.parametrize(("policy", "owned"), [("Delete", True), ("Retain", False)])
def test_changing_the_retention_policy_moves_the_owner_reference(policy, owned):
    before = "Retain" if policy == "Delete" else "Delete"
    observed = converged(live(DATA, volumeRetentionPolicy={"whenDeleted": before}))
    observed = dataclasses.replace(observed, **{"wukong": live(DATA, volumeRetentionPolicy={"whenDeleted": policy})})
    [change] = planning.plan(observed)
    assert isinstance(change, SetRetention) and change.delete_with_owner is owned
    references = change.patch["metadata"]["ownerReferences"]
    assert (references == [OWNER]) if owned else references is None


def test_the_volumes_of_a_deleted_wukong_are_released_unless_the_collector_owns_them():
    retained = converged(live(DATA))
    deleting = converged(live(DATA, volumeRetentionPolicy={"whenDeleted": "Delete"}))
    assert [(a.kind, a.name) for a in planning.release_retained("vm1", {}, retained.pvcs)] == [
        ("PersistentVolumeClaim", "vm1-data")
    ]
    assert planning.release_retained("vm1", {}, deleting.pvcs) == []


def test_a_vm_stopped_by_its_user_is_not_started_again():
    observed = converged(live(DATA))
    observed.vm["spec"]["runStrategy"] = "Halted"  # virtctl stop
    assert planning.plan(observed) == []


def test_a_changed_start_strategy_is_applied_to_the_vm():
    observed = converged(live(DATA))
    observed.vm["spec"]["runStrategy"] = "Halted"
    observed = dataclasses.replace(observed, **{"wukong": live(DATA, startStrategy={"runStrategy": "Always"})})
    [update] = planning.plan(observed)
    assert isinstance(update, UpdateVM)
    assert update.patch["spec"]["runStrategy"] == "Always"
    assert update.patch["metadata"]["annotations"] == {"vm.novasphere.dev/start-strategy": '{"runStrategy":"Always"}'}


# -- changes to a running VM -----------------------------------------------------------------------------
def running(observed: Observed, restart_required: bool = False) -> Observed:
    """The instance KubeVirt started from the VM's template, and its judgment of later template changes."""
    vmi = {"metadata": {"name": "vm1-vm"}, "spec": copy.deepcopy(observed.vm["spec"]["template"]["spec"])}
    vm = copy.deepcopy(observed.vm)
    if restart_required:
        vm["status"]["conditions"] = [{"type": "RestartRequired", "status": "True", "message": "non-live change"}]
    return dataclasses.replace(observed, **{"vm": vm, "vmi": vmi})


def changed(observed: Observed, obj: dict, **children_) -> Observed:
    return dataclasses.replace(observed, **{"wukong": obj, **children_})


def test_a_change_that_waits_for_a_restart_is_named_and_ready_stays_true():
    before = running(converged(live(SYSTEM, DATA, cpu=8, memory="8Gi")), restart_required=True)
    after = converged(live(SYSTEM, disk("logs", "10Gi", storageClassName="longhorn"), cpu=12, memory="16Gi"))
    observed = changed(before, after.wukong, pvcs=after.pvcs)
    computed = status.compute(observed, NOW)
    restart = _condition(computed, "RestartRequired")
    assert restart["status"] == "True"
    assert restart["message"] == (
        'cpu 8→12, memory 8Gi→16Gi, disk "logs" added, disk "data" removed; restart the VM to apply '
        "(virtctl restart vm1-vm)"
    )
    assert _condition(computed, "Ready")["status"] == "True"


def test_without_kubevirt_asking_for_a_restart_nothing_is_pending():
    observed = running(converged(live(SYSTEM, cpu=2)))
    assert _condition(status.compute(observed, NOW), "RestartRequired")["status"] == "False"
    stopped = dataclasses.replace(observed, **{"vmi": None})
    assert _condition(status.compute(stopped, NOW), "RestartRequired")["reason"] == "NotRunning"


def test_a_restart_kubevirt_asks_for_that_the_spec_does_not_explain_quotes_kubevirt():
    observed = running(converged(live(SYSTEM)), restart_required=True)
    assert _condition(status.compute(observed, NOW), "RestartRequired")["message"].startswith(
        "KubeVirt reports non-live change; restart the VM"
    )


def test_with_hotplug_a_disk_added_to_a_running_vm_becomes_a_hotpluggable_scsi_volume():
    before = running(converged(live(SYSTEM)))
    logs = disk("logs", "10Gi", storageClassName="longhorn")
    after = converged(live(SYSTEM, logs))
    observed = changed(before, after.wukong, pvcs=after.pvcs)
    [update] = planning.plan(observed, hotplug_disks=True)
    template = update.patch["spec"]["template"]["spec"]
    assert template["volumes"][1] == {
        "name": "logs",
        "persistentVolumeClaim": {"claimName": "vm1-logs", "hotpluggable": True},
    }
    assert template["domain"]["devices"]["disks"][1]["disk"] == {"bus": "scsi"}
    assert template["volumes"][0] == {"name": "system", "dataVolume": {"name": "vm1-system"}}
    [cold] = planning.plan(observed)
    assert "hotpluggable" not in cold.patch["spec"]["template"]["spec"]["volumes"][1]["persistentVolumeClaim"]


def test_a_hotplugged_disk_stays_hotpluggable_and_needs_no_restart():
    logs = disk("logs", "10Gi", storageClassName="longhorn")
    observed = converged(live(SYSTEM, logs))
    vm = built_vm(observed.wukong, hotplug={"logs"})
    vm["metadata"]["resourceVersion"] = "8"
    observed = dataclasses.replace(observed, **{"vm": vm})
    assert planning.plan(observed) == []  # hotplug off now: what is hotpluggable stays so
    vmi = {"spec": copy.deepcopy(vm["spec"]["template"]["spec"])}
    vmi["spec"]["volumes"].pop()  # not attached yet
    assert restarts.pending(dataclasses.replace(observed, **{"vmi": vmi})) == []


def never_bound(pvc: dict) -> dict:
    pvc = copy.deepcopy(pvc)
    pvc["metadata"].update(uid=f"uid-{pvc['metadata']['name']}", resourceVersion="4")
    pvc["status"] = {"phase": "Pending"}
    return pvc


def test_a_missing_storage_class_is_degraded_and_names_disk_and_class():
    obj = live(SYSTEM, disk("data", "5Gi", storageClassName="longhron"))
    observed = converged(obj)
    pvcs = {**observed.pvcs, "vm1-data": never_bound(observed.pvcs["vm1-data"])}
    degraded = _condition(status.compute(dataclasses.replace(observed, **{"pvcs": pvcs, "vm": None}), NOW), "Degraded")
    assert degraded["reason"] == "StorageClassNotFound"
    assert degraded["message"].startswith("disk data asks for StorageClass longhron, which does not exist")


def test_a_volume_that_never_bound_is_replaced_when_its_class_is_corrected():
    typo = converged(live(SYSTEM, disk("data", "5Gi", storageClassName="longhron")))
    pvc = never_bound(typo.pvcs["vm1-data"])
    observed = dataclasses.replace(
        typo, **{"wukong": live(SYSTEM, disk("data", "5Gi", storageClassName="longhorn")), "vm": None}
    )
    observed = dataclasses.replace(observed, **{"pvcs": {**typo.pvcs, "vm1-data": pvc}})
    [replace] = planning.plan(observed)
    assert replace == planning.Replace(
        "PersistentVolumeClaim",
        "vm1-data",
        "data",
        "uid-vm1-data",
        "4",
        "it never bound and its StorageClass is longhron and the disk asks for longhorn",
    )
    deleting = copy.deepcopy(pvc)
    deleting["metadata"]["deletionTimestamp"] = NOW
    waiting = dataclasses.replace(observed, **{"pvcs": {**typo.pvcs, "vm1-data": deleting}})
    assert planning.plan(waiting) == []  # nothing is created until the old claim is gone


def test_a_volume_that_bound_is_never_replaced_and_the_refusal_is_reported():
    observed = converged(live(SYSTEM, DATA))
    observed = changed(observed, live(SYSTEM, disk("data", "500Gi", storageClassName="longhorn-hdd")))
    assert not any(isinstance(a, planning.Replace) for a in planning.plan(observed))
    degraded = _condition(status.compute(observed, NOW), "Degraded")
    assert degraded["reason"] == "VolumeImmutable"
    assert "has bound and may hold data, so it is never replaced" in degraded["message"]


def test_a_data_volume_whose_import_never_started_is_replaced_for_another_image():
    obj = live(disk("system", "80Gi", storageClassName="longhorn", boot=True, image="docker://a/typo:1"))
    dv = built_data_volume(obj, Observed(obj).spec.disks[0])
    dv["metadata"].update(uid="uid-dv", resourceVersion="3")
    dv["status"] = {"phase": "ImportScheduled"}
    fixed = live(disk("system", "80Gi", storageClassName="longhorn", boot=True, image="docker://a/fixed:1"))
    [replace] = planning.plan(Observed(fixed, data_volumes={"vm1-system": dv}, storage_classes=CLASSES_BY_NAME))
    assert (replace.kind, replace.uid, replace.resource_version) == ("DataVolume", "uid-dv", "3")


def test_status_counts_the_disks_and_adds_up_their_sizes_exactly():
    computed = status.compute(converged(live(SYSTEM, DATA)), NOW)
    assert (computed["diskCount"], computed["totalSize"]) == (2, "580Gi")
    mixed = status.compute(converged(live(disk("a", "1G", storageClassName="longhorn", boot=True))), NOW)
    assert mixed["totalSize"] == "1G"


# -- the rest of the VM: cloud-init, SSH keys, networks, placement ----------------------------------------
GUEST = {
    "sshKeySecret": "keys",
    "cloudInitUser": {"name": "fedora", "password": "pw", "groups": ["wheel"]},
    "networks": [
        {"name": "lan", "type": "bridge", "bridgeName": "br-lan", "vlanId": 10, "ipConfig": {"mode": "dhcp"}},
        {
            "name": "corp",
            "type": "bridge",
            "nadName": "corporate",
            "ipConfig": {"mode": "static", "address": "10.0.0.5/24"},
        },
    ],
    "highAvailability": {"antiAffinity": True, "nodeSelector": {"zone": "a"}, "restartPolicy": "OnFailure"},
}


LAN_ALLOWED = Policy.from_object(
    {
        "metadata": {"name": "network-team"},
        "spec": {
            "namespaceSelector": {},
            "networks": {"hostNetworks": [{"type": "bridge", "interface": "br-lan", "vlans": ["10"]}]},
        },
    }
)


def with_guest_facts(
    observed: Observed,
    multus: bool = True,
    nads: dict | None = None,
    keys: bool = True,
    policies: tuple[Policy, ...] = (LAN_ALLOWED,),
) -> Observed:
    found = {"vm1-lan": None, "corporate": {"metadata": {"name": "corporate"}}} if nads is None else nads
    scope = Scope.of(policies, observed.namespace)
    return dataclasses.replace(
        observed, **{"multus": multus, "nads": found, "secrets": {"keys": keys}, "policy_scope": scope}
    )


def test_a_vm_with_every_guest_field_is_valid_for_the_real_kubevirt_schema():
    obj = live(SYSTEM, **GUEST)
    observed = with_guest_facts(dataclasses.replace(converged(obj), **{"vm": None}))
    actions = planning.plan(observed)
    kinds = [(type(a).__name__, getattr(a, "kind", None)) for a in actions]
    assert kinds == [("Create", "NetworkAttachmentDefinition"), ("ApplySecret", None), ("Create", "VirtualMachine")]
    vm = actions[-1].object
    jsonschema.validate(vm, upstream.strict_schema(upstream.VIRTUAL_MACHINE))
    template = vm["spec"]["template"]
    assert vm["spec"]["runStrategy"] == "RerunOnFailure"
    assert [n["name"] for n in template["spec"]["networks"]] == ["default", "lan", "corp"]
    assert template["spec"]["networks"][2]["multus"] == {"networkName": "corporate"}
    secret = actions[1].secret
    assert (
        template["metadata"]["annotations"]["vm.novasphere.dev/cloud-init-digest"]
        == (secret["metadata"]["annotations"]["vm.novasphere.dev/cloud-init-digest"])
    )
    assert set(secret["data"]) == {"userdata", "networkdata"}


@pytest.mark.parametrize(
    ("facts", "reason"),
    [
        ({"multus": False}, "MultusNotInstalled"),
        ({"nads": {"vm1-lan": None, "corporate": None}}, "NetworkNotFound"),
        ({"keys": False}, "SSHKeySecretNotFound"),
    ],
)
def test_what_the_cluster_lacks_stops_the_vm_and_is_reported(facts, reason):
    observed = with_guest_facts(dataclasses.replace(converged(live(SYSTEM, **GUEST)), **{"vm": None}), **facts)
    assert not any(getattr(a, "kind", None) == "VirtualMachine" for a in planning.plan(observed))
    assert _condition(status.compute(observed, NOW), "Degraded")["reason"] == reason


def test_the_same_spec_gives_the_same_secret_so_a_converged_vm_needs_no_write():
    obj = live(SYSTEM, **GUEST)
    first = with_guest_facts(dataclasses.replace(converged(obj), **{"vm": None}))
    vm = copy.deepcopy(planning.plan(first)[-1].object)
    vm["metadata"]["resourceVersion"] = "9"
    settled = dataclasses.replace(
        with_guest_facts(converged(obj)),
        **{
            "vm": vm,
            "nads": {
                "vm1-lan": {
                    "metadata": {"name": "vm1-lan", "ownerReferences": [ownership.owner_reference(obj)]},
                    "spec": made_networks(first)[0][1]["spec"],
                },
                "corporate": {},
            },
        },
    )
    assert planning.plan(settled) == []


def test_placement_the_wukong_no_longer_asks_for_is_removed_from_the_vm():
    obj = live(SYSTEM, **GUEST)
    first = with_guest_facts(dataclasses.replace(converged(obj), **{"vm": None}))
    vm = copy.deepcopy(planning.plan(first)[-1].object)
    vm["metadata"]["resourceVersion"] = "9"
    guest = copy.deepcopy(GUEST)
    del guest["highAvailability"]["nodeSelector"], guest["highAvailability"]["antiAffinity"]
    changed = with_guest_facts(dataclasses.replace(converged(live(SYSTEM, **guest)), **{"vm": vm}))
    [update] = [a for a in planning.plan(changed) if isinstance(a, UpdateVM)]
    assert update.patch["spec"]["template"]["spec"]["nodeSelector"] is None
    assert update.patch["spec"]["template"]["spec"]["affinity"] is None


def test_a_host_network_no_policy_allows_gets_no_nad_and_no_vm_and_says_which_rule():
    observed = with_guest_facts(dataclasses.replace(converged(live(SYSTEM, **GUEST)), **{"vm": None}), policies=())
    assert [getattr(a, "kind", None) for a in planning.plan(observed) if isinstance(a, Create)] == []
    degraded = _condition(status.compute(observed, NOW), "Degraded")
    assert degraded["reason"] == "NetworkNotAllowed"
    assert "network lan: spec.networks[0].bridgeName: host network" in degraded["message"]
    assert "networks.hostNetworks" in degraded["message"]


def test_a_nad_made_before_a_policy_refused_its_network_is_kept_unwritten_and_blocks_nothing():
    obj = live(SYSTEM, **GUEST)
    made = made_networks(with_guest_facts(converged(obj)))[0][1]
    kept = {"metadata": {"name": "vm1-lan", "ownerReferences": [ownership.owner_reference(obj)]}, "spec": made["spec"]}
    nads = {"vm1-lan": kept, "corporate": {}}
    observed = with_guest_facts(dataclasses.replace(converged(obj), **{"vm": None}), nads=nads, policies=())
    assert [type(a).__name__ for a in planning.plan(observed)] == ["ApplySecret", "Create"]
    changed = copy.deepcopy(GUEST)
    changed["networks"][0]["vlanId"] = 11  # a change would be a write: refused
    observed = with_guest_facts(converged(live(SYSTEM, **changed)), nads=nads, policies=())
    assert not [a for a in planning.plan(observed) if isinstance(a, planning.UpdateNetwork)]
    assert _condition(status.compute(observed, NOW), "Degraded")["reason"] == "NetworkNotAllowed"


def test_another_namespaces_nad_no_policy_lists_is_refused_without_being_looked_up():
    guest = copy.deepcopy(GUEST)
    guest["networks"][1]["nadName"] = "kube-system/host-net"
    observed = with_guest_facts(
        dataclasses.replace(converged(live(SYSTEM, **guest)), **{"vm": None}), nads={"vm1-lan": None}
    )
    refused = observed.refused_networks
    assert list(refused) == ["corp"]
    assert refused["corp"].startswith(
        'spec.networks[1].nadName: NetworkAttachmentDefinition "host-net" is in namespace'
    )
    assert _condition(status.compute(observed, NOW), "Degraded")["reason"] == "NetworkNotAllowed"
    assert not any(getattr(a, "kind", None) == "VirtualMachine" for a in planning.plan(observed))


def _written(phase: str, generation: int = 1, **conditions: str) -> dict:
    return {
        "phase": phase,
        "observedGeneration": generation,
        "conditions": [{"type": kind, "status": value} for kind, value in conditions.items()],
    }


@pytest.mark.parametrize(
    ("before", "after", "at_once"),
    [
        # progress on the way up waits for the next write (usually the one that says Running)
        (_written("Pending", VolumesBound="False"), _written("Creating", VolumesBound="True"), False),
        (_written("Pending", VolumesBound="False"), _written("Pending", VolumesBound="True"), False),
        # what a user watches for goes out at once
        (_written("Creating", Ready="False"), _written("Running", Ready="True"), True),
        (_written("Running", VolumesBound="True"), _written("Pending", VolumesBound="False"), True),
        (_written("Running", VolumesBound="True"), _written("Running", VolumesBound="False"), True),
        (_written("Creating"), _written("Pending"), True),
        (_written("Running"), _written("Running", generation=2), True),
        (_written("Running", Degraded="False"), _written("Running", Degraded="True"), True),
        (
            _written("Pending", VolumesBound="False", Degraded="False"),
            _written("Creating", VolumesBound="True", Degraded="True"),
            True,
        ),
        # nothing but details
        (_written("Running", Ready="True"), _written("Running", Ready="True"), False),
    ],
)
def test_status_writes_at_once_only_what_a_user_watches_for(before, after, at_once):
    assert status.urgent(before, after) is at_once


# -- lost volumes ----------------------------------------------------------------------------------------
def written(observed: Observed, annotation: str | None = None, **gone: str) -> Observed:
    """The observation after the status was written and the named volumes (kind per name) were deleted."""
    obj = copy.deepcopy(observed.wukong)
    obj["status"] = status.compute(observed, NOW)
    if annotation is not None:
        obj["metadata"]["annotations"] = {api.RECREATE_LOST_VOLUMES_ANNOTATION: annotation}
    pvcs = {n: o for n, o in observed.pvcs.items() if n not in gone}
    dvs = {n: o for n, o in observed.data_volumes.items() if gone.get(n) != "DataVolume"}
    return dataclasses.replace(observed, **{"wukong": obj, "pvcs": pvcs, "data_volumes": dvs})


def test_a_bound_volume_that_disappears_is_reported_lost_and_nothing_is_created_or_changed():
    lost = written(converged(live(SYSTEM, DATA)), **{"vm1-data": "PersistentVolumeClaim"})
    assert planning.plan(lost) == []  # no new claim, and the VM keeps its disks as they are
    computed = status.compute(lost, NOW)
    degraded = _condition(computed, "Degraded")
    assert degraded["reason"] == "VolumeLost"
    assert degraded["message"].startswith(
        "disk data lost its volume: PersistentVolumeClaim vm1-data had bound and is gone"
    )
    assert "kubectl annotate wukong vm1 vm.novasphere.dev/recreate-lost-volumes=data" in degraded["message"]
    assert computed["phase"] == "Error"
    [entry] = [v for v in computed["volumes"] if v["name"] == "data"]
    assert entry == {
        "name": "data",
        "pvcName": "vm1-data",
        "bound": False,
        "source": "pvc",
        "everBound": True,
        "lost": True,
    }


def test_the_loss_is_remembered_across_passes_from_the_status_alone():
    lost = written(converged(live(SYSTEM, DATA)), **{"vm1-data": "PersistentVolumeClaim"})
    again = written(lost)  # the status that said lost is now the only record
    assert planning.plan(again) == []
    assert _condition(status.compute(again, NOW), "Degraded")["reason"] == "VolumeLost"


def test_a_claim_that_never_bound_and_disappears_is_simply_created_again():
    observed = converged(live(SYSTEM, DATA))
    pending = dataclasses.replace(
        observed, **{"pvcs": {**observed.pvcs, "vm1-data": never_bound(observed.pvcs["vm1-data"])}, "vm": None}
    )
    gone = written(pending, **{"vm1-data": "PersistentVolumeClaim"})
    assert [(type(a), a.kind) for a in planning.plan(gone)] == [(Create, "PersistentVolumeClaim")]


def test_the_acknowledgement_creates_one_new_empty_claim_and_covers_one_loss():
    lost = written(converged(live(SYSTEM, DATA)), **{"vm1-data": "PersistentVolumeClaim"})
    asked = written(lost, annotation="data")
    [create] = planning.plan(asked)
    assert (type(create), create.kind, create.object["metadata"]["name"]) == (
        Create,
        "PersistentVolumeClaim",
        "vm1-data",
    )
    made = asked.with_child("PersistentVolumeClaim", never_bound(create.object))
    computed = status.compute(made, NOW)
    [entry] = [v for v in computed["volumes"] if v["name"] == "data"]
    assert (entry["everBound"], entry.get("lost"), entry.get("acknowledgementSpent")) == (False, None, True)
    assert _condition(computed, "Degraded")["status"] == "False"
    # the new claim binds, and is lost in turn while the annotation is still there: reported, not re-created
    made = written(made, annotation="data")
    rebound = dataclasses.replace(made, **{"pvcs": {**made.pvcs, "vm1-data": bound(create.object)}})
    rebound = written(written(rebound, annotation="data"), annotation="data", **{"vm1-data": "PersistentVolumeClaim"})
    assert planning.plan(rebound) == []
    degraded = _condition(status.compute(rebound, NOW), "Degraded")
    assert degraded["reason"] == "VolumeLost"
    assert "named this disk before this loss was reported" in degraded["message"]


def test_removing_the_annotation_clears_the_mark_so_a_later_acknowledgement_counts():
    lost = written(converged(live(SYSTEM, DATA)), **{"vm1-data": "PersistentVolumeClaim"})
    asked = written(lost, annotation="data")
    [create] = planning.plan(asked)
    made = asked.with_child("PersistentVolumeClaim", bound(create.object))
    cleared = written(made, annotation="")
    assert "acknowledgementSpent" not in next(v for v in status.compute(cleared, NOW)["volumes"] if v["name"] == "data")
    lost_again = written(written(cleared, annotation=""), annotation="data", **{"vm1-data": "PersistentVolumeClaim"})
    assert [type(a) for a in planning.plan(lost_again)] == [Create]


def test_an_image_disk_whose_claim_is_lost_is_re_imported_only_when_asked():
    observed = converged(live(SYSTEM, DATA))
    lost = written(observed, **{"vm1-system": "PersistentVolumeClaim"})  # the DataVolume is still there
    assert planning.plan(lost) == []
    degraded = _condition(status.compute(lost, NOW), "Degraded")
    assert degraded["reason"] == "VolumeLost"
    assert (
        "accept a new volume imported again from docker://quay.io/containerdisks/fedora:40: kubectl annotate"
        in (degraded["message"])
    )
    [replace] = planning.plan(written(lost, annotation="system"))
    assert (type(replace), replace.kind, replace.uid) == (planning.Replace, "DataVolume", "uid-vm1-system")
    gone = written(written(lost, annotation="system"), annotation="system", **{"vm1-system": "DataVolume"})
    [create] = planning.plan(gone)
    assert (create.kind, create.object["spec"]["source"]) == (
        "DataVolume",
        {"registry": {"url": "docker://quay.io/containerdisks/fedora:40"}},
    )
    # The new DataVolume, before CDI made its claim: an import under way, not a loss to act on again.
    importing = copy.deepcopy(create.object)
    importing["metadata"].update(uid="uid-new", resourceVersion="20")
    importing["status"] = {"phase": "ImportScheduled"}
    made = gone.with_child("DataVolume", importing)
    after = written(made, annotation="system")
    assert planning.plan(after) == []
    [entry] = [v for v in after.wukong["status"]["volumes"] if v["name"] == "system"]
    assert (entry.get("lost"), entry.get("acknowledgementSpent")) == (None, True)
    # Even a cache that shows the import done before its claim only reports the loss: the acknowledgement is spent.
    raced = dataclasses.replace(after, **{"data_volumes": {"vm1-system": succeeded(importing)}})
    assert planning.plan(raced) == []


def test_an_acknowledgement_set_before_the_loss_authorises_nothing():
    healthy = written(written(converged(live(SYSTEM, DATA)), annotation="data"), annotation="data")  # "just in case"
    assert next(v for v in healthy.wukong["status"]["volumes"] if v["name"] == "data")["acknowledgementSpent"]
    lost = written(healthy, annotation="data", **{"vm1-data": "PersistentVolumeClaim"})
    assert planning.plan(lost) == []
    assert _condition(status.compute(lost, NOW), "Degraded")["reason"] == "VolumeLost"


@pytest.mark.parametrize("mark", ["lost", "acknowledgementSpent"])
def test_the_record_of_a_loss_or_a_spent_acknowledgement_is_written_at_once(mark):
    before = {**_written("Running"), "volumes": [{"name": "data", "everBound": True}]}
    after = {**_written("Running"), "volumes": [{"name": "data", "everBound": True, mark: True}]}
    assert status.urgent(before, after) is True
    assert status.urgent(after, after) is False


@pytest.mark.parametrize(
    ("value", "disks"),
    [("data", {"data"}), ("data, logs", {"data", "logs"}), (" ,data,,", {"data"}), ("", set())],
    ids=["one", "two-with-space", "stray-commas", "empty"],
)
def test_the_acknowledgement_annotation_is_a_comma_separated_list_of_disk_names(value, disks):
    obj = live(DATA)
    obj["metadata"]["annotations"] = {api.RECREATE_LOST_VOLUMES_ANNOTATION: value}
    assert Observed(obj).recreate_lost == disks


@pytest.mark.parametrize("said", [None, "true"], ids=["made-before-the-annotation", "set-to-collect"])
def test_a_data_volume_not_marked_for_keeping_is_asked_to_be_kept(said):
    observed = converged(live(SYSTEM, DATA))
    dv = copy.deepcopy(observed.data_volumes["vm1-system"])
    if said is None:
        del dv["metadata"]["annotations"][api.CDI_DELETE_AFTER_COMPLETION]
    else:
        dv["metadata"]["annotations"][api.CDI_DELETE_AFTER_COMPLETION] = said
    [keep] = planning.plan(dataclasses.replace(observed, **{"data_volumes": {"vm1-system": dv}}))
    assert keep == planning.KeepDataVolume(
        "vm1-system",
        "system",
        {"metadata": {"resourceVersion": "6", "annotations": {api.CDI_DELETE_AFTER_COMPLETION: "false"}}},
    )
