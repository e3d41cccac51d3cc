"""Certificates that renew themselves while admission goes on: ``wukong-certs manage`` and ``serve --tls-secret``.

Short lifetimes (CA 45 s, serving certificate 15 s): within the run the serving certificate is renewed at least
twice and the CA once, while ``kubectl create --dry-run=server`` goes through the API server and the webhook.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from certs import pki
from devcluster.controlplane import free_port
from devcluster.webhooks import configurations, register
from kubeclient.resources import SECRETS
from kubeclient.rest import NotFound
from tests.e2e.conftest import SAMPLES, wait_for_webhooks
from tests.waiting import poll

BIN = Path(sys.executable).parent
SECRET, NAMESPACE = "rotating-webhook-tls", "wukong-system"
LOAD_SECONDS = 35


def names(kind: str) -> list[str]:
    return [c["metadata"]["name"] for c in configurations() if c["kind"] == kind]


def certificates(admin, key: str) -> list[x509.Certificate]:
    try:
        data = admin.get(SECRETS, NAMESPACE, SECRET)["data"]
    except NotFound:
        return []
    return x509.load_pem_x509_certificates(base64.b64decode(data[key])) if data.get(key) else []


def test_the_certificate_renews_twice_and_the_ca_once_under_load_with_no_failed_request(
    cluster, admin, webhook, namespace, tmp_path
):
    logs = open(tmp_path / "processes.log", "ab")  # noqa: SIM115 - closed below
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    manage = [str(BIN / "wukong-certs"), "manage", "--kubeconfig", str(cluster.kubeconfig), "--namespace", NAMESPACE]
    manage += ["--secret", SECRET, "--service", "wukong-webhook", "--ip", "127.0.0.1", "--interval", "1"]
    manage += ["--ca-lifetime", "45s", "--cert-lifetime", "15s"]
    for name in names("MutatingWebhookConfiguration"):
        manage += ["--mutating", name]
    for name in names("ValidatingWebhookConfiguration"):
        manage += ["--validating", name]
    port = free_port()
    serve = [str(BIN / "wukong-webhook"), "serve", "--bind-address", "127.0.0.1", "--port", str(port)]
    serve += ["--kubeconfig", str(cluster.kubeconfig), "--tls-secret", f"{NAMESPACE}/{SECRET}"]
    serve += ["--tls-cert-file", str(tmp_path / "tls.crt"), "--tls-private-key-file", str(tmp_path / "tls.key")]
    cluster.kubectl("create", "namespace", NAMESPACE, check=False)  # there already when the reconciler ran
    processes = [subprocess.Popen(manage, stdout=logs, stderr=subprocess.STDOUT, env=env)]
    try:
        bundle = poll(lambda: certificates(admin, "ca.crt"), "the manager to create the Secret", timeout=30)
        processes.append(subprocess.Popen(serve, stdout=logs, stderr=subprocess.STDOUT, env=env))
        poll(lambda: (tmp_path / "tls.crt").exists(), "the webhook to write the pair from the Secret", timeout=30)
        pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in bundle)
        register(cluster, f"https://127.0.0.1:{port}", pem)  # the manager keeps the bundle from now on
        wait_for_webhooks(cluster)

        probe = yaml.safe_load((SAMPLES / "single-disk.yaml").read_text())
        probe["metadata"]["namespace"] = namespace
        tried, failed, serials, widest = 0, [], set(), 0
        started = time.monotonic()
        while time.monotonic() - started < LOAD_SECONDS:
            tried += 1
            result = cluster.kubectl("create", "--dry-run=server", "-f", "-", stdin=json.dumps(probe), check=False)
            if result.returncode != 0:
                failed.append(result.stderr.strip())
            serials.update(c.serial_number for c in certificates(admin, "tls.crt"))
            widest = max(widest, len(certificates(admin, "ca.crt")))
        assert failed == [], f"{len(failed)} of {tried} requests failed: {failed[:3]}"
        assert len(serials) >= 3, f"the serving certificate was renewed {len(serials) - 1} times, not twice"
        assert widest >= 2, "the bundle never held the old and the new CA together"

        foreign_ca = pki.new_ca("someone-else", datetime.timedelta(days=1))
        foreign = pki.issue(foreign_ca, "wukong-webhook", datetime.timedelta(days=1), ips=["127.0.0.1"])
        data = {
            "tls.crt": base64.b64encode(foreign.cert_pem).decode(),
            "tls.key": base64.b64encode(foreign.key_pem).decode(),
        }
        admin.patch(SECRETS, NAMESPACE, SECRET, {"data": data})
        poll(
            lambda: certificates(admin, "tls.crt")[0].issuer != foreign_ca.certificate.subject,
            "the foreign certificate replaced",
            timeout=15,
        )
        print(
            f"\ncertificate renewal under load: {tried} admission requests through the API server, 0 failed; "
            f"{len(serials)} serving certificates seen, the bundle held up to {widest} CAs; a foreign certificate "
            f"was replaced"
        )
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=30)
        logs.close()
        webhook.register()
        wait_for_webhooks(cluster)
        cluster.kubectl("delete", "secret", SECRET, "-n", NAMESPACE, "--ignore-not-found")
