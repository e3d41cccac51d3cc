"""Tenants use Wukongs through the roles they already hold: the built-in view, edit and admin, with the rules of
deploy/rbac/users.yaml aggregated in, and nothing more. Every answer here is the real API server's (its RBAC
authoriser, and the real webhook on the writes it admits)."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from devcluster.controlplane import ControlPlane
from tests.builders import disk, wukong
from tests.e2e.security.conftest import Tenant, bind
from tests.waiting import poll

pytestmark = pytest.mark.usefixtures("webhook")
GROUP = "vm.novasphere.dev"


def vm(namespace: str, name: str = "vm1") -> str:
    obj = wukong(disk("system", "10Gi"), name=name)
    obj["metadata"]["namespace"] = namespace
    return json.dumps(obj)


def read(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def url(resource: str, name: str, namespace: str | None = None, subresource: str = "") -> str:
    """For ``kubectl replace|delete --raw``: one request with exactly that verb. ``kubectl patch``, ``replace
    --subresource`` and ``delete NAME`` of an object the user may not read stop at the read they send first."""
    scope = f"namespaces/{namespace}/" if namespace else ""
    return f"/apis/{GROUP}/v1alpha1/{scope}{resource}/{name}" + (f"/{subresource}" if subresource else "")


def assert_forbidden(result: subprocess.CompletedProcess[str], verb: str, resource: str) -> None:
    """Refused by RBAC (403 naming the verb and resource), not by the webhook or the schema, which answer later."""
    assert result.returncode != 0, f"{verb} {resource} was allowed: {result.stdout}"
    assert "(Forbidden)" in result.stderr, result.stderr
    assert f'cannot {verb} resource "{resource}" in API group "{GROUP}"' in result.stderr, result.stderr


def test_a_namespace_editor_creates_reads_changes_and_deletes_a_wukong_through_the_webhook(tenant: Tenant):
    ns = tenant.namespace
    assert tenant.kubectl("create", "-f", "-", stdin=vm(ns)).returncode == 0
    stored = read(tenant.kubectl("get", "wukong", "vm1", "-n", ns, "-o", "json"))
    assert stored["spec"]["disks"][0]["storageClassName"] == "longhorn", "not defaulted: the webhook was not called"

    patched = tenant.kubectl("patch", "wukong", "vm1", "-n", ns, "--type=merge", "-p", '{"spec": {"cpu": 4}}')
    assert patched.returncode == 0, patched.stderr
    assert read(tenant.kubectl("get", "wukong", "vm1", "-n", ns, "-o", "json"))["spec"]["cpu"] == 4
    listed = read(tenant.kubectl("get", "wukongs", "-n", ns, "-o", "json"))
    assert [item["metadata"]["name"] for item in listed["items"]] == ["vm1"]

    assert tenant.kubectl("delete", "wukong", "vm1", "-n", ns).returncode == 0
    gone = tenant.cluster.kubectl("get", "wukong", "vm1", "-n", ns, check=False)
    assert "(NotFound)" in gone.stderr


def test_a_namespace_editor_may_not_read_or_write_the_status_subresource_of_its_own_wukong(tenant: Tenant):
    ns = tenant.namespace
    assert tenant.kubectl("create", "-f", "-", stdin=vm(ns)).returncode == 0
    forged = read(tenant.kubectl("get", "wukong", "vm1", "-n", ns, "-o", "json"))
    forged["status"] = {"phase": "Running", "observedGeneration": 999}
    put = tenant.kubectl("replace", "--raw", url("wukongs", "vm1", ns, "status"), "-f", "-", stdin=json.dumps(forged))
    assert_forbidden(put, "update", "wukongs/status")
    assert [verb for verb in ("get", "patch", "update") if tenant.can(verb, subresource="status")] == []
    stored = read(tenant.cluster.kubectl("get", "wukong", "vm1", "-n", ns, "-o", "json"))
    assert (stored.get("status") or {}).get("observedGeneration") != 999


def test_a_namespace_editor_may_not_create_change_or_delete_a_wukongpolicy(cluster: ControlPlane, tenant: Tenant):
    name = f"{tenant.namespace}-limits"
    policy = {
        "apiVersion": f"{GROUP}/v1alpha1",
        "kind": "WukongPolicy",
        "metadata": {"name": name},
        "spec": {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": tenant.namespace}},
            "enforcementAction": "deny",
            "compute": {"maxCpu": 1},
        },
    }
    created = tenant.kubectl("create", "-f", "-", stdin=json.dumps(policy))
    assert_forbidden(created, "create", "wukongpolicies")

    cluster.apply([policy])
    policy["spec"]["enforcementAction"] = "warn"
    loosened = tenant.kubectl("replace", "--raw", url("wukongpolicies", name), "-f", "-", stdin=json.dumps(policy))
    assert_forbidden(loosened, "update", "wukongpolicies")
    assert_forbidden(tenant.kubectl("delete", "--raw", url("wukongpolicies", name)), "delete", "wukongpolicies")
    assert [verb for verb in ("get", "list", "patch") if tenant.can(verb, "wukongpolicies", namespace="")] == []
    stored = read(cluster.kubectl("get", "wukongpolicy", name, "-o", "json"))
    assert stored["spec"]["enforcementAction"] == "deny"
    cluster.kubectl("delete", "wukongpolicy", name)


def test_a_namespace_editor_reaches_no_wukong_in_another_namespace(cluster: ControlPlane, tenant: Tenant):
    other = f"{tenant.namespace}-other"
    cluster.kubectl("create", "namespace", other)
    cluster.kubectl("create", "-f", "-", stdin=vm(other, "theirs"))

    assert_forbidden(tenant.kubectl("get", "wukong", "theirs", "-n", other), "get", "wukongs")
    assert_forbidden(tenant.kubectl("get", "wukongs", "-n", other), "list", "wukongs")
    assert_forbidden(tenant.kubectl("get", "wukongs", "--all-namespaces"), "list", "wukongs")
    assert_forbidden(tenant.kubectl("create", "-f", "-", stdin=vm(other, "planted")), "create", "wukongs")
    grown = read(cluster.kubectl("get", "wukong", "theirs", "-n", other, "-o", "json"))
    grown["spec"]["cpu"] = 8
    put = tenant.kubectl("replace", "--raw", url("wukongs", "theirs", other), "-f", "-", stdin=json.dumps(grown))
    assert_forbidden(put, "update", "wukongs")
    assert_forbidden(tenant.kubectl("delete", "--raw", url("wukongs", "theirs", other)), "delete", "wukongs")
    assert not tenant.can("patch", namespace=other)
    names = read(cluster.kubectl("get", "wukongs", "-n", other, "-o", "json"))["items"]
    assert [(w["metadata"]["name"], w["spec"]["cpu"]) for w in names] == [("theirs", 2)]


def test_a_namespace_viewer_reads_wukongs_but_may_not_create_change_or_delete_them(
    cluster: ControlPlane, tenant: Tenant
):
    ns = tenant.namespace
    assert tenant.kubectl("create", "-f", "-", stdin=vm(ns)).returncode == 0
    viewer = bind(cluster, ns, "view", f"viewer-{ns}")

    assert read(viewer.kubectl("get", "wukong", "vm1", "-n", ns, "-o", "json"))["metadata"]["name"] == "vm1"
    listed = read(viewer.kubectl("get", "wukongs", "-n", ns, "-o", "json"))
    assert [item["metadata"]["name"] for item in listed["items"]] == ["vm1"]
    assert_forbidden(viewer.kubectl("create", "-f", "-", stdin=vm(ns, "vm2")), "create", "wukongs")
    changed = viewer.kubectl("patch", "wukong", "vm1", "-n", ns, "--type=merge", "-p", '{"spec": {"cpu": 4}}')
    assert_forbidden(changed, "patch", "wukongs")
    assert_forbidden(viewer.kubectl("delete", "wukong", "vm1", "-n", ns), "delete", "wukongs")


@pytest.mark.parametrize("role", ["view", "edit", "admin"])
def test_the_built_in_roles_grant_wukongs_only_never_their_status_or_the_policies(cluster: ControlPlane, role: str):
    """A RoleBinding cannot show a rule on cluster-scoped WukongPolicies (it grants nothing there), but a
    ClusterRoleBinding to view/edit/admin would: so the aggregated roles themselves are read from the API server."""

    def ours() -> list[dict[str, Any]] | None:
        rules = read(cluster.kubectl("get", "clusterrole", role, "-o", "json")).get("rules") or []
        found = [rule for rule in rules if GROUP in rule.get("apiGroups", []) or "*" in rule.get("apiGroups", [])]
        return found or None

    rules = poll(ours, f"the Wukong rules to be aggregated into {role!r}", interval=0.2)
    assert {resource for rule in rules for resource in rule["resources"]} == {"wukongs"}
    assert all(rule.get("apiGroups") == [GROUP] and not rule.get("resourceNames") for rule in rules)
    writes = {"create", "update", "patch", "delete", "deletecollection"}
    granted = {verb for rule in rules for verb in rule["verbs"]}
    assert granted == ({"get", "list", "watch"} if role == "view" else {"get", "list", "watch"} | writes)
