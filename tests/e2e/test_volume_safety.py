"""A disk's data is never silently replaced: lost volumes are reported, not re-created, until the user says so."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
import yaml

from devcluster import checkout
from kubeclient.resources import DATA_VOLUMES, PVCS, VIRTUAL_MACHINES
from tests.e2e.test_lifecycle import NAME, sample
from tests.e2e.test_reconciler import apply, resyncs_passed, wait_event, wait_for_wukong, wait_running
from tests.waiting import poll, wait_for_object, watch_quietly
from wukong import api
from wukong.api import WUKONGS

pytestmark = pytest.mark.usefixtures("reconciler")
DATA = f"{NAME}-data"
GUARD = "wukong-volumes-deletion-guard"
OPERATOR = ("--as", "ops@example.com", "--as-group", "system:masters")  # a cluster admin, not a controller


def degraded(status: dict) -> dict | None:
    return next((c for c in status.get("conditions") or [] if c["type"] == "Degraded" and c["status"] == "True"), None)


def refused(cluster, namespace: str, kind: str, name: str, *who: str) -> str | None:
    """The API server's refusal of a (server-side dry-run) deletion, or None when it would go through."""
    result = cluster.kubectl("delete", kind, name, "-n", namespace, "--dry-run=server", *who, check=False)
    return result.stderr if result.returncode else None


@contextlib.contextmanager
def unguarded(cluster, namespace: str, kind: str, name: str) -> Iterator[None]:
    """The guard's binding taken away for a while: a cluster without it, or a deletion it did not stop. The API
    server applies a binding change a moment later, so each way waits for the fact: a dry-run deletion of a guarded
    object that stays (``kind``/``name``) going through, then refused again."""
    documents = yaml.safe_load_all(checkout.deploy("rbac", "volume-guard.yaml").read_text())
    binding = next(d for d in documents if d and d["kind"] == "ValidatingAdmissionPolicyBinding")
    cluster.kubectl("delete", "validatingadmissionpolicybinding", GUARD)
    try:
        poll(lambda: refused(cluster, namespace, kind, name, *OPERATOR) is None, "the guard lifted", interval=0.2)
        yield
    finally:
        cluster.apply([binding])
        poll(lambda: refused(cluster, namespace, kind, name, *OPERATOR), "the guard back", interval=0.2)


def test_a_deleted_bound_claim_is_reported_lost_and_only_the_acknowledgement_brings_a_new_one(
    cluster, admin, namespace, reconciler
):
    apply(cluster, namespace, sample())
    wait_running(admin, namespace, NAME)
    old = admin.get(PVCS, namespace, DATA)
    vm_before = admin.get(VIRTUAL_MACHINES, namespace, f"{NAME}-vm")["spec"]
    with unguarded(cluster, namespace, "dv", f"{NAME}-system"):
        cluster.kubectl("delete", "pvc", DATA, "-n", namespace, "--wait=true", "--timeout=60s")
    lost = wait_for_wukong(
        admin, namespace, NAME, lambda s: (c := degraded(s)) and c["reason"] == "VolumeLost" and c, "VolumeLost"
    )
    assert lost["message"].startswith(f"disk data lost its volume: PersistentVolumeClaim {DATA} had bound and is gone")
    assert f"kubectl annotate wukong {NAME} {api.RECREATE_LOST_VOLUMES_ANNOTATION}=data" in lost["message"]
    wait_event(admin, namespace, "VolumeLost", "Warning", f"PersistentVolumeClaim {DATA} had bound and is gone")
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
    assert entry.get("acknowledgementSpent") is True and "lost" not in entry


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
    # A DataVolume made before the reconciler asked CDI to keep it is asked now.
    cluster.kubectl("annotate", "dv", system, "-n", namespace, f"{api.CDI_DELETE_AFTER_COMPLETION}-")
    wait_for_object(
        admin,
        DATA_VOLUMES,
        namespace,
        system,
        lambda dv: (dv["metadata"].get("annotations") or {}).get(api.CDI_DELETE_AFTER_COMPLETION) == "false",
        "the DataVolume marked for keeping again",
    )
    # One CDI collected anyway: while the reconciler was down (it would have asked CDI to keep it), on a cluster
    # without the guard (which refuses CDI's deletion of a DataVolume a Wukong lists; CDI keeps it and retries).
    reconciler.kill()
    try:
        with unguarded(cluster, namespace, "pvc", DATA):
            cluster.kubectl(
                "annotate", "dv", system, "-n", namespace, f"{api.CDI_DELETE_AFTER_COMPLETION}=true", "--overwrite"
            )
            wait_for_object(admin, DATA_VOLUMES, namespace, system, lambda dv: dv is None, "CDI's garbage collection")
    finally:
        reconciler.start()
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


