"""What a user reads first: the phase, the Ready condition and the per-disk table, for a Wukong that waits, is
blocked, or runs. Pure: observations in, status out."""

from __future__ import annotations

import copy
import dataclasses

import jsonschema
import pytest

from reconciler import planning, status
from reconciler.observation import Observed
from tests.builders import disk
from tests.unit.test_planning import (
    CLASSES_BY_NAME,
    DATA,
    GUEST,
    NOW,
    SYSTEM,
    _condition,
    converged,
    live,
    with_guest_facts,
)
from wukong import schema


def without_vm(observed: Observed) -> Observed:
    return dataclasses.replace(observed, **{"vm": None})


def guest(**facts) -> Observed:
    """Every volume bound, no VM yet, the guest's facts as given (by default: everything there and allowed)."""
    return with_guest_facts(without_vm(converged(live(SYSTEM, **GUEST))), **facts)


def never_starting(computed: dict) -> None:
    assert "starting" not in str(computed), "a Wukong without a VM reads as starting"


@pytest.mark.parametrize(
    ("facts", "reason", "named"),
    [
        ({"keys": False}, "SSHKeySecretNotFound", "Secret keys"),
        ({"nads": {"vm1-lan": None, "corporate": None}}, "NetworkNotFound", "NetworkAttachmentDefinition corporate"),
        ({"multus": False}, "MultusNotInstalled", "install Multus"),
        ({"policies": ()}, "NetworkNotAllowed", "network lan"),
    ],
    ids=["secret", "nad", "multus", "policy"],
)
def test_a_wukong_the_cluster_lacks_something_for_is_blocked_on_it_and_never_starting(facts, reason, named):
    observed = guest(**facts)
    assert not any(getattr(a, "kind", None) == "VirtualMachine" for a in planning.plan(observed))
    computed = status.compute(observed, NOW)
    assert computed["phase"] == "Blocked"
    ready = _condition(computed, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", reason)
    assert ready["message"].startswith("blocked: no virtual machine is created until this is fixed: ")
    assert named in ready["message"]
    assert _condition(computed, "Degraded")["reason"] == reason
    never_starting(computed)


def test_a_missing_nad_and_a_missing_secret_are_both_named_with_what_to_do():
    computed = status.compute(guest(keys=False, nads={"vm1-lan": None, "corporate": None}), NOW)
    assert computed["phase"] == "Blocked"
    ready = _condition(computed, "Ready")
    assert ready["reason"] == "NetworkNotFound"
    assert "names NetworkAttachmentDefinition corporate, which does not exist in namespace default" in ready["message"]
    assert "names Secret keys, which does not exist in namespace default; create it" in ready["message"]
    never_starting(computed)


def test_once_what_blocked_it_is_there_the_vm_is_created_and_only_then_reads_as_starting():
    blocked = guest(keys=False)
    assert status.compute(blocked, NOW)["phase"] == "Blocked"
    unblocked = guest()
    computed = status.compute(unblocked, NOW)
    assert computed["phase"] == "Creating"
    assert _condition(computed, "Ready")["message"] == "every volume is bound; the virtual machine is being created"
    never_starting(computed)
    vm = copy.deepcopy(planning.plan(unblocked)[-1].object)
    vm["status"] = {"printableStatus": "Starting"}
    started = status.compute(dataclasses.replace(unblocked, **{"vm": vm}), NOW)
    assert started["phase"] == "Creating"
    assert _condition(started, "Ready")["message"] == "the virtual machine is starting (KubeVirt: Starting)"


def test_a_missing_storage_class_blocks_while_the_other_volumes_bind():
    typo = disk("data", "500Gi", storageClassName="longhron", boot=False)
    observed = Observed(live(SYSTEM, typo), storage_classes=CLASSES_BY_NAME)
    computed = status.compute(observed, NOW)
    assert computed["phase"] == "Blocked"
    ready = _condition(computed, "Ready")
    assert ready["reason"] == "StorageClassNotFound"
    assert "disk data asks for StorageClass longhron, which does not exist" in ready["message"]


def test_volumes_that_bind_on_their_own_are_pending_not_blocked():
    computed = status.compute(Observed(live(SYSTEM, DATA), storage_classes=CLASSES_BY_NAME), NOW)
    assert computed["phase"] == "Pending"
    assert _condition(computed, "Ready")["reason"] == "Pending"
    assert _condition(computed, "Ready")["message"] == "waiting for volumes to bind"


def test_a_vm_name_taken_by_someone_else_blocks_and_the_foreign_vm_is_not_called_ours():
    observed = converged(live(SYSTEM))
    foreign = copy.deepcopy(observed.vm)
    foreign["metadata"]["ownerReferences"] = []
    computed = status.compute(dataclasses.replace(observed, **{"vm": foreign}), NOW)
    assert computed["phase"] == "Blocked"
    ready = _condition(computed, "Ready")
    assert ready["reason"] == "NameConflict"
    assert ready["message"].startswith("blocked: no virtual machine is created until this is fixed: VirtualMachine")


def test_a_lost_volume_is_an_error_even_when_something_else_blocks():
    observed = converged(live(SYSTEM, DATA))
    obj = copy.deepcopy(observed.wukong)
    obj["status"] = status.compute(observed, NOW)
    obj["spec"]["sshKeySecret"] = "keys"
    pvcs = {n: o for n, o in observed.pvcs.items() if n != "vm1-data"}
    lost = dataclasses.replace(observed, **{"wukong": obj, "pvcs": pvcs, "vm": None, "secrets": {"keys": False}})
    assert status.compute(lost, NOW)["phase"] == "Error"


def test_the_disk_table_is_a_header_and_one_aligned_line_per_disk():
    assert status.compute(converged(live(SYSTEM, DATA)), NOW)["diskTable"] == [
        "DISK    SIZE   CAPACITY  BOUND  SOURCE      VOLUME      STATE",
        "system  80Gi   80Gi      true   dataVolume  vm1-system  DataVolume Succeeded",
        "data    500Gi  500Gi     true   pvc         vm1-data    PVC Bound",
    ]


def test_the_disk_table_says_what_each_waiting_disk_waits_for():
    typo = disk("data", "500Gi", storageClassName="longhron", boot=False)
    table = status.compute(Observed(live(SYSTEM, typo), storage_classes=CLASSES_BY_NAME), NOW)["diskTable"]
    assert [r.split(maxsplit=6)[-1] for r in table[1:]] == [
        "not created yet",
        "not created yet, no StorageClass longhron",
    ]
    assert [r.split()[1:4] for r in table[1:]] == [["-", "-", "false"], ["-", "-", "false"]]


def test_the_status_with_its_disk_table_fits_the_crds_own_schema_at_the_limits():
    longest = [disk(f"{i:02d}" + "d" * 61, "999999Ti", storageClassName="longhorn", boot=i == 0) for i in range(16)]
    observed = dataclasses.replace(converged(live(*longest)), **{"vm": None, "secrets": {"keys": False}})
    computed = status.compute(observed, NOW)
    assert len(computed["diskTable"]) == 17
    status_schema = schema.openapi_schema()["properties"]["status"]
    jsonschema.validate(computed, status_schema)


def kstatus_view(computed: dict) -> tuple[tuple[str, str], tuple[str, str], str]:
    """(Reconciling, Stalled) as (status, reason), and Ready's status: what kstatus reads."""
    return (
        tuple(_condition(computed, "Reconciling")[k] for k in ("status", "reason")),
        tuple(_condition(computed, "Stalled")[k] for k in ("status", "reason")),
        _condition(computed, "Ready")["status"],
    )


@pytest.mark.parametrize(
    ("vm_status", "view"),
    [
        ({"printableStatus": "Running", "ready": True}, (("False", "Reconciled"), ("False", "AsExpected"), "True")),
        ({"printableStatus": "Starting"}, (("True", "Creating"), ("False", "AsExpected"), "False")),
        # the run state is its user's: a VM kept stopped is as done as a running one (kstatus: Current)
        ({"printableStatus": "Stopped"}, (("False", "Reconciled"), ("False", "AsExpected"), "True")),
    ],
    ids=["running", "starting", "stopped"],
)
def test_kstatus_reads_work_under_way_as_reconciling_and_a_stopped_vm_as_done(vm_status, view):
    observed = converged(live(SYSTEM))
    computed = status.compute(dataclasses.replace(observed, **{"vm": {**observed.vm, "status": vm_status}}), NOW)
    assert kstatus_view(computed) == view
    assert {c["observedGeneration"] for c in computed["conditions"]} == {3}


def test_kstatus_reads_a_blocked_wukong_as_stalled_with_the_problem_and_never_reconciling():
    computed = status.compute(guest(keys=False), NOW)
    assert kstatus_view(computed) == (("False", "Stalled"), ("True", "SSHKeySecretNotFound"), "False")
    assert _condition(computed, "Stalled")["message"] == _condition(computed, "Degraded")["message"]


def test_kstatus_reads_a_wukong_creating_its_vm_as_reconciling_with_ready_s_message():
    computed = status.compute(guest(), NOW)
    assert kstatus_view(computed) == (("True", "Creating"), ("False", "AsExpected"), "False")
    assert _condition(computed, "Reconciling")["message"] == _condition(computed, "Ready")["message"]
