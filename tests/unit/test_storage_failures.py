"""Imports that progress or keep failing, and expansions the driver refuses: what status says, what is planned, and
what admission lets a user do about it."""

from __future__ import annotations

import copy
import dataclasses

import pytest

from reconciler import planning, status
from reconciler.assess import assess
from reconciler.observation import Observed
from reconciler.planning import Expand, Replace
from tests.builders import disk, facts, wukong
from tests.unit.test_planning import DATA, NOW, SYSTEM, converged, live
from webhook.validation import validate

FIXED = "docker://quay.io/containerdisks/fedora:41"


def _condition(computed: dict, kind: str) -> dict:
    return next(c for c in computed["conditions"] if c["type"] == kind)


def _entry(computed: dict, name: str) -> dict:
    return next(v for v in computed["volumes"] if v["name"] == name)


def importing(progress: str = "N/A", restarts: int = 0, running: tuple[str, str] | None = None) -> Observed:
    """The system disk's import under way: the claim CDI made has bound, the DataVolume has not succeeded."""
    observed = dataclasses.replace(converged(live(SYSTEM)), vm=None)
    dv = copy.deepcopy(observed.data_volumes["vm1-system"])
    dv["status"] = {"phase": "ImportInProgress", "progress": progress, "claimName": "vm1-system"}
    if restarts:
        dv["status"]["restartCount"] = restarts
    if running:
        condition = {"type": "Running", "status": "False", "reason": running[0], "message": running[1]}
        dv["status"]["conditions"] = [condition]
    return dataclasses.replace(observed, data_volumes={"vm1-system": dv})


PULL_FAILED = ("ImagePullFailed", "Unable to process data: failed to pull image: manifest unknown")


# -- import progress -------------------------------------------------------------------------------------
def test_an_import_under_way_shows_cdis_progress_per_volume_and_in_the_ready_message():
    computed = status.compute(importing("45.20%"), NOW)
    entry = _entry(computed, "system")
    assert (entry["importProgress"], entry["everBound"], entry.get("importRestartCount")) == ("45.20%", False, None)
    assert _condition(computed, "Ready")["message"] == "waiting for volumes: disk system importing 45.20%"
    assert "system (DataVolume ImportInProgress 45.20%)" in _condition(computed, "VolumesBound")["message"]


def test_a_finished_import_shows_no_progress():
    entry = _entry(status.compute(converged(live(SYSTEM)), NOW), "system")
    assert "importProgress" not in entry and entry["everBound"] is True


def test_an_import_restarted_three_times_is_not_yet_degraded():
    computed = status.compute(importing(restarts=3, running=PULL_FAILED), NOW)
    assert _entry(computed, "system")["importRestartCount"] == 3
    assert _condition(computed, "Degraded")["status"] == "False"


