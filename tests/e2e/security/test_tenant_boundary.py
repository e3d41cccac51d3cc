"""A Wukong author reaches nothing a namespace editor could not reach without one (SPEC 9, tenant boundary).

Every attack is sent by a tenant bound only to the built-in ``edit`` role, through the real API server and webhook;
each refusal must name the field and the rule that would allow it. The positive controls show that a cluster
admin's WukongPolicy opens exactly what it names.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml

from devcluster.controlplane import ControlPlane
from kubeclient.credentials import load_api_client
from kubeclient.resources import EVENTS, NAMESPACES, SECRETS, Resource
from kubeclient.rest import Kube
from tests.builders import disk, wukong
from tests.e2e.security.conftest import Tenant
from tests.e2e.test_namespace_policy import limits
from tests.e2e.test_reconciler import wait_condition
from tests.waiting import poll, wait_for_object
from webhook.facts import FactsUnavailable
from webhook.factscache import FactsCache
from wukong.api import WUKONG_POLICIES, WUKONGS
from wukong.cloudinit import password_matches

pytestmark = pytest.mark.usefixtures("webhook")
PASSWORD = "Tr0ub4dor-and-3"


def manifest(tenant: Tenant, name: str = "vm1", **spec: Any) -> str:
    obj = wukong(disk("system", "10Gi"), name=name, **spec)
    obj["metadata"]["namespace"] = tenant.namespace
    return json.dumps(obj)


def refused(tenant: Tenant, *lines: str, name: str = "vm1", **spec: Any) -> str:
    """Apply as the tenant; it must be refused by the webhook, each expected line in kubectl's message."""
    result = tenant.kubectl("apply", "-f", "-", stdin=manifest(tenant, name, **spec))
    assert result.returncode != 0, f"admitted: {result.stdout}"
    assert f'The Wukong "{name}" is invalid' in result.stderr, result.stderr
    for line in lines:
        assert line in result.stderr, result.stderr
    return result.stderr


def admitted(tenant: Tenant, **spec: Any) -> None:
    result = tenant.kubectl("apply", "-f", "-", stdin=manifest(tenant, **spec))
    assert result.returncode == 0, result.stderr


@pytest.fixture
def allow(cluster: ControlPlane, tenant: Tenant) -> Iterator[Callable[..., None]]:
    """``allow(probe, **rules)``: a cluster admin's WukongPolicy on the tenant's namespace, in force once the tenant's
    dry run of ``probe`` (a spec) is admitted; deleted after the test, so no other test's audit sees it."""
    name = f"allow-{tenant.namespace}"

    def put(probe: dict[str, Any], **rules: Any) -> None:
        cluster.kubectl("apply", "-f", "-", stdin=json.dumps(limits(name, tenant.namespace, **rules)))
        poll(
            lambda: (
                tenant.kubectl("apply", "--dry-run=server", "-f", "-", stdin=manifest(tenant, **probe)).returncode == 0
            ),
            "the webhook to apply the cluster admin's policy",
        )

    yield put
    cluster.kubectl("delete", "wukongpolicy", name, "--ignore-not-found")


# -- host networks ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "network, shown",
    [
        ({"type": "bridge", "bridgeName": "cni0"}, '"bridge cni0" reaches the nodes\' own network'),
        ({"type": "macvlan", "master": "eth0"}, '"macvlan eth0" reaches the nodes\' own network'),
        (
            {"type": "ovs", "bridgeName": "br-ex", "vlanId": 4000},
            '"ovs br-ex VLAN 4000" reaches the nodes\' own network',
        ),
        (
            {"type": "sriov", "resourceName": "intel.com/sriov_netdevice"},
            '"sriov intel.com/sriov_netdevice" is a device resource',
        ),
        ({"type": "sriov", "resourceName": "nvidia.com/gpu"}, '"sriov nvidia.com/gpu" is a device resource'),
        ({"type": "bridge"}, '"bridge lan" reaches the nodes\' own network'),
    ],
    ids=[
        "the-node-bridge",
        "macvlan-on-the-node-nic",
        "an-ovs-vlan",
        "an-sriov-vf",
        "a-gpu-as-an-sriov-resource",
        "a-bridge-named-after-it",
    ],
)
def test_a_network_over_a_host_interface_is_refused_naming_the_policy_rule(tenant, network, shown):
    named_in = next((key for key in ("master", "resourceName") if key in network), "bridgeName")
    refused(
        tenant,
        f"spec.networks[0].{named_in}: Forbidden: host network {shown}",
        "networks.hostNetworks: [{type: ",
        networks=[{"name": "lan", **network}],
    )


