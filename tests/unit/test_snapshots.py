"""snapshotBeforeExpand, pure: what a pass plans and reports around the snapshot a growth waits for."""

from __future__ import annotations

import copy
import dataclasses

import pytest

from reconciler import planning, snapshots, status
from reconciler.observation import Observed, volumes
from reconciler.planning import Expand, PruneSnapshot, SetSnapshotRetention, TakeSnapshot
from reconciler.volumes import volume_snapshot
from tests.builders import disk, facts, wukong
from tests.unit.test_planning import NOW, SYSTEM, UID, converged, live
from webhook.validation import validate
from wukong import api
from wukong.spec import DELETE, Disk, WukongSpec

DEFAULT_CLASS = {
    "apiVersion": "snapshot.storage.k8s.io/v1",
    "kind": "VolumeSnapshotClass",
    "metadata": {"name": "longhorn-snapshot", "annotations": {api.DEFAULT_SNAPSHOT_CLASS_ANNOTATION: "true"}},
    "driver": "driver.longhorn.io",
    "deletionPolicy": "Delete",
}


def data(size: str = "500Gi", keep: int | None = 2) -> dict:
    extra = {} if keep is None else {"snapshotBeforeExpand": {"keep": keep}}
    return disk("data", size, storageClassName="longhorn", **extra)


def growing(keep: int | None = 2, classes: tuple = (DEFAULT_CLASS,), taken: dict | None = None, **spec) -> Observed:
    """A converged Wukong whose data disk was just grown from 500Gi to 1Ti."""
    observed = converged(live(SYSTEM, data(keep=keep), **spec))
    grown = live(SYSTEM, data("1Ti", keep=keep), **spec)
    return dataclasses.replace(
        observed, wukong=grown, snapshots=taken or {}, snapshot_classes=classes, snapshots_served=True
    )


def the_snapshot(observed: Observed, **status_: object) -> dict:
    """The snapshot the pass would take, as the API server and the snapshotter return it."""
    (action,) = [a for a in planning.plan(observed) if isinstance(a, TakeSnapshot)]
    made = copy.deepcopy(action.object)
    made["metadata"].update(uid=f"uid-{made['metadata']['name']}", resourceVersion="20", creationTimestamp=NOW)
    if status_:
        made["status"] = dict(status_)
    return made


def condition(computed: dict, kind: str) -> dict:
    return next(c for c in computed["conditions"] if c["type"] == kind)


def test_a_growth_asks_for_a_snapshot_first_and_does_not_expand_yet():
    observed = growing()
    actions = planning.plan(observed)
    assert [type(a) for a in actions] == [TakeSnapshot]
    snapshot = actions[0].object
    assert snapshot["spec"] == {
        "volumeSnapshotClassName": "longhorn-snapshot",
        "source": {"persistentVolumeClaimName": "vm1-data"},
    }
    metadata = snapshot["metadata"]
    assert metadata["labels"] == {
        api.WUKONG_LABEL: "vm1",
        api.DISK_LABEL: "data",
        api.MANAGED_BY_LABEL: api.MANAGED_BY,
    }
    assert metadata["annotations"] == {api.WUKONG_UID_ANNOTATION: UID, api.SNAPSHOT_SIZE_ANNOTATION: "500Gi"}
    assert "ownerReferences" not in metadata, "under Retain a snapshot outlives its Wukong"


def test_under_delete_the_snapshot_carries_the_wukongs_controller_reference():
    observed = growing(volumeRetentionPolicy={"whenDeleted": "Delete"})
    (action,) = planning.plan(observed)
    assert isinstance(action, TakeSnapshot)
    assert [r["uid"] for r in action.object["metadata"]["ownerReferences"]] == [UID]


def test_while_the_snapshot_is_not_ready_the_growth_waits_and_resizing_says_so():
    observed = growing()
    pending = the_snapshot(observed)
    observed = dataclasses.replace(observed, snapshots={pending["metadata"]["name"]: pending})
    assert planning.plan(observed) == []
    computed = status.compute(observed, NOW)
    resizing = condition(computed, "Resizing")
    assert (resizing["status"], resizing["reason"]) == ("True", "SnapshotBeforeExpansion")
    assert pending["metadata"]["name"] in resizing["message"]
    assert condition(computed, "Degraded")["status"] == "False"


def test_a_ready_snapshot_lets_the_growth_through_and_is_recorded():
    observed = growing()
    ready = the_snapshot(observed, readyToUse=True, creationTime="2026-11-25T12:00:01Z", restoreSize="500Gi")
    observed = dataclasses.replace(observed, snapshots={ready["metadata"]["name"]: ready})
    assert [type(a) for a in planning.plan(observed)] == [Expand]
    entry = status.compute(observed, NOW)["volumes"][1]
    assert entry["snapshots"] == [
        {"name": ready["metadata"]["name"], "readyToUse": True, "size": "500Gi", "time": "2026-11-25T12:00:01Z"}
    ]


