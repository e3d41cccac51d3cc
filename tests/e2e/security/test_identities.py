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
from kubeclient.credentials import load_api_client
from kubeclient.resources import SECRETS
from kubeclient.rest import JSON_PATCH, ApiError, Kube
from reconciler.networks import network_attachment_definition
from tests.waiting import poll
from wukong.spec import IPConfig, Network

NAMESPACE = identities.NAMESPACE
CERTS, WEBHOOK = identities.username(identities.CERTS), identities.username(identities.WEBHOOK)
RECONCILER = identities.username(identities.RECONCILER)
MANAGED = {"app.kubernetes.io/managed-by": "wukong-reconciler"}


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


# -- the reconciler: no Secret's data, nothing usable as a credential, only networks of its own shape -------------


def wukong_owner(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "vm.novasphere.dev/v1alpha1",
        "kind": "Wukong",
        "name": name,
        "uid": "0b5d6e9c-2d4f-4a57-9a41-8e3f1c0d9b17",
        "controller": True,
    }


def cloud_init_secret(namespace: str, name: str = "web-cloudinit", owner: str = "web", **changes: Any) -> str:
    obj: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": name, "namespace": namespace, "labels": MANAGED, "ownerReferences": [wukong_owner(owner)]},
        "data": {"userdata": "I2Nsb3VkLWNvbmZpZw=="},
    }
    for key, value in changes.items():
        target = obj["metadata"] if key in ("annotations", "labels") else obj
        target[key] = value
    return json.dumps(obj)


@pytest.fixture(scope="module")
def reconciler_kube(cluster, installed) -> Kube:
    """A client holding the reconciler's own token: for the requests kubectl would precede with a GET of its own
    (patch, apply), which RBAC refuses before the API server is asked what matters."""
    return Kube(load_api_client(str(identities.token_kubeconfig(cluster, identities.RECONCILER))), "attacker")


@pytest.mark.usefixtures("installed")
def test_the_reconciler_reads_no_secret_by_any_verb(cluster, reconciler_kube, namespace):
    cluster.kubectl("create", "secret", "generic", "db-password", "-n", namespace, "--from-literal=password=hunter2")
    refused(act_as(cluster, RECONCILER, "get", "secret", "db-password", "-n", namespace), "cannot get")
    refused(act_as(cluster, RECONCILER, "get", "secrets", "-A"), "cannot list")
    refused(act_as(cluster, RECONCILER, "get", "secrets", "-A", "--watch-only", "--request-timeout=2s"), "cannot")
    # A patch answers with the whole object, data included: refused for any Secret it does not manage.
    attempts = {
        "a merge patch": lambda: reconciler_kube.patch(SECRETS, namespace, "db-password", {"metadata": {}}),
        "a JSON patch": lambda: reconciler_kube.patch(
            SECRETS, namespace, "db-password", [{"op": "test", "path": "/type", "value": "Opaque"}], JSON_PATCH
        ),
        "a server-side apply": lambda: reconciler_kube.apply(
            SECRETS, json.loads(cloud_init_secret(namespace, name="db-password")), force=True
        ),
    }
    for what, attempt in attempts.items():
        with pytest.raises(ApiError) as refusal:
            attempt()
        assert "is not managed by the Wukong reconciler" in refusal.value.message, what
        assert "aHVudGVyMg" not in str(refusal.value)  # base64 of the password
    secret = cluster.kubectl("get", "secret", "db-password", "-n", namespace, "-o", "json").stdout
    assert json.loads(secret)["data"] == {"password": "aHVudGVyMg=="}


@pytest.mark.usefixtures("installed")
@pytest.mark.parametrize("operator_namespace", ["kubevirt", "cdi", "cert-manager"])
def test_the_reconciler_cannot_mint_a_token_for_an_operators_service_account(cluster, operator_namespace):
    cluster.kubectl("create", "namespace", operator_namespace, check=False)
    account = f"{operator_namespace}-operator"
    cluster.kubectl("create", "serviceaccount", account, "-n", operator_namespace, check=False)
    token_annotation = {"kubernetes.io/service-account.name": account}
    attempts = {
        "a token Secret": cloud_init_secret(
            operator_namespace, type="kubernetes.io/service-account-token", annotations=token_annotation
        ),
        "an Opaque Secret annotated for the account": cloud_init_secret(
            operator_namespace, annotations=token_annotation
        ),
        "a token Secret as a dry run": json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "kubernetes.io/service-account-token",
                "metadata": {"name": "probe", "namespace": operator_namespace, "annotations": token_annotation},
            }
        ),
    }
    for what, manifest in attempts.items():
        dry_run = "--dry-run=server" if "dry run" in what else "--dry-run=none"
        result = act_as(cluster, RECONCILER, "create", dry_run, "-f", "-", stdin=manifest)
        assert result.returncode != 0, f"{what} was admitted"
        assert "ValidatingAdmissionPolicy 'wukong-reconciler-writes-only-its-own'" in result.stderr, result.stderr
    assert cluster.kubectl("get", "secrets", "-n", operator_namespace, "-o", "name").stdout.strip() == ""