def test_macvlan_without_a_master_is_refused(tenant):
    refused(
        tenant,
        "spec.networks[0].master: Forbidden: macvlan without master",
        networks=[{"name": "lan", "type": "macvlan"}],
    )


def test_a_host_network_a_cluster_admin_names_is_allowed_and_nothing_beside_it(tenant, allow):
    lan = {"name": "lan", "type": "bridge", "bridgeName": "br-lan", "vlanId": 100}
    allow(
        {"networks": [lan]},
        networks={"hostNetworks": [{"type": "bridge", "interface": "br-lan", "vlans": ["100"]}]},
    )
    admitted(tenant, networks=[lan])
    refused(
        tenant,
        'host network "bridge br-lan VLAN 101" reaches the nodes\' own network',
        '(allowed here: "bridge br-lan VLAN 100")',
        networks=[{**lan, "vlanId": 101}],
    )


def test_another_namespaces_network_is_refused_unless_a_policy_lists_it(tenant, allow):
    other = {"name": "lan", "type": "bridge", "nadName": "kube-system/host-lan"}
    refused(
        tenant,
        'spec.networks[0].nadName: Forbidden: NetworkAttachmentDefinition "host-lan" is in namespace "kube-system"',
        "networks.allowedAttachmentDefinitions: [kube-system/host-lan]",
        networks=[other],
    )
    admitted(tenant, networks=[{"name": "lan", "type": "bridge", "nadName": "own-lan"}])  # its own namespace's
    allow({"networks": [other]}, networks={"allowedAttachmentDefinitions": ["kube-system/host-lan"]})
    admitted(tenant, networks=[other])


# -- names that become paths -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "spec, path",
    [
        (
            {
                "networks": [
                    {"name": "lan", "type": "bridge", "nadName": "../../../../api/v1/namespaces/kube-system/secrets/x"}
                ]
            },
            "spec.networks[0].nadName",
        ),
        ({"networks": [{"name": "lan", "type": "bridge", "nadName": "a/b/c"}]}, "spec.networks[0].nadName"),
        ({"sshKeySecret": "../../secrets/admin-token"}, "spec.sshKeySecret"),
        ({"sshKeySecret": "Keys"}, "spec.sshKeySecret"),
    ],
    ids=["nad-traversal", "nad-two-slashes", "secret-traversal", "secret-upper-case"],
)
def test_a_reference_that_is_not_a_dns_name_is_refused(tenant, spec, path):
    refused(tenant, f"{path}: Invalid value:", "a DNS-1123 subdomain", **spec)


def test_the_crd_refuses_such_a_name_where_no_webhook_is_called(cluster):
    """The safety net under the webhook: kube-system is excluded from the webhooks (they can never block the
    cluster's own namespace), so there only the API server's schema check of the CRD stands."""
    hostile = wukong(disk("system", "10Gi", storageClassName="longhorn", boot=True), sshKeySecret="../x")
    del hostile["metadata"]["namespace"]
    hostile["spec"]["networks"] = [{"name": "lan", "type": "bridge", "nadName": "../../api/v1/secrets/x"}]
    result = cluster.kubectl(
        "create", "--dry-run=server", "-n", "kube-system", "-f", "-", stdin=json.dumps(hostile), check=False
    )
    assert result.returncode != 0
    assert 'spec.sshKeySecret: Invalid value: "../x": spec.sshKeySecret in body should match' in result.stderr
    assert "spec.networks[0].nadName: Invalid value" in result.stderr
    assert "denied by the Wukong admission webhook" not in result.stderr, "the webhook was not meant to be asked"


