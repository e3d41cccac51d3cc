"""Long and failing storage operations say where they stand: an import's progress, an import CDI keeps retrying
(then corrected), and an expansion the driver refuses (then taken back, as Kubernetes allows)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from devcluster.backend import MAX_VOLUME_SIZE
from kubeclient.resources import DATA_VOLUMES, PVCS, STORAGE_CLASSES
from tests.builders import disk, wukong
from tests.e2e.test_reconciler import apply, wait_event, wait_for_wukong, wait_running
from tests.waiting import wait_for_object

pytestmark = pytest.mark.usefixtures("reconciler")
FEDORA = "docker://quay.io/containerdisks/fedora:40"


def _condition(status: dict, kind: str) -> dict:
    return next((c for c in status.get("conditions") or [] if c["type"] == kind), {})


def _volume(status: dict, name: str) -> dict:
    return next((v for v in status.get("volumes") or [] if v.get("name") == name), {})


def test_an_import_shows_cdis_progress_while_the_wukong_is_not_ready(cluster, admin, namespace):
    obj = wukong(disk("root", "20Gi", image="docker://registry.example/simulate-slow-import:1"), name="slow")
    apply(cluster, namespace, obj)

    def progressing(status: dict) -> dict | None:
        progress = _volume(status, "root").get("importProgress", "")
        return status if progress.endswith("%") else None

    seen = wait_for_wukong(admin, namespace, "slow", progressing, "an import progress in status.volumes[]")
    progress = _volume(seen, "root")["importProgress"]
    assert f"disk root importing {progress}" in _condition(seen, "Ready")["message"]
    assert _volume(seen, "root")["everBound"] is False
    done = wait_for_wukong(admin, namespace, "slow", lambda s: s.get("phase") == "Running" and s, "Running")
    assert "importProgress" not in _volume(done, "root") and _volume(done, "root")["everBound"] is True


def test_an_import_that_keeps_failing_is_degraded_and_a_corrected_image_replaces_it(cluster, admin, namespace):
    broken = wukong(disk("root", "20Gi", image="docker://registry.example/simulate-image-pull-failure:1"), name="pull")
    apply(cluster, namespace, broken)

    def failing(status: dict) -> dict | None:
        degraded = _condition(status, "Degraded")
        return status if degraded.get("reason") == "ImportFailing" else None

    seen = wait_for_wukong(admin, namespace, "pull", failing, "Degraded/ImportFailing")
    message = _condition(seen, "Degraded")["message"]
    assert "CDI reports ImagePullFailed: Unable to process data: failed to pull image" in message
    entry = _volume(seen, "root")
    assert entry["importRestartCount"] > 3 and entry["everBound"] is False
    wait_event(admin, namespace, "ImportFailing", "Warning", "keeps failing")
    listed = cluster.kubectl("get", "wukong", "pull", "-n", namespace, "-o", "wide").stdout
    assert "ImportFailing" in listed
    failed_uid = admin.get(DATA_VOLUMES, namespace, "pull-root")["metadata"]["uid"]

    apply(cluster, namespace, wukong(disk("root", "20Gi", image=FEDORA), name="pull"))  # admitted: nothing imported
    wait_running(admin, namespace, "pull")
    dv = admin.get(DATA_VOLUMES, namespace, "pull-root")
    assert dv["metadata"]["uid"] != failed_uid
    assert dv["spec"]["source"] == {"registry": {"url": FEDORA}}
    final = wait_for_wukong(
        admin, namespace, "pull", lambda s: _condition(s, "Degraded").get("status") == "False" and s, "Degraded False"
    )
    assert "importRestartCount" not in _volume(final, "root") and _volume(final, "root")["everBound"] is True


@pytest.fixture
def limited_class(cluster, admin, namespace) -> Iterator[str]:
    """A class whose (simulated) driver cannot allocate more than 60Gi per volume, as a CSI driver refuses."""
    name = f"limited-{namespace}"
    admin.create(
        STORAGE_CLASSES,
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": name},
            "provisioner": "driver.longhorn.io",
            "allowVolumeExpansion": True,
            "parameters": {MAX_VOLUME_SIZE: "60Gi"},
        },
    )
    yield name
    admin.delete(STORAGE_CLASSES, None, name)


def test_an_expansion_the_driver_refuses_is_degraded_and_lowering_the_disk_recovers_it(
    cluster, admin, namespace, limited_class
):
    apply(cluster, namespace, wukong(disk("data", "10Gi", storageClassName=limited_class), name="grow"))
    wait_running(admin, namespace, "grow")

    apply(cluster, namespace, wukong(disk("data", "100Gi", storageClassName=limited_class), name="grow"))

    def refused(status: dict) -> dict | None:
        return status if _condition(status, "Degraded").get("reason") == "ExpansionFailed" else None

    seen = wait_for_wukong(admin, namespace, "grow", refused, "Degraded/ExpansionFailed")
    message = _condition(seen, "Degraded")["message"]
    assert "to 100Gi failed: ControllerResizeInfeasible: resize volume" in message
    assert "code = OutOfRange" in message and "the volume keeps 10Gi" in message
    assert (_condition(seen, "Resizing")["status"], _condition(seen, "Resizing")["reason"]) == (
        "False",
        "ExpansionFailed",
    )
    entry = _volume(seen, "data")
    assert (entry["expansionFailed"], entry["resizeStatus"], entry["capacity"]) == (
        True,
        "ControllerResizeInfeasible",
        "10Gi",
    )

    back_to_capacity = wukong(disk("data", "10Gi", storageClassName=limited_class), name="grow")
    result = cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=_json(back_to_capacity), check=False)
    assert result.returncode != 0
    assert "may be lowered only to more than the capacity its volume reached (10Gi)" in result.stderr

    apply(cluster, namespace, wukong(disk("data", "50Gi", storageClassName=limited_class), name="grow"))
    wait_for_object(
        admin,
        PVCS,
        namespace,
        "grow-data",
        lambda p: p is not None and (p.get("status") or {}).get("capacity", {}).get("storage") == "50Gi",
        "the claim grown to 50Gi",
    )
    wait_event(admin, namespace, "ExpansionRecovering", "Normal", "from 100Gi to 50Gi")

    def recovered(status: dict) -> dict | None:
        ok = _condition(status, "Degraded").get("status") == "False" and _volume(status, "data").get("capacity")
        return status if ok == "50Gi" else None

    final = wait_for_wukong(admin, namespace, "grow", recovered, "recovered at 50Gi")
    assert _condition(final, "Resizing")["reason"] == "AtRequestedSize"
    assert "expansionFailed" not in _volume(final, "data")


def _json(obj: dict) -> str:
    return json.dumps({**obj, "metadata": {k: v for k, v in obj["metadata"].items() if k != "namespace"}})