@pytest.mark.usefixtures("installed")
@pytest.mark.parametrize(
    ("manifest", "what"),
    [
        (lambda ns: cloud_init_secret(ns, name="web-keys"), "a name that is not its Wukong's -cloudinit"),
        (lambda ns: cloud_init_secret(ns, owner="other"), "a Wukong that does not control it"),
        (lambda ns: cloud_init_secret(ns, type="example.com/credential"), "a type other than Opaque"),
        (lambda ns: cloud_init_secret(ns, data={"token": "eA=="}), "a key other than userdata and networkdata"),
        (lambda ns: cloud_init_secret(ns, labels={}), "no managed-by label"),
    ],
    ids=["name", "owner", "type", "key", "label"],
)
def test_the_reconciler_writes_only_cloud_init_secrets(cluster, namespace, manifest, what):
    result = act_as(cluster, RECONCILER, "create", "-f", "-", stdin=manifest(namespace))
    assert result.returncode != 0, f"a Secret with {what} was admitted"
    assert "ValidatingAdmissionPolicy" in result.stderr, result.stderr
    own = act_as(cluster, RECONCILER, "create", "--dry-run=server", "-f", "-", stdin=cloud_init_secret(namespace))
    assert own.returncode == 0, own.stderr


@pytest.mark.usefixtures("installed")
def test_the_reconciler_learns_that_a_secret_exists_and_nothing_else(cluster, namespace):
    """Its one question about a Secret it does not own: a dry-run create of an empty Opaque Secret."""
    cluster.kubectl("create", "secret", "generic", "web-keys", "-n", namespace, "--from-literal=key1=ssh-ed25519 AAAA")

    def probe(name: str) -> subprocess.CompletedProcess[str]:
        empty = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": {"name": name}}
        return act_as(
            cluster,
            RECONCILER,
            "create",
            "--dry-run=server",
            "-n",
            namespace,
            "-o",
            "json",
            "-f",
            "-",
            stdin=json.dumps(empty),
        )

    taken = probe("web-keys")
    assert taken.returncode != 0 and "AlreadyExists" in taken.stderr, taken.stderr
    assert "c3NoLWVk" not in taken.stdout + taken.stderr  # base64 of the key
    free = probe("nobody-keys")
    assert free.returncode == 0, free.stderr
    assert "data" not in json.loads(free.stdout)
    assert cluster.kubectl("get", "secret", "nobody-keys", "-n", namespace, check=False).returncode != 0
    with_data = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": {"name": "x"}, "data": {"a": ""}}
    refused(
        act_as(
            cluster, RECONCILER, "create", "--dry-run=server", "-n", namespace, "-f", "-", stdin=json.dumps(with_data)
        ),
        "ValidatingAdmissionPolicy 'wukong-reconciler-writes-only-its-own'",
    )


def nad(namespace: str, config: dict[str, Any], name: str = "web-lan", **metadata: Any) -> str:
    return json.dumps(
        {
            "apiVersion": "k8s.cni.cncf.io/v1",
            "kind": "NetworkAttachmentDefinition",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": MANAGED,
                "ownerReferences": [wukong_owner("web")],
                **metadata,
            },
            "spec": {"config": json.dumps(config, sort_keys=True)},
        }
    )


BRIDGE = {"bridge": "br-lan", "cniVersion": "0.3.1", "ipam": {}, "name": "web-lan", "type": "bridge", "vlan": 100}


