"""Certificates that renew themselves while admission goes on: ``wukong-certs manage`` and ``serve --tls-secret``.

Short lifetimes (CA 45 s, serving certificate 15 s): within the run the serving certificate is renewed at least
twice and the CA once, while ``kubectl create --dry-run=server`` goes through the API server and the webhook. Both
processes run with a token of their own ServiceAccount, under deploy/'s RBAC and the certificate manager's
admission policy: what they are allowed is enough for the whole job.
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
from devcluster import identities
from devcluster.controlplane import free_port
from devcluster.webhooks import configurations, register
from kubeclient.resources import SECRETS
from kubeclient.rest import NotFound
from tests.e2e.conftest import SAMPLES, wait_for_webhooks
from tests.waiting import poll

BIN = Path(sys.executable).parent
SECRET, CA_SECRET, NAMESPACE = "wukong-webhook-tls", "wukong-webhook-ca", "wukong-system"
LOAD_SECONDS = 35


def names(kind: str) -> list[str]:
    return [c["metadata"]["name"] for c in configurations() if c["kind"] == kind]


def secret_data(admin, name: str = SECRET) -> dict[str, str]:
    try:
        return admin.get(SECRETS, NAMESPACE, name).get("data") or {}
    except NotFound:
        return {}


def certificates(admin, key: str, name: str = SECRET) -> list[x509.Certificate]:
    data = secret_data(admin, name)
    return x509.load_pem_x509_certificates(base64.b64decode(data[key])) if data.get(key) else []


def manage_command(cluster, *lifetimes: str) -> list[str]:
    """``wukong-certs manage`` as deployed (deploy/certs), with the certificate manager's own token."""
    identities.install(cluster, identities.CERTS)
    kubeconfig = identities.token_kubeconfig(cluster, identities.CERTS)
    manage = [str(BIN / "wukong-certs"), "manage", "--kubeconfig", str(kubeconfig), "--namespace", NAMESPACE]
    manage += ["--secret", SECRET, "--ca-secret", CA_SECRET, "--service", "wukong-webhook", "--ip", "127.0.0.1"]
    manage += ["--interval", "1", *lifetimes]
    for name in names("MutatingWebhookConfiguration"):
        manage += ["--mutating", name]
    for name in names("ValidatingWebhookConfiguration"):
        manage += ["--validating", name]
    return manage


def test_the_certificate_renews_twice_and_the_ca_once_under_load_with_no_failed_request(
    cluster, admin, webhook, namespace, tmp_path
):
    logs = open(tmp_path / "processes.log", "ab")  # noqa: SIM115 - closed below
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    manage = manage_command(cluster, "--ca-lifetime", "45s", "--cert-lifetime", "15s")
    identities.install(cluster, identities.WEBHOOK)
    port = free_port()
    serve = [str(BIN / "wukong-webhook"), "serve", "--bind-address", "127.0.0.1", "--port", str(port)]
    serve += ["--kubeconfig", str(identities.token_kubeconfig(cluster, identities.WEBHOOK))]
    serve += ["--tls-secret", f"{NAMESPACE}/{SECRET}"]
    serve += ["--tls-cert-file", str(tmp_path / "tls.crt"), "--tls-private-key-file", str(tmp_path / "tls.key")]
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
        assert failed == [], f"{len(failed)} of {tried} requests failed: {failed[:3]}\n{log_tail(tmp_path)}"
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
        assert sorted(secret_data(admin)) == ["ca.crt", "tls.crt", "tls.key"], "the serving Secret holds a CA key"
        ca = secret_data(admin, CA_SECRET)
        issuer = certificates(admin, "tls.crt")[0].issuer
        assert certificates(admin, "tls.crt", CA_SECRET)[0].subject == issuer, "the CA Secret holds another CA"
        assert ca["tls.key"], "the CA Secret holds no key"
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
        cluster.kubectl("delete", "secret", SECRET, CA_SECRET, "-n", NAMESPACE, "--ignore-not-found")


def log_tail(tmp_path: Path) -> str:
    return "\n".join((tmp_path / "processes.log").read_text(errors="replace").splitlines()[-20:])


def test_upgrading_an_install_that_kept_the_ca_key_beside_the_serving_pair_moves_it_and_changes_no_certificate(
    cluster, admin, webhook, tmp_path
):
    """Releases before the CA moved out kept ``ca.key`` in the Secret the webhook reads: the first pass of the new
    manager writes the CA Secret with that CA and rewrites the serving Secret without the key."""
    ca = pki.new_ca("wukong-webhook.wukong-system-ca", datetime.timedelta(days=30))
    names = pki.service_dns_names("wukong-webhook", NAMESPACE)
    serving = pki.issue(ca, "wukong-webhook", datetime.timedelta(days=9), dns_names=names, ips=["127.0.0.1"])
    legacy = {"ca.crt": ca.cert_pem, "ca.key": ca.key_pem, "tls.crt": serving.cert_pem, "tls.key": serving.key_pem}
    cluster.kubectl("create", "namespace", NAMESPACE, check=False)
    admin.create(
        SECRETS,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/tls",
            "metadata": {"name": SECRET, "namespace": NAMESPACE},
            "data": {key: base64.b64encode(value).decode() for key, value in legacy.items()},
        },
    )
    logs = open(tmp_path / "processes.log", "ab")  # noqa: SIM115 - closed below
    manager = subprocess.Popen(manage_command(cluster), stdout=logs, stderr=subprocess.STDOUT)
    try:
        moved = poll(
            lambda: "ca.key" not in (data := secret_data(admin)) and data,
            "the CA key to leave the serving Secret",
            timeout=30,
        )
        assert base64.b64decode(moved["tls.crt"]) == serving.cert_pem, "the serving certificate was replaced"
        assert base64.b64decode(moved["tls.key"]) == serving.key_pem
        held = secret_data(admin, CA_SECRET)
        assert base64.b64decode(held["tls.crt"]) == ca.cert_pem, "the CA was replaced, not moved"
        assert pki.KeyPair.from_pem(ca.cert_pem, base64.b64decode(held["tls.key"])).key_pem == ca.key_pem
        assert base64.b64decode(held["ca.crt"]) == ca.cert_pem
    finally:
        manager.terminate()
        manager.wait(timeout=30)
        logs.close()
        webhook.register()  # the manager injected the moved CA's bundle
        wait_for_webhooks(cluster)
        cluster.kubectl("delete", "secret", SECRET, CA_SECRET, "-n", NAMESPACE, "--ignore-not-found")