def test_the_same_growth_step_always_names_the_same_snapshot_and_a_later_one_another():
    observed = growing()
    volume = next(v for v in volumes(observed) if v.disk.name == "data")
    name = snapshots.snapshot_name(volume, volume.requested)
    assert name == snapshots.snapshot_name(volume, volume.requested)
    assert name.startswith("vm1-data-")
    later = dataclasses.replace(volume, pvc=_requesting(volume.pvc, "1Ti"))
    assert snapshots.snapshot_name(later, later.requested) != name


def _requesting(pvc: dict, size: str) -> dict:
    pvc = copy.deepcopy(pvc)
    pvc["spec"]["resources"]["requests"]["storage"] = size
    return pvc


def test_a_failed_snapshot_stops_the_growth_and_degrades_naming_the_way_out():
    observed = growing()
    failed = the_snapshot(observed, readyToUse=False, error={"message": "rpc error: code = Internal desc = disk full"})
    observed = dataclasses.replace(observed, snapshots={failed["metadata"]["name"]: failed})
    assert planning.plan(observed) == []
    degraded = condition(status.compute(observed, NOW), "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "SnapshotFailed")
    assert "disk full" in degraded["message"]
    assert "remove snapshotBeforeExpand from disk data (spec.disks[1])" in degraded["message"]


@pytest.mark.parametrize(
    "classes",
    [
        (),
        ({**DEFAULT_CLASS, "driver": "rancher.io/local-path"},),
        ({**DEFAULT_CLASS, "metadata": {"name": "longhorn-snapshot"}},),
    ],
    ids=["no-class", "another-drivers-class", "a-class-not-marked-default"],
)
def test_without_a_default_class_for_the_driver_nothing_grows_and_degraded_names_it(classes):
    observed = growing(classes=classes)
    assert planning.plan(observed) == []
    degraded = condition(status.compute(observed, NOW), "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "SnapshotClassNotFound")
    assert "no VolumeSnapshotClass for driver driver.longhorn.io" in degraded["message"]
    assert 'snapshot.storage.kubernetes.io/is-default-class: "true"' in degraded["message"]
    assert "remove snapshotBeforeExpand from disk data" in degraded["message"]


def test_two_default_classes_for_the_driver_are_refused_as_the_snapshotter_does():
    second = {**DEFAULT_CLASS, "metadata": {**DEFAULT_CLASS["metadata"], "name": "longhorn-other"}}
    observed = growing(classes=(DEFAULT_CLASS, second))
    assert planning.plan(observed) == []
    assert "are all marked default" in condition(status.compute(observed, NOW), "Degraded")["message"]


def test_a_cluster_without_the_snapshot_api_degrades_and_does_not_grow():
    observed = dataclasses.replace(growing(), snapshots=None, snapshot_classes=None, snapshots_served=False)
    assert planning.plan(observed) == []
    assert "serves no VolumeSnapshot API" in condition(status.compute(observed, NOW), "Degraded")["message"]


def test_opting_out_lets_the_growth_through_without_a_snapshot():
    observed = growing(keep=None, classes=())
    assert [type(a) for a in planning.plan(observed)] == [Expand]
    assert condition(status.compute(observed, NOW), "Degraded")["status"] == "False"


def _taken(index: int, ready: bool = True, uid: str = UID) -> dict:
    name = f"vm1-data-old{index}"
    size = f"{100 * index}Gi"
    wukong = live(SYSTEM, data())
    retained = WukongSpec.from_object(wukong).when_deleted != DELETE
    made = volume_snapshot(wukong, Disk.from_dict(data()), "vm1-data", name, "c", size, not retained)
    made["metadata"].update(
        uid=f"uid-{name}", resourceVersion=str(30 + index), creationTimestamp=f"2026-11-2{index}T00:00:00Z"
    )
    made["metadata"]["annotations"][api.WUKONG_UID_ANNOTATION] = uid
    made["status"] = {"readyToUse": ready}
    return made


def test_beyond_keep_the_oldest_snapshots_are_pruned_once_the_newest_is_ready():
    taken = {s["metadata"]["name"]: s for s in (_taken(1), _taken(2), _taken(3))}
    observed = dataclasses.replace(converged(live(SYSTEM, data(keep=1))), snapshots=taken, snapshots_served=True)
    prunes = [a for a in planning.plan(observed) if isinstance(a, PruneSnapshot)]
    assert [(a.name, a.uid, a.resource_version) for a in prunes] == [
        ("vm1-data-old1", "uid-vm1-data-old1", "31"),
        ("vm1-data-old2", "uid-vm1-data-old2", "32"),
    ]


def test_no_pruning_while_the_newest_snapshot_is_not_ready():
    taken = {s["metadata"]["name"]: s for s in (_taken(1), _taken(2, ready=False))}
    observed = dataclasses.replace(converged(live(SYSTEM, data(keep=1))), snapshots=taken, snapshots_served=True)
    assert not [a for a in planning.plan(observed) if isinstance(a, PruneSnapshot)]


def test_snapshots_another_wukong_of_the_name_made_are_neither_pruned_nor_recorded():
    taken = {s["metadata"]["name"]: s for s in (_taken(1, uid="an-earlier-wukong"), _taken(2))}
    observed = dataclasses.replace(converged(live(SYSTEM, data(keep=1))), snapshots=taken, snapshots_served=True)
    assert not [a for a in planning.plan(observed) if isinstance(a, PruneSnapshot)]
    recorded = status.compute(observed, NOW)["volumes"][1]["snapshots"]
    assert [s["name"] for s in recorded] == ["vm1-data-old2"]


def test_a_retention_change_moves_the_snapshots_owner_reference():
    taken = {s["metadata"]["name"]: s for s in (_taken(1),)}
    obj = live(SYSTEM, data(keep=1), volumeRetentionPolicy={"whenDeleted": "Delete"})
    observed = dataclasses.replace(converged(obj), snapshots=taken, snapshots_served=True)
    (action,) = [a for a in planning.plan(observed) if isinstance(a, SetSnapshotRetention)]
    assert [r["uid"] for r in action.patch["metadata"]["ownerReferences"]] == [UID]


@pytest.mark.parametrize(
    ("raw", "keep"),
    [({}, 1), ({"keep": 3}, 3), ({"keep": 0}, None), ({"keep": 11}, None), ({"keep": True}, None), ("yes", None)],
)
def test_the_spec_reads_keep_and_ignores_what_admission_refuses(raw, keep):
    assert Disk.from_dict({"name": "d", "size": "1Gi", "snapshotBeforeExpand": raw}).snapshot_keep == keep


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            {"keep": 0},
            "spec.disks[1].snapshotBeforeExpand.keep: Invalid value: 0: should be greater than or equal to 1",
        ),
        (
            {"keep": 11},
            "spec.disks[1].snapshotBeforeExpand.keep: Invalid value: 11: should be less than or equal to 10",
        ),
        ({"keep": "3"}, 'spec.disks[1].snapshotBeforeExpand.keep: Invalid value: "3": must be of type integer'),
        ({"keep": True}, "spec.disks[1].snapshotBeforeExpand.keep: Invalid value: true: must be of type integer"),
        (True, "spec.disks[1].snapshotBeforeExpand: Invalid value: true: must be of type object"),
        ([1], "spec.disks[1].snapshotBeforeExpand: Invalid value:"),
    ],
    ids=["zero", "eleven", "a-string", "a-bool", "not-an-object", "a-list"],
)
def test_admission_refuses_a_malformed_snapshot_before_expand_naming_the_field(value, expected):
    obj = wukong(SYSTEM, data())
    obj["spec"]["disks"][1]["snapshotBeforeExpand"] = value
    errors, _ = validate(obj, None, facts())
    assert any(str(e).startswith(expected) for e in errors), [str(e) for e in errors]


