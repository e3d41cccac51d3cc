"""The product's own identities can do only their job: each escalation a compromised component would try, tried by
impersonating its ServiceAccount through the real API server, and refused there (RBAC or admission policy).

The accounts' RBAC and policies are deploy/'s (devcluster.identities installs them without the Deployments). The
positive side -- that each can still do its job under them -- is the rest of the suite: the reconciler runs with its
own token in every e2e test, and test_certificates.py renews certificates with the certificate manager's and
serves them with the webhook's.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from devcluster import identities
from devcluster.webhooks import configurations
from tests.waiting import poll

NAMESPACE = identities.NAMESPACE
CERTS, WEBHOOK = identities.username(identities.CERTS), identities.username(identities.WEBHOOK)


def act_as(cluster, user: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return cluster.kubectl(*args, "--as", user, stdin=stdin, check=False)


def refused(result: subprocess.CompletedProcess[str], *reasons: str) -> str:
    """The API server's refusal: a non-zero exit whose message holds one of ``reasons``."""
    assert result.returncode != 0, f"the API server allowed it: {result.stdout}"
    assert any(reason in result.stderr for reason in reasons), result.stderr
    return result.stderr


def secret(name: str, namespace: str = NAMESPACE, type_: str = "kubernetes.io/tls", **metadata: Any) -> str:
    data = {"tls.crt": "", "tls.key": ""} if type_ == "kubernetes.io/tls" else {"token": "eA=="}
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": type_,
            "metadata": {"name": name, "namespace": namespace, **metadata},
            "data": data,
        }
    )


def json_patch(*operations: dict[str, Any]) -> str:
    return json.dumps(list(operations))


@pytest.fixture(scope="module")
def installed(cluster) -> Iterator[None]:
    """All three accounts with deploy/'s RBAC and policies, the policies in force (they are picked up
    asynchronously: the first refusal is waited for)."""
    identities.install(cluster)
    poll(
        lambda: (
            "ValidatingAdmissionPolicy"
            in act_as(cluster, CERTS, "create", "--dry-run=server", "-f", "-", stdin=secret("policy-probe")).stderr
        ),
        "the certificate manager's policy to be in force",
        timeout=20,
        interval=0.2,
    )
    yield


# -- the certificate manager: CA bundles and its own Secrets, nothing else ----------------------------------------


