"""The chart as a user installs it: the real ``helm install``, ``upgrade`` and ``uninstall`` into a fresh namespace of
an empty devcluster (no CRDs or roles installed beforehand: the chart brings its own), judged by what the API
server holds afterwards. The Pods cannot run here (no kubelet): the objects are the outcome.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from devcluster import chart, toolchain
from devcluster.controlplane import ControlPlane
from tests.e2e.conftest import POD_CIDRS

CHART = chart.CHART
RELEASE, NAMESPACE = "wukong", "tenant-ops"  # not wukong-system: nothing may assume it
DEPLOYMENTS = ("wukong-webhook", "wukong-reconciler", "wukong-certs")
WEBHOOK_CONFIGURATIONS = ("mutatingwebhookconfiguration", "validatingwebhookconfiguration")
POLICIES = (
    "wukong-reconciler-writes-only-its-own",
    "wukong-volumes-deletion-guard",
    "wukong-certs-changes-only-ca-bundles",
)
CLUSTER_ROLES = ("wukong-webhook", "wukong-reconciler", "wukong-certs", "wukong-view", "wukong-edit", "wukong-admin")
CRDS = ("wukongs.vm.novasphere.dev", "wukongpolicies.vm.novasphere.dev")
CA_BUNDLE = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nwritten by wukong-certs\n").decode()
POD_CIDR_VALUES = [f"--set=networkPolicy.podCIDRs.{family}={cidr}" for family, cidr in POD_CIDRS.items()]


@pytest.fixture(scope="module")
def empty_cluster() -> Iterator[ControlPlane]:
    """A control plane of its own: the session's has the product's cluster-wide objects under devcluster's hand."""
    plane = ControlPlane.start(log=lambda line: print(line, flush=True), base=False)
    try:
        yield plane
    finally:
        plane.stop()


def run_helm(plane: ControlPlane | None, *args: str) -> subprocess.CompletedProcess[str]:
    """helm against ``plane`` (None: no cluster, as `helm template` runs)."""
    config = [f"--kubeconfig={plane.kubeconfig}"] if plane else []
    binary = str(toolchain.binary_path("helm"))
    return subprocess.run([binary, *config, *args], capture_output=True, text=True, timeout=300)


def helm(plane: ControlPlane, *args: str) -> str:
    result = run_helm(plane, *args)
    assert result.returncode == 0, f"helm {' '.join(args[:2])}: {result.stdout}{result.stderr}"
    return result.stdout