# -- placement -------------------------------------------------------------------------------------------------
CONTROL_PLANE = "node-role.kubernetes.io/control-plane"


def test_placement_on_control_plane_nodes_is_refused_naming_each_field(tenant):
    refused(
        tenant,
        "spec.highAvailability.tolerations[0].key: Forbidden: a toleration without a key tolerates every taint",
        f'spec.highAvailability.tolerations[1].key: Forbidden: taint key "{CONTROL_PLANE}" marks control-plane nodes',
        f"spec.highAvailability.nodeSelector[{CONTROL_PLANE}]: Forbidden: node label key",
        "(placement.allowedTolerationKeys)",
        "(placement.allowedNodeSelectorKeys)",
        highAvailability={
            "tolerations": [
                {"operator": "Exists"},
                {"key": CONTROL_PLANE, "operator": "Exists", "effect": "NoSchedule"},
            ],
            "nodeSelector": {CONTROL_PLANE: ""},
        },
    )


def test_a_policy_may_open_a_placement_key_and_limit_the_others(tenant, allow):
    gpu = {"tolerations": [{"key": "gpu", "operator": "Exists"}], "nodeSelector": {"pool": "gpu"}}
    admitted(tenant, highAvailability=gpu)  # ordinary keys are free until a policy lists keys
    placed = {"tolerations": [{"key": CONTROL_PLANE, "operator": "Exists"}], "nodeSelector": {"pool": "gpu"}}
    allow({"highAvailability": placed}, placement={"allowedTolerationKeys": [CONTROL_PLANE]})
    refused(
        tenant,
        'spec.highAvailability.tolerations[0].key: Forbidden: taint key "gpu" is not one policy',
        name="vm2",
        highAvailability=gpu,
    )


# -- passwords -------------------------------------------------------------------------------------------------
def everything_stored(admin: Kube, namespace: str) -> str:
    """The Wukong as stored (managed fields and annotations included), and the namespace's Events."""
    stored = admin.get(WUKONGS, namespace, "vm1")
    events = admin.list(EVENTS, namespace)[0]
    return json.dumps(stored) + json.dumps(events)


@pytest.mark.usefixtures("reconciler")
@pytest.mark.parametrize(
    "how", [["apply"], ["apply", "--server-side"], ["create"]], ids=["client-side-apply", "server-side-apply", "create"]
)
def test_a_password_rests_nowhere_in_clear_and_the_guest_still_logs_in_with_it(cluster, admin, tenant, how):
    user = {"name": "fedora", "password": PASSWORD}
    result = tenant.kubectl(*how, "-f", "-", stdin=manifest(tenant, cloudInitUser=user))
    assert result.returncode == 0, result.stderr
    again = (
        tenant.kubectl(*how[:2], "-f", "-", stdin=manifest(tenant, cloudInitUser=user)) if how[0] == "apply" else None
    )
    assert again is None or again.returncode == 0, again.stderr
    secret = wait_for_object(admin, SECRETS, tenant.namespace, "vm1-cloudinit", lambda s: s, "the cloud-init Secret")
    users = yaml.safe_load(base64.b64decode(secret["data"]["userdata"]))["users"]
    assert password_matches(PASSWORD, users[0]["passwd"]), "the guest's hash must still take the password"
    stored = admin.get(WUKONGS, tenant.namespace, "vm1")
    assert stored["spec"]["cloudInitUser"]["passwordHash"] == users[0]["passwd"]
    wait_condition(admin, tenant.namespace, "vm1", "VolumesBound", "True")
    assert PASSWORD not in everything_stored(admin, tenant.namespace)
    for log in cluster.workdir.glob("*.log"):  # the webhook's, the reconciler's, the control plane's
        assert PASSWORD not in log.read_text(errors="replace"), log.name
    assert PASSWORD not in json.dumps(secret)


