"""Hostile and slow clients cannot take the webhook down: it fails closed, so its outage stops every Wukong write."""

from __future__ import annotations

import http.client
import json
import ssl
import statistics
import time

import yaml

from certs import files
from tests.builders import disk, wukong
from tests.e2e.conftest import SAMPLES
from tests.hostile import HostileClients
from tests.waiting import poll

TRIES = 20


def ask(port: int, context: ssl.SSLContext, method: str, path: str, body: bytes | None = None) -> float:
    """One request on a fresh connection, as the API server opens them; its time, or a failure past 1 s."""
    started = time.perf_counter()
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=1)
    try:
        connection.request(method, path, body=body, headers={"Content-Type": "application/json"})
        reply = connection.getresponse()
        reply.read()
        assert reply.status == 200, f"{path}: HTTP {reply.status}"
    finally:
        connection.close()
    return time.perf_counter() - started


def review() -> bytes:
    request = {
        "uid": "probe",
        "operation": "CREATE",
        "kind": {"group": "vm.novasphere.dev", "version": "v1alpha1", "kind": "Wukong"},
        "object": wukong(disk("system", storageClassName="longhorn")),
    }
    return json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}).encode()


def test_600_slow_and_idle_connections_do_not_stop_admission(cluster, webhook, namespace):
    context = ssl.create_default_context(cafile=str(webhook.certs_dir / files.CA_CERT))
    with HostileClients("127.0.0.1", webhook.port, context).open(
        idle=200, slow_headers=200, slow_bodies=200
    ) as hostile:
        # Measured once the first wave of slow bodies has hit the body deadline and is coming back, reconnecting.
        poll(lambda: hostile.dropped >= 200, "the server to close 200 slow-body connections", timeout=30)
        health = [ask(webhook.port, context, "GET", "/healthz") for _ in range(TRIES)]
        validate = [ask(webhook.port, context, "POST", "/validate", review()) for _ in range(TRIES)]
        probe = yaml.safe_load((SAMPLES / "system-and-data.yaml").read_text())
        created = cluster.kubectl(
            "create", "--dry-run=server", "-n", namespace, "-o", "json", "-f", "-", stdin=json.dumps(probe)
        )
        assert json.loads(created.stdout)["spec"]["volumeRetentionPolicy"] == {"whenDeleted": "Retain"}  # defaulted
        held = len(hostile.idle) + len(hostile.slow)
    assert max(health) < 1.0 and max(validate) < 1.0

    def summary(times: list[float]) -> str:
        median, worst = statistics.median(times) * 1000, max(times) * 1000
        return f"{len(times)}/{TRIES} answered, median {median:.1f} ms, max {worst:.1f} ms"

    print(
        f"\nhostile clients: 200 idle TCP, 200 slow-header, 200 slow-body held open ({held} at the end; "
        f"{hostile.dropped} slow bodies cut by the server's 2 s body deadline and reopened); /healthz "
        f"{summary(health)}; /validate "
        f"{summary(validate)}; kubectl create through the API server admitted and defaulted"
    )