def test_deleting_a_volume_a_live_wukong_lists_is_refused_for_users_and_admins_with_the_way_to_do_it(
    cluster, admin, namespace
):
    apply(cluster, namespace, sample())
    wait_running(admin, namespace, NAME)
    cluster.kubectl("create", "rolebinding", "jane-edits", "--clusterrole=edit", "--user=jane", "-n", namespace)
    editor = ("--as", "jane")
    poll(
        lambda: (
            cluster.kubectl("auth", "can-i", "delete", "pvc", "-n", namespace, *editor, check=False).returncode == 0
        ),
        "jane may delete claims (RBAC)",
    )
    claims = [
        ("pvc", DATA, "PersistentVolumeClaim", "data"),
        ("pvc", f"{NAME}-system", "PersistentVolumeClaim", "system"),
    ]
    data_volume = ("dv", f"{NAME}-system", "DataVolume", "system")  # editors get DataVolumes from CDI's roles: not here
    for who, volumes in ((editor, claims), (OPERATOR, [*claims, data_volume])):
        for kind, name, what, disk in volumes:
            result = cluster.kubectl("delete", kind, name, "-n", namespace, "--wait=false", *who, check=False)
            assert result.returncode != 0, f"{' '.join(who)} deleted {kind} {name}"
            assert (
                f"{what} {namespace}/{name} holds disk {disk} of Wukong {NAME} and is not deleted by hand. To remove "
                f"the disk on purpose, delete it from the Wukong (kubectl edit wukong {NAME} -n {namespace}; "
                'annotation vm.novasphere.dev/allow-disk-removal: "true"): its volume is then released'
            ) in result.stderr, result.stderr
    assert admin.get(PVCS, namespace, DATA)["metadata"].get("deletionTimestamp") is None


def test_a_released_volume_may_be_deleted(cluster, admin, namespace):
    apply(cluster, namespace, sample())
    wait_running(admin, namespace, NAME)
    without = sample()
    without["metadata"]["annotations"] = {api.ALLOW_DISK_REMOVAL_ANNOTATION: "true"}
    without["spec"]["disks"] = without["spec"]["disks"][:1]
    apply(cluster, namespace, without)
    wait_for_object(
        admin,
        PVCS,
        namespace,
        DATA,
        lambda p: p and (p["metadata"].get("labels") or {}).get(api.RELEASED_FROM_LABEL) == NAME,
        "the data volume released",
    )
    cluster.kubectl("delete", "pvc", DATA, "-n", namespace, "--wait=false", *OPERATOR)
    wait_for_object(admin, PVCS, namespace, DATA, lambda p: p is None, "the released claim deleted")


def test_the_garbage_collector_still_deletes_the_volumes_of_a_wukong_deleted_under_delete(cluster, admin, namespace):
    doomed = sample()
    doomed["spec"]["volumeRetentionPolicy"] = {"whenDeleted": "Delete"}
    apply(cluster, namespace, doomed)
    wait_running(admin, namespace, NAME)
    assert refused(cluster, namespace, "pvc", DATA, *OPERATOR)  # the guard stands for people
    cluster.kubectl("delete", "wukong", NAME, "-n", namespace, "--wait=false")
    for resource, name in ((DATA_VOLUMES, f"{NAME}-system"), (PVCS, f"{NAME}-system"), (PVCS, DATA)):
        wait_for_object(admin, resource, namespace, name, lambda o: o is None, f"{name} deleted by the collector")


def test_an_image_disk_whose_claim_is_lost_is_imported_again_once_when_asked(cluster, admin, namespace, reconciler):
    apply(cluster, namespace, sample())
    wait_running(admin, namespace, NAME)
    system = f"{NAME}-system"
    old = admin.get(DATA_VOLUMES, namespace, system)["metadata"]["uid"]
    with unguarded(cluster, namespace, "pvc", DATA):
        cluster.kubectl("delete", "pvc", system, "-n", namespace, "--wait=true", "--timeout=60s")
    lost = wait_for_wukong(
        admin, namespace, NAME, lambda s: (c := degraded(s)) and c["reason"] == "VolumeLost" and c, "VolumeLost"
    )
    assert (
        "accept a new volume imported again from docker://quay.io/containerdisks/fedora:40: kubectl annotate"
        in lost["message"]
    )
    assert admin.get(DATA_VOLUMES, namespace, system)["metadata"]["uid"] == old, "the DataVolume was touched"
    cluster.kubectl("annotate", "wukong", NAME, "-n", namespace, f"{api.RECREATE_LOST_VOLUMES_ANNOTATION}=system")
    wait_running(admin, namespace, NAME)
    new = admin.get(DATA_VOLUMES, namespace, system)
    assert new["metadata"]["uid"] != old and new["status"]["phase"] == "Succeeded"
    # Re-imported once: the new DataVolume stays through two resyncs.
    seen = watch_quietly(admin, DATA_VOLUMES, namespace, system, resyncs_passed(reconciler, 2), "two resyncs")
    assert not [s for s in seen if s.startswith("DELETED")], seen
    assert admin.get(DATA_VOLUMES, namespace, system)["metadata"]["uid"] == new["metadata"]["uid"]
