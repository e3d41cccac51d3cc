"""kube-apiserver restarted mid-convergence: the reconciler, the webhook cache and the simulation recover alone."""

from __future__ import annotations

import json
import time

from kubeclient.resources import STORAGE_CLASSES
from tests.audit import PVCAudit
from tests.builders import disk, wukong
from tests.e2e.faults.fleet import create_fleet, wait_fleet_running
from tests.waiting import poll

COUNT = 40


def test_the_api_server_restarted_mid_convergence_is_recovered_from_by_every_client(
    cluster, admin, namespace, reconciler, webhook, backend
):
    audit = PVCAudit(admin, namespace).start()
    create_fleet(admin, namespace, COUNT)
    poll(lambda: audit.events >= 40, "convergence under way (40 PVC events)", timeout=60, interval=0.01)
    away = cluster.restart_apiserver()
    back = time.monotonic()
    wait_fleet_running(admin, namespace, COUNT, timeout=180)
    converged = time.monotonic() - back

    # The webhook's StorageClass cache follows the cluster again: a class created now is known to it.
    name = f"after-restart-{namespace}"
    admin.create(
        STORAGE_CLASSES,
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": name},
            "provisioner": "driver.longhorn.io",
        },
    )
    probe = wukong(disk("system", storageClassName=name, boot=True), name="probe")
    probe["metadata"]["namespace"] = namespace

    def known() -> bool:
        result = cluster.kubectl(
            "create", "--dry-run=server", "-n", namespace, "-f", "-", stdin=json.dumps(probe), check=False
        )
        assert result.returncode == 0, result.stderr
        return "does not exist" not in result.stderr

    poll(known, "the webhook to know a StorageClass created after the restart", timeout=30, interval=0.2)
    cluster.kubectl("delete", "storageclass", name)
    audit.stop()
    assert (audit.deleted, audit.decreased, audit.duplicates) == ([], [], [])
    print(
        f"\napi server restart: away {away:.1f}s; {COUNT} Wukongs Running {converged:.1f}s after it was back; "
        f"the webhook's cache saw a new StorageClass; {audit.summary()}"
    )