def test_a_password_of_a_wrong_type_or_size_is_refused_without_echoing_it(cluster, tenant):
    for bad in (int("7" * 12), PASSWORD * 20, [PASSWORD]):
        stderr = refused(tenant, "spec.cloudInitUser.password", cloudInitUser={"name": "fedora", "password": bad})
        assert PASSWORD not in stderr and "777777" not in stderr
    assert PASSWORD not in (cluster.workdir / "webhook.log").read_text(errors="replace")


# -- a namespace the webhook's cache has not seen yet ------------------------------------------------------------
class LaggingNamespaces(Kube):
    """The real client, except that its watch of namespaces delivers nothing until ``release``: a watch that lags
    behind the writes, as a busy API server's may."""

    def __init__(self, cluster: ControlPlane) -> None:
        super().__init__(load_api_client(str(cluster.kubeconfig)), "facts-cache-test")
        self.release = threading.Event()

    def watch(self, resource: Resource, *args: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
        if resource is NAMESPACES:
            self.release.wait()
        yield from super().watch(resource, *args, **kwargs)


def test_a_namespace_the_cache_has_not_seen_is_read_before_policies_are_judged(cluster, admin, namespace):
    kube = LaggingNamespaces(cluster)
    cache = FactsCache(kube).start()
    try:
        poll(cache.ready, "the facts cache to sync")
        policy = limits(f"lagging-{namespace}", "", compute={"maxCpu": 1})
        policy["spec"]["namespaceSelector"] = {"matchLabels": {"lagging-watch": namespace}}
        admin.create(WUKONG_POLICIES, policy)
        poll(lambda: cache.facts().policies, "the cache to have the policy")
        fresh = f"{namespace}-fresh"
        admin.create(NAMESPACES, {"metadata": {"name": fresh, "labels": {"lagging-watch": namespace}}})
        assert fresh not in cache.facts().namespace_labels, "the watch was meant to lag"
        judged = cache.facts(fresh).in_namespace(fresh)
        assert [p.name for p in judged.scope.policies] == [policy["metadata"]["name"]]

        cluster.kubectl("create", "serviceaccount", "nobody", "-n", namespace)
        cache._kube = Kube(load_api_client(str(cluster.service_account_kubeconfig(namespace, "nobody"))), "x")
        with pytest.raises(FactsUnavailable, match=r"try again"):
            cache.facts(f"{namespace}-unreadable")
    finally:
        kube.release.set()
        cache.stop()
        admin.delete(WUKONG_POLICIES, None, f"lagging-{namespace}")


def test_a_namespace_created_in_the_same_apply_as_its_wukong_is_judged_by_its_policies(cluster, admin, namespace):
    policy = limits(f"same-apply-{namespace}", "", compute={"maxCpu": 1})
    policy["spec"]["namespaceSelector"] = {"matchLabels": {"same-apply": namespace}}
    admin.create(WUKONG_POLICIES, policy)
    try:
        probe = wukong(disk("a"), cpu=2)
        del probe["metadata"]["namespace"]
        probe_ns = f"{namespace}-probe"
        admin.create(NAMESPACES, {"metadata": {"name": probe_ns, "labels": {"same-apply": namespace}}})

        def denied() -> bool:
            dry_run = ("apply", "--dry-run=server", "-n", probe_ns, "-f", "-")
            return "2 CPUs exceed 1" in cluster.kubectl(*dry_run, stdin=json.dumps(probe), check=False).stderr

        poll(denied, "the webhook to have the policy")
        for attempt in range(5):
            fresh = f"{namespace}-n{attempt}"
            ns = {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": fresh, "labels": {"same-apply": namespace}},
            }
            vm = wukong(disk("a"), cpu=2)
            vm["metadata"]["namespace"] = fresh
            both = json.dumps({"apiVersion": "v1", "kind": "List", "items": [ns, vm]})
            result = cluster.kubectl("apply", "-f", "-", stdin=both, check=False)
            assert result.returncode != 0 and "2 CPUs exceed 1" in result.stderr, result.stdout + result.stderr
    finally:
        admin.delete(WUKONG_POLICIES, None, f"same-apply-{namespace}")