@pytest.mark.parametrize("value", [{}, {"keep": 1}, {"keep": 10}])
def test_admission_admits_snapshot_before_expand_within_bounds(value):
    obj = wukong(SYSTEM, data())
    obj["spec"]["disks"][1]["snapshotBeforeExpand"] = value
    assert validate(obj, None, facts())[0] == []


def test_snapshots_are_ordered_by_the_size_they_were_taken_at_within_the_same_second():
    older, newer = _taken(1), _taken(2)
    newer["metadata"]["name"] = "vm1-data-aaa"  # sorts first by name
    newer["metadata"]["creationTimestamp"] = older["metadata"]["creationTimestamp"]
    observed = dataclasses.replace(
        converged(live(SYSTEM, data(keep=1))), snapshots={"vm1-data-aaa": newer, "vm1-data-old1": older}
    )
    assert [s["metadata"]["name"] for s in snapshots.ours(observed, "data")] == ["vm1-data-old1", "vm1-data-aaa"]


def test_a_ready_snapshot_being_deleted_does_not_let_the_growth_through():
    observed = growing()
    going = the_snapshot(observed, readyToUse=True)
    going["metadata"]["deletionTimestamp"] = NOW
    observed = dataclasses.replace(observed, snapshots={going["metadata"]["name"]: going})
    assert planning.plan(observed) == []