@pytest.mark.usefixtures("installed", "webhook")
@pytest.mark.parametrize(
    "change",
    [
        {"op": "replace", "path": "/webhooks/0/failurePolicy", "value": "Ignore"},
        {"op": "replace", "path": "/webhooks/0/rules", "value": []},
        {"op": "replace", "path": "/webhooks/0/clientConfig", "value": {"url": "https://collector.example/review"}},
        {"op": "add", "path": "/webhooks/0/matchConditions", "value": [{"name": "never", "expression": "false"}]},
        {"op": "replace", "path": "/webhooks/0/namespaceSelector", "value": {"matchLabels": {"nowhere": "x"}}},
        {"op": "remove", "path": "/webhooks/0"},
        {"op": "add", "path": "/metadata/labels/owned-by", "value": "someone-else"},
    ],
    ids=[
        "failure-policy-ignore",
        "no-rules",
        "url-elsewhere",
        "match-nothing",
        "select-no-namespace",
        "no-webhook",
        "a-label",
    ],
)
@pytest.mark.parametrize("kind", ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"])
def test_the_certificate_manager_may_not_disable_or_redirect_admission(cluster, kind, change):
    (name,) = [c["metadata"]["name"] for c in configurations() if c["kind"] == kind]
    before = cluster.kubectl("get", kind.lower(), name, "-o", "json").stdout
    result = act_as(cluster, CERTS, "patch", kind.lower(), name, "--type=json", "-p", json_patch(change))
    refused(result, "may change only clientConfig.caBundle")
    after = cluster.kubectl("get", kind.lower(), name, "-o", "json").stdout
    assert json.loads(after)["webhooks"] == json.loads(before)["webhooks"]


@pytest.mark.usefixtures("installed", "webhook")
def test_the_certificate_manager_may_change_a_ca_bundle_and_may_not_delete_a_configuration(cluster):
    bundle = {"op": "replace", "path": "/webhooks/0/clientConfig/caBundle", "value": "bmV3IGJ1bmRsZQ=="}
    for kind in ("mutatingwebhookconfiguration", "validatingwebhookconfiguration"):
        changed = act_as(
            cluster, CERTS, "patch", kind, "wukong-webhook", "--dry-run=server", "--type=json", "-p", json_patch(bundle)
        )
        assert changed.returncode == 0, changed.stderr
        refused(act_as(cluster, CERTS, "delete", kind, "wukong-webhook"), "cannot delete")
        refused(act_as(cluster, CERTS, "get", kind, "someone-elses"), "cannot get")


@pytest.mark.usefixtures("installed")
@pytest.mark.parametrize(
    ("name", "type_", "metadata", "reasons"),
    [
        ("stolen", "kubernetes.io/tls", {}, ["may write only its Secrets"]),
        (
            "wukong-webhook-ca",
            "kubernetes.io/service-account-token",
            {"annotations": {"kubernetes.io/service-account.name": "wukong-reconciler"}},
            ["may write only its Secrets"],
        ),
        ("wukong-webhook-ca", "Opaque", {}, ["may write only its Secrets"]),
    ],
    ids=["another-name", "a-service-account-token", "another-type"],
)
def test_the_certificate_manager_may_create_only_its_own_secrets(cluster, name, type_, metadata, reasons):
    result = act_as(cluster, CERTS, "create", "-f", "-", stdin=secret(name, type_=type_, **metadata))
    refused(result, *reasons)
    assert cluster.kubectl("get", "secret", name, "-n", NAMESPACE, check=False).returncode != 0


@pytest.mark.usefixtures("installed")
def test_the_certificate_manager_reads_no_other_secret_and_writes_nowhere_else(cluster, namespace):
    cluster.kubectl("create", "secret", "generic", "db-password", "-n", NAMESPACE, "--from-literal=password=hunter2")
    refused(act_as(cluster, CERTS, "get", "secret", "db-password", "-n", NAMESPACE), "cannot get")
    refused(act_as(cluster, CERTS, "get", "secrets", "-n", NAMESPACE), "cannot list")
    refused(act_as(cluster, CERTS, "create", "-f", "-", stdin=secret("wukong-webhook-ca", namespace)), "cannot create")
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "wukong-reconciler"}}
    lease["metadata"]["namespace"] = NAMESPACE
    refused(act_as(cluster, CERTS, "create", "-f", "-", stdin=json.dumps(lease)), "may write only its Lease")


# -- the webhook: its serving pair, never the CA ---------------------------------------------------------------


@pytest.mark.usefixtures("installed")
def test_the_webhook_may_read_its_serving_pair_and_not_the_ca_key(cluster):
    for name in ("wukong-webhook-tls", "wukong-webhook-ca"):
        cluster.kubectl("create", "-f", "-", stdin=secret(name), check=False)
    try:
        served = act_as(cluster, WEBHOOK, "get", "secret", "wukong-webhook-tls", "-n", NAMESPACE, "-o", "name")
        assert served.returncode == 0, served.stderr
        refused(act_as(cluster, WEBHOOK, "get", "secret", "wukong-webhook-ca", "-n", NAMESPACE), "cannot get")
        refused(act_as(cluster, WEBHOOK, "get", "secrets", "-n", NAMESPACE), "cannot list")
        refused(act_as(cluster, WEBHOOK, "create", "-f", "-", stdin=secret("anything")), "cannot create")
    finally:
        cluster.kubectl(
            "delete", "secret", "wukong-webhook-tls", "wukong-webhook-ca", "-n", NAMESPACE, "--ignore-not-found"
        )