def test_an_import_restarted_more_than_cdis_threshold_is_degraded_quoting_cdis_reason():
    degraded = _condition(status.compute(importing(restarts=4, running=PULL_FAILED), NOW), "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "ImportFailing")
    assert (
        "restarted its importer 4 times; CDI reports ImagePullFailed: Unable to process data: failed to pull"
        in (degraded["message"])
    )
    assert "correct the disk's image" in degraded["message"]


def test_a_failing_import_whose_image_is_corrected_is_replaced():
    observed = importing(restarts=9, running=PULL_FAILED)
    fixed = live(disk("system", "80Gi", storageClassName="longhorn", boot=True, image=FIXED))
    observed = dataclasses.replace(observed, wukong=fixed)
    actions = planning.plan(observed)
    assert [(type(a), a.kind, a.name) for a in actions] == [(Replace, "DataVolume", "vm1-system")]
    computed = status.compute(observed, NOW)
    assert _condition(computed, "Degraded")["reason"] != "VolumeImmutable"


def test_a_finished_import_whose_image_changes_is_never_replaced():
    observed = converged(live(SYSTEM))
    fixed = live(disk("system", "80Gi", storageClassName="longhorn", boot=True, image=FIXED))
    observed = dataclasses.replace(observed, wukong=fixed)
    assert not any(isinstance(a, Replace) for a in planning.plan(observed))
    assert _condition(status.compute(observed, NOW), "Degraded")["reason"] == "VolumeImmutable"


def test_an_import_whose_importer_succeeded_holds_data_before_the_data_volume_says_so():
    observed = importing("100.0%")
    pvc = copy.deepcopy(observed.pvcs["vm1-system"])
    pvc["metadata"]["annotations"] = {"cdi.kubevirt.io/storage.pod.phase": "Succeeded"}
    observed = dataclasses.replace(observed, pvcs={"vm1-system": pvc})
    assert _entry(status.compute(observed, NOW), "system")["everBound"] is True


# -- expansion failure and recovery ----------------------------------------------------------------------
REFUSAL = 'resize volume "pvc-1" by resizer "driver.longhorn.io" failed: rpc error: code = OutOfRange desc = too big'


def grown_and_refused(size_now: str = "1Ti", state: str = "ControllerResizeInfeasible") -> Observed:
    """data grew from 500Gi to 1Ti, the claim asks for 1Ti, and the driver refused: the disk now asks for size_now."""
    observed = converged(live(SYSTEM, DATA))
    pvc = copy.deepcopy(observed.pvcs["vm1-data"])
    pvc["spec"]["resources"]["requests"]["storage"] = "1Ti"
    pvc["status"].update(
        allocatedResources={"storage": "1Ti"},
        allocatedResourceStatuses={"storage": state},
        conditions=[{"type": "ControllerResizeError", "status": "True", "message": REFUSAL}],
    )
    obj = live(SYSTEM, disk("data", size_now, storageClassName="longhorn"))
    return dataclasses.replace(observed, wukong=obj, pvcs={**observed.pvcs, "vm1-data": pvc})


def test_a_refused_expansion_is_degraded_with_the_drivers_reason_and_no_longer_resizing():
    computed = status.compute(grown_and_refused(), NOW)
    degraded = _condition(computed, "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "ExpansionFailed")
    assert f"to 1Ti failed: ControllerResizeInfeasible: {REFUSAL}; the volume keeps 500Gi" in degraded["message"]
    assert "Lower the disk's size to more than 500Gi" in degraded["message"]
    resizing = _condition(computed, "Resizing")
    assert (resizing["status"], resizing["reason"]) == ("False", "ExpansionFailed")
    entry = _entry(computed, "data")
    assert (entry["expansionFailed"], entry["resizeStatus"], entry["capacity"]) == (
        True,
        "ControllerResizeInfeasible",
        "500Gi",
    )


def test_a_resize_error_the_resizer_retries_is_reported_as_such():
    computed = status.compute(grown_and_refused(state="ControllerResizeInProgress"), NOW)
    degraded = _condition(computed, "Degraded")
    assert degraded["reason"] == "ExpansionFailed"
    assert "failed (the resizer retries): ControllerResizeError" in degraded["message"]


def test_a_disk_lowered_above_the_capacity_after_a_refusal_lowers_the_claims_request():
    observed = grown_and_refused("600Gi")
    assert planning.plan(observed) == [Expand("vm1-data", "data", "600Gi", "1Ti", recovery=True)]
    computed = status.compute(observed, NOW)
    assert "ShrinkRefused" not in _condition(computed, "Degraded")["message"]
    assert _condition(computed, "Resizing")["status"] == "True"


def test_once_the_lowered_request_fits_the_failure_clears():
    observed = converged(live(SYSTEM, disk("data", "600Gi", storageClassName="longhorn")))
    computed = status.compute(observed, NOW)
    assert _condition(computed, "Degraded")["status"] == "False"
    assert "expansionFailed" not in _entry(computed, "data")


@pytest.mark.parametrize("size", ["500Gi", "400Gi"], ids=["to-the-capacity", "below-it"])
def test_a_disk_lowered_to_or_below_the_capacity_reached_is_never_patched(size):
    observed = grown_and_refused(size)
    assert not any(isinstance(a, Expand) for a in planning.plan(observed))
    assert "ShrinkRefused" in {p.reason for p in status.problems(assess(observed))}


# -- admission -------------------------------------------------------------------------------------------
BOOT = disk("system", "20Gi", storageClassName="longhorn", boot=True, image="docker://quay.io/containerdisks/fedora:40")


def _stored(size: str, failed: bool, capacity: str = "500Gi") -> dict:
    obj = wukong(BOOT, disk("data", size, storageClassName="longhorn"))
    entry = {"name": "data", "everBound": True, "capacity": capacity, "size": size}
    if failed:
        entry.update(expansionFailed=True, resizeStatus="ControllerResizeInfeasible")
    obj["status"] = {"volumes": [entry]}
    return obj


def _errors(new_size: str, old: dict) -> list[str]:
    new = wukong(BOOT, disk("data", new_size, storageClassName="longhorn"))
    return [str(e) for e in validate(new, old, facts())[0]]


@pytest.mark.parametrize("size", ["600Gi", "1000Gi", "501Gi"])
def test_a_disk_whose_expansion_failed_may_be_lowered_above_the_capacity_reached(size):
    assert _errors(size, _stored("1Ti", failed=True)) == []


@pytest.mark.parametrize("size", ["500Gi", "400Gi"], ids=["to-the-capacity", "below-it"])
def test_a_disk_whose_expansion_failed_is_never_lowered_to_or_below_the_capacity_reached(size):
    assert _errors(size, _stored("1Ti", failed=True)) == [
        f'spec.disks[1].size: Forbidden: disk "data" cannot shrink from 1Ti to {size}: its expansion failed, and '
        f"its size may be lowered only to more than the capacity its volume reached (500Gi), as Kubernetes allows"
    ]


def test_a_disk_whose_expansion_did_not_fail_still_only_grows():
    assert _errors("600Gi", _stored("1Ti", failed=False)) == [
        'spec.disks[1].size: Forbidden: disk "data" cannot shrink from 1Ti to 600Gi; disks can only grow'
    ]


@pytest.mark.parametrize("capacity", [None, 12, "lots"], ids=["missing", "number", "not-a-quantity"])
def test_a_failure_without_a_readable_capacity_admits_no_lowering(capacity):
    old = _stored("1Ti", failed=True)
    old["status"]["volumes"][0]["capacity"] = capacity
    assert len(_errors("600Gi", old)) == 1


@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [
        ("restartCount", True, None),
        ("restartCount", "7", None),
        ("restartCount", 2**40, 2**31 - 1),
        ("progress", ["45%"], None),
        ("progress", "9" * 200, "9" * 61 + "..."),
    ],
    ids=["bool-count", "string-count", "huge-count", "list-progress", "long-progress"],
)
def test_odd_figures_from_a_data_volume_are_shown_within_the_status_schema_or_not_at_all(field, value, shown):
    observed = importing()
    observed.data_volumes["vm1-system"]["status"][field] = value
    entry = _entry(status.compute(observed, NOW), "system")
    key = {"restartCount": "importRestartCount", "progress": "importProgress"}[field]
    assert entry.get(key) == shown