@pytest.mark.usefixtures("installed")
@pytest.mark.parametrize(
    "config",
    [
        {"cniVersion": "0.3.1", "device": "eth0", "name": "web-lan", "type": "host-device"},
        {"cniVersion": "0.3.1", "name": "web-lan", "plugins": [{"type": "bridge", "bridge": "br-lan"}]},
        {**BRIDGE, "isGateway": True, "ipMasq": True},
        {**BRIDGE, "type": "tuning", "sysctl": {"net.ipv4.ip_forward": "1"}},
        {**BRIDGE, "ipam": {"type": "host-local", "dataDir": "/etc", "subnet": "10.0.0.0/8"}},
        {**BRIDGE, "name": "someone-elses"},
    ],
    ids=["host-device", "plugin-chain", "bridge-options", "tuning", "host-local-ipam", "another-cni-name"],
)
def test_the_reconciler_may_not_write_a_network_it_would_never_make(cluster, namespace, config):
    result = act_as(cluster, RECONCILER, "create", "-f", "-", stdin=nad(namespace, config))
    refused(result, "may write only NetworkAttachmentDefinitions a Wukong controls")


@pytest.mark.usefixtures("installed")
@pytest.mark.parametrize(
    "network",
    [
        Network("lan", "bridge", "br-lan", vlan_id=100, ip_config=IPConfig("dhcp")),
        Network("lan", "bridge"),
        Network(
            "st", "macvlan", master="eth1", ip_config=IPConfig("static", "10.20.0.5/24", "10.20.0.1", ("10.20.0.2",))
        ),
        Network("st", "macvlan"),
        Network(
            "vf",
            "sriov",
            resource_name="intel.com/sriov_netdevice",
            vlan_id=4094,
            ip_config=IPConfig("static", "fd00::5/64"),
        ),
        Network("o", "ovs", "br1", vlan_id=1),
        Network("n" * 60, "bridge", "br0"),
    ],
    ids=["bridge-vlan-dhcp", "bridge-default", "macvlan-static", "macvlan-default", "sriov-ipv6", "ovs", "long-name"],
)
def test_every_network_the_reconciler_makes_is_admitted(cluster, namespace, network):
    """The policy's CNI shape and reconciler/networks.py are one contract: what the one writes, the other admits."""
    wukong = {"metadata": {"name": "web", "namespace": namespace, "uid": "0b5d6e9c-2d4f-4a57-9a41-8e3f1c0d9b17"}}
    made = json.dumps(network_attachment_definition(wukong, network))
    result = act_as(cluster, RECONCILER, "create", "--dry-run=server", "-f", "-", stdin=made)
    assert result.returncode == 0, result.stderr


@pytest.mark.usefixtures("installed")
def test_the_reconciler_may_write_the_networks_it_makes_and_only_for_a_wukong(cluster, namespace):
    own = act_as(cluster, RECONCILER, "create", "--dry-run=server", "-f", "-", stdin=nad(namespace, BRIDGE))
    assert own.returncode == 0, own.stderr
    orphan = json.loads(nad(namespace, BRIDGE))
    del orphan["metadata"]["ownerReferences"]
    result = act_as(cluster, RECONCILER, "create", "-f", "-", stdin=json.dumps(orphan))
    refused(result, "may write only NetworkAttachmentDefinitions a Wukong controls")


# -- the whole of it: what the API server says each account may do, against the reviewed listing ------------------


@pytest.mark.usefixtures("installed")
def test_each_account_may_do_exactly_what_the_reviewed_listing_says(cluster):
    """A rule added to any of the three accounts' RBAC fails here until deploy/rbac/expected-permissions.txt is
    updated with it (`make permissions-update`), in the same review."""
    assert identities.permissions(cluster) == identities.expected_permissions()


@pytest.mark.usefixtures("installed")
def test_the_reconciler_deletes_only_the_snapshots_it_manages(cluster, namespace):
    """It prunes the VolumeSnapshots it took beyond a disk's keep; a tenant's own snapshot is out of its reach."""
    snapshot = {
        "apiVersion": "snapshot.storage.k8s.io/v1",
        "kind": "VolumeSnapshot",
        "metadata": {"name": "tenants-backup", "namespace": namespace},
        "spec": {"source": {"persistentVolumeClaimName": "db"}},
    }
    cluster.kubectl("create", "-f", "-", stdin=json.dumps(snapshot))
    result = act_as(cluster, RECONCILER, "delete", "volumesnapshot", "tenants-backup", "-n", namespace)
    refused(result, "is not managed by the Wukong reconciler")
    cluster.kubectl("get", "volumesnapshot", "tenants-backup", "-n", namespace)