def get(plane: ControlPlane, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
    where = ["-n", namespace] if namespace else []
    result = plane.kubectl("get", kind, name, *where, "-o", "json", "--ignore-not-found", check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout) if result.stdout.strip() else None


def names(plane: ControlPlane, kind: str, namespace: str | None = None) -> set[str]:
    where = ["-n", namespace] if namespace else []
    result = plane.kubectl("get", kind, *where, "-o", "jsonpath={.items[*].metadata.name}")
    return set(result.stdout.split())


def container(plane: ControlPlane, deployment: str) -> dict[str, Any]:
    found = get(plane, "deployment", deployment, NAMESPACE)
    assert found is not None, deployment
    containers: list[dict[str, Any]] = found["spec"]["template"]["spec"]["containers"]
    return containers[0]


def test_install_upgrade_and_uninstall_into_a_namespace_helm_creates(empty_cluster: ControlPlane, tmp_path: Path):
    plane = empty_cluster
    notes = helm(plane, "install", RELEASE, str(CHART), "-n", NAMESPACE, "--create-namespace", *POD_CIDR_VALUES)
    assert f"installed in the namespace {NAMESPACE}" in notes

    # The CRDs from crds/, established; the release's objects in its namespace, run from the chart's version.
    for crd in CRDS:
        plane.kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/{crd}")
    image = f"{chart.IMAGE}:{chart.version()}"
    for deployment in DEPLOYMENTS:
        assert container(plane, deployment)["image"] == image, deployment
    assert "--namespace=" + NAMESPACE in container(plane, "wukong-certs")["command"]
    assert f"--tls-secret={NAMESPACE}/wukong-webhook-tls" in container(plane, "wukong-webhook")["command"]
    service = get(plane, "service", "wukong-webhook", NAMESPACE)
    assert service is not None and service["spec"]["ports"][0]["port"] == 443
    assert names(plane, "poddisruptionbudget", NAMESPACE) == {"wukong-webhook"}
    assert names(plane, "networkpolicy", NAMESPACE) >= {"wukong-webhook"}
    assert names(plane, "serviceaccount", NAMESPACE) >= set(DEPLOYMENTS)

    # The webhooks call the Service in the release's namespace, and leave that namespace alone; no CA bundle yet
    # (wukong-certs injects it once it runs).
    for kind in WEBHOOK_CONFIGURATIONS:
        configuration = get(plane, kind, "wukong-webhook")
        assert configuration is not None, kind
        for webhook in configuration["webhooks"]:
            assert webhook["clientConfig"]["service"]["namespace"] == NAMESPACE
            assert "caBundle" not in webhook["clientConfig"]
            excluded = webhook["namespaceSelector"]["matchExpressions"][0]["values"]
            assert excluded == ["kube-system", NAMESPACE]

    # RBAC for the three accounts of this namespace, the users' aggregated roles, and the admission policies
    # naming those accounts.
    assert names(plane, "clusterrole") >= set(CLUSTER_ROLES)
    for binding in names(plane, "clusterrolebinding") & {"wukong-webhook", "wukong-reconciler", "wukong-certs"}:
        found = get(plane, "clusterrolebinding", binding)
        assert found is not None and {s["namespace"] for s in found["subjects"]} == {NAMESPACE}, binding
    assert names(plane, "validatingadmissionpolicy") >= set(POLICIES)
    assert names(plane, "validatingadmissionpolicybinding") >= set(POLICIES)
    certs_policy = json.dumps(get(plane, "validatingadmissionpolicy", "wukong-certs-changes-only-ca-bundles"))
    assert f"system:serviceaccount:{NAMESPACE}:wukong-certs" in certs_policy

    # Every object of the release is on the API server, and none names the namespace of the kustomize install.
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(helm(plane, "get", "manifest", RELEASE, "-n", NAMESPACE))
    assert chart.NAMESPACE not in manifest.read_text()
    held = plane.kubectl("get", "-f", str(manifest), "-o", "name").stdout.split()
    assert len(held) == len([doc for doc in yaml.safe_load_all(manifest.read_text()) if doc])

    # wukong-certs injects the bundle (as another field manager); an upgrade changes values and keeps the bundle.
    for kind in WEBHOOK_CONFIGURATIONS:
        patch = [{"op": "add", "path": "/webhooks/0/clientConfig/caBundle", "value": CA_BUNDLE}]
        plane.kubectl("patch", kind, "wukong-webhook", "--type=json", "-p", json.dumps(patch))
    helm(
        plane,
        "upgrade",
        RELEASE,
        str(CHART),
        "-n",
        NAMESPACE,
        "--reuse-values",
        "--set=webhook.replicas=3",
        "--set=reconciler.hotplugDisks=true",
    )
    webhook = get(plane, "deployment", "wukong-webhook", NAMESPACE)
    assert webhook is not None and webhook["spec"]["replicas"] == 3
    assert "--hotplug-disks" in container(plane, "wukong-reconciler")["command"]
    for kind in WEBHOOK_CONFIGURATIONS:
        configuration = get(plane, kind, "wukong-webhook")
        assert configuration is not None and configuration["webhooks"][0]["clientConfig"]["caBundle"] == CA_BUNDLE

    # Uninstall removes every object of the release; the CRDs stay (Helm never deletes them, nor the Wukongs).
    helm(plane, "uninstall", RELEASE, "-n", NAMESPACE, "--wait")
    assert plane.kubectl("get", "-f", str(manifest), "-o", "name", "--ignore-not-found").stdout.split() == []
    assert names(plane, "deployment", NAMESPACE) == set()
    assert names(plane, "service", NAMESPACE) == set()
    for kind in WEBHOOK_CONFIGURATIONS:
        assert get(plane, kind, "wukong-webhook") is None, kind
    assert names(plane, "clusterrole") & set(CLUSTER_ROLES) == set()
    assert names(plane, "validatingadmissionpolicy") & set(POLICIES) == set()
    assert names(plane, "validatingadmissionpolicybinding") & set(POLICIES) == set()
    for crd in CRDS:
        assert get(plane, "crd", crd) is not None, crd


def test_the_kubernetes_version_is_judged_against_a_cluster_only(empty_cluster: ControlPlane, tmp_path: Path):
    """Helm's kubeVersion would refuse plain `helm template` (its default is v1.20.0): the chart checks the version
    where it is known, on install, upgrade or a server-side dry run. Shown with the floor raised above the cluster's."""
    raised = tmp_path / "wukong"
    shutil.copytree(CHART, raised)
    helpers = raised / "templates" / "_helpers.tpl"
    assert helpers.read_text().count('"<1.30.0-0"') == 1
    helpers.write_text(helpers.read_text().replace('"<1.30.0-0"', '"<99.0.0-0"'))
    rendered = run_helm(None, "template", RELEASE, str(raised), "--set=networkPolicy.enabled=false")
    assert rendered.returncode == 0, rendered.stderr
    where = ["-n", "version-check", "--create-namespace", "--dry-run=server"]
    refused = run_helm(empty_cluster, "install", RELEASE, str(raised), *where, *POD_CIDR_VALUES)
    version = toolchain.kubernetes_version().lstrip("v")
    assert refused.returncode != 0
    assert f"wukong needs Kubernetes 1.30 or newer (ValidatingAdmissionPolicy v1); this cluster is v{version}" in (
        refused.stderr
    )
