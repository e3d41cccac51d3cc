"""A disk's data is never silently replaced: lost volumes are reported, not re-created, until the user says so."""

from __future__ import annotations

import pytest

from kubeclient.resources import DATA_VOLUMES, PVCS, VIRTUAL_MACHINES, WUKONGS
from tests.e2e.test_lifecycle import NAME, sample
from tests.e2e.test_reconciler import apply, resyncs_passed, wait_for_wukong, wait_running
from tests.waiting import wait_for_object, watch_quietly
from wukong import api

pytestmark = pytest.mark.usefixtures("reconciler")
DATA = f"{NAME}-data"


def degraded(status: dict) -> dict | None:
    return next((c for c in status.get("conditions") or [] if c["type"] == "Degraded" and c["status"] == "True"), None)


def test_a_deleted_bound_claim_is_reported_lost_and_only_the_acknowledgement_brings_a_new_one(
    cluster, admin, namespace, reconciler
):
    apply(cluster, namespace, sample())
    wait_running(admin, namespace, NAME)
    old = admin.get(PVCS, namespace, DATA)
    vm_before = admin.get(VIRTUAL_MACHINES, namespace, f"{NAME}-vm")["spec"]
    cluster.kubectl("delete", "pvc", DATA, "-n", namespace, "--wait=true", "--timeout=60s")
    lost = wait_for_wukong(
        admin, namespace, NAME, lambda s: (c := degraded(s)) and c["reason"] == "VolumeLost" and c, "VolumeLost"
    )
    assert lost["message"].startswith(f"disk data lost its volume: PersistentVolumeClaim {DATA} had bound and is gone")
    assert f"kubectl annotate wukong {NAME} {api.RECREATE_LOST_VOLUMES_ANNOTATION}=data" in lost["message"]
    # The watched window: every change to a claim of that name from now through two full resyncs of the reconciler
    # (each a pass over this Wukong): none may appear.
    seen = watch_quietly(admin, PVCS, namespace, DATA, resyncs_passed(reconciler, 2), "two resyncs")
    assert seen == [], f"a claim {DATA} appeared while the disk was lost: {seen}"
    current = admin.get(WUKONGS, namespace, NAME)["status"]
    assert current["phase"] == "Error"
    assert next(v for v in current["volumes"] if v["name"] == "data")["lost"] is True
    assert admin.get(VIRTUAL_MACHINES, namespace, f"{NAME}-vm")["spec"] == vm_before, "the VM was changed"

    cluster.kubectl("annotate", "wukong", NAME, "-n", namespace, f"{api.RECREATE_LOST_VOLUMES_ANNOTATION}=data")
    new = wait_for_object(admin, PVCS, namespace, DATA, lambda p: p is not None and p, "a new claim")
    assert new["metadata"]["uid"] != old["metadata"]["uid"]
    wait_running(admin, namespace, NAME)
    entry = next(v for v in admin.get(WUKONGS, namespace, NAME)["status"]["volumes"] if v["name"] == "data")
    assert entry.get("recreated") is True and "lost" not in entry


def test_a_data_volume_cdi_collected_leaves_its_pvc_as_the_volume_and_nothing_is_imported_again(
    cluster, admin, namespace, reconciler
):
    apply(cluster, namespace, sample())
    wait_running(admin, namespace, NAME)
    system = f"{NAME}-system"
    made = admin.get(DATA_VOLUMES, namespace, system)
    assert made["metadata"]["annotations"][api.CDI_DELETE_AFTER_COMPLETION] == "false"
    assert admin.get(DATA_VOLUMES, namespace, system)["status"]["phase"] == "Succeeded"  # CDI kept it
    claim = admin.get(PVCS, namespace, system)["metadata"]["uid"]
    # As a DataVolume made before the reconciler asked CDI to keep it: CDI's webhook had written "true".
    cluster.kubectl("annotate", "dv", system, "-n", namespace, f"{api.CDI_DELETE_AFTER_COMPLETION}=true", "--overwrite")
    wait_for_object(admin, DATA_VOLUMES, namespace, system, lambda dv: dv is None, "CDI's garbage collection")
    entry = wait_for_wukong(
        admin,
        namespace,
        NAME,
        lambda s: next(
            (v for v in s.get("volumes") or [] if v["name"] == "system" and v.get("dataVolumeCollected")), None
        ),
        "status.volumes[system].dataVolumeCollected",
    )
    assert (entry["source"], entry["bound"], entry["everBound"]) == ("dataVolume", True, True)
    seen = watch_quietly(admin, DATA_VOLUMES, namespace, system, resyncs_passed(reconciler, 2), "two resyncs")
    assert seen == [], f"a DataVolume {system} was made again: {seen}"
    current = admin.get(WUKONGS, namespace, NAME)["status"]
    assert degraded(current) is None and current["phase"] == "Running"
    assert admin.get(PVCS, namespace, system)["metadata"]["uid"] == claim, "the imported claim was replaced"
