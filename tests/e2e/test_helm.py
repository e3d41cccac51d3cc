"""The Helm chart (generated from deploy/ by `make chart`) renders what the kustomize base does with its default
values; both are accepted by the real API server. tests/e2e/test_helm_install.py installs it."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from devcluster import toolchain
from tests.e2e.conftest import POD_CIDRS, kustomized, server_dry_run

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "wukong"
CERT_MANAGER_KINDS = {"Issuer", "Certificate"}  # cert-manager's CRDs are not installed on devcluster
MONITORING_KINDS = {"ServiceMonitor", "PodMonitor", "PrometheusRule"}  # nor the Prometheus Operator's
MONITORING = ("--set", "monitoring.enabled=true", "--api-versions", "monitoring.coreos.com/v1")
# Aggregated into the built-in view/edit/admin: both installs must carry them, or namespace editors lose Wukongs.
USER_ROLES = {("ClusterRole", f"wukong-{role}") for role in ("view", "edit", "admin")}


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(toolchain.binary_path("helm")), *args], capture_output=True, text=True, timeout=120)


POD_CIDR_VALUES = [f"--set=networkPolicy.podCIDRs.{family}={cidr}" for family, cidr in POD_CIDRS.items()]


def template(*values: str) -> subprocess.CompletedProcess[str]:
    """``helm template`` as a user types it: no --kube-version (Helm's default, v1.20.0, must not refuse it)."""
    return helm("template", "wukong", str(CHART), "--namespace", "wukong-system", "--include-crds", *values)


def rendered(*values: str) -> list[dict[str, Any]]:
    """The chart with the pod CIDRs the kustomize copies get (tests.e2e.conftest.kustomized), and ``values``."""
    result = template(*POD_CIDR_VALUES, *values)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def by_name(objects: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


def dry_run(cluster, objects: list[dict[str, Any]]) -> None:
    cluster.kubectl("create", "namespace", "wukong-system", check=False)  # a dry run creates no namespace first
    absent = CERT_MANAGER_KINDS | MONITORING_KINDS
    result = server_dry_run(cluster, [o for o in objects if o["kind"] not in absent], "-helm-dry-run")
    assert result.returncode == 0, result.stderr


def test_the_chart_lints():
    result = helm("lint", str(CHART))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("values", "overlay"),
    [
        ((), ROOT / "deploy"),
        (("--set", "certificates.mode=cert-manager"), ROOT / "overlays" / "cert-manager"),
        (MONITORING, ROOT / "overlays" / "monitoring"),
    ],
    ids=["builtin-certificates", "cert-manager", "monitoring"],
)
def test_the_chart_renders_exactly_what_kustomize_does_and_the_api_server_accepts_it(
    cluster, values, overlay, tmp_path
):
    chart, base = by_name(rendered(*values)), by_name(kustomized(cluster, overlay, tmp_path))
    # The chart installs into the release's namespace (helm install --create-namespace), kustomize makes its own.
    assert base.pop(("Namespace", "wukong-system"))
    assert sorted(chart) == sorted(base)
    assert set(base) >= USER_ROLES, f"the users' roles are missing from {overlay.name}"
    different = [key for key in chart if chart[key] != base[key]]
    assert different == [], f"objects that differ between the chart and {overlay.name}: {different}"
    dry_run(cluster, list(chart.values()))


def test_values_reach_the_objects(cluster):
    objects = by_name(
        rendered(
            "--set",
            "image.repository=registry.example/wukong",
            "--set",
            "image.tag=9.9",
            "--set",
            "webhook.replicas=3",
            "--set",
            "networkPolicy.enabled=false",
            "--set",
            "reconciler.hotplugDisks=true",
        )
    )
    webhook = objects[("Deployment", "wukong-webhook")]["spec"]
    assert webhook["replicas"] == 3
    assert webhook["template"]["spec"]["containers"][0]["image"] == "registry.example/wukong:9.9"
    assert not any(kind == "NetworkPolicy" for kind, _ in objects)
    reconciler = objects[("Deployment", "wukong-reconciler")]["spec"]["template"]["spec"]["containers"][0]
    assert "--hotplug-disks" in reconciler["command"]


def test_the_monitors_and_the_rule_wait_for_their_api_and_carry_the_labels_prometheus_selects_by(cluster):
    without_api = {kind for kind, _ in by_name(rendered("--set", "monitoring.enabled=true"))}
    assert not without_api & MONITORING_KINDS
    assert "ConfigMap" in without_api  # the dashboard needs no CRD
    objects = rendered(*MONITORING, "--set", "monitoring.labels.release=kube-prometheus-stack")
    monitoring = [o for o in objects if o["kind"] in MONITORING_KINDS]
    assert {o["kind"] for o in monitoring} == MONITORING_KINDS
    assert all(o["metadata"]["labels"]["release"] == "kube-prometheus-stack" for o in monitoring)
    assert not {kind for kind, _ in by_name(rendered("--api-versions", "monitoring.coreos.com/v1"))} & MONITORING_KINDS


def test_neither_renders_without_the_pod_cidrs_and_each_names_the_value(cluster):
    """No default pod CIDR: a wrong one would leave the webhook open to every pod of the cluster."""
    for family in POD_CIDRS:
        others = [value for value in POD_CIDR_VALUES if f".{family}=" not in value]
        chart = template(*others)
        assert chart.returncode != 0 and f"networkPolicy.podCIDRs.{family} is required" in chart.stderr, chart.stderr
    base = cluster.kubectl("kustomize", str(ROOT / "deploy"), check=False)
    assert base.returncode != 0 and "fieldPath `data.ipv4` is missing" in base.stderr, base.stderr
    assert "wukong-pod-cidrs" in base.stderr
    without = template("--set", "networkPolicy.enabled=false")
    assert without.returncode == 0, without.stderr


def test_the_webhook_admits_every_address_but_the_pod_cidrs_of_both_families():
    policy = by_name(rendered())[("NetworkPolicy", "wukong-webhook")]
    blocks = [peer["ipBlock"] for peer in policy["spec"]["ingress"][0]["from"]]
    assert blocks == [
        {"cidr": "0.0.0.0/0", "except": [POD_CIDRS["ipv4"]]},
        {"cidr": "::/0", "except": [POD_CIDRS["ipv6"]]},
    ]


DIGEST = "sha256:" + "0123456789abcdef" * 4


def test_both_run_the_image_by_digest_when_given_one(cluster, tmp_path):
    """What was built, scanned and signed is what runs: a digest in place of the tag, the same in both."""
    chart = by_name(rendered("--set", "image.repository=registry.example/wukong", "--set", f"image.digest={DIGEST}"))
    kustomized(cluster, ROOT / "deploy", tmp_path)  # a copy of deploy/ with the pod CIDRs, for the overlay below
    overlay = tmp_path / "by-digest"
    overlay.mkdir()
    image = {"name": "ghcr.io/novasphere/wukong", "newName": "registry.example/wukong", "digest": DIGEST}
    overlay.joinpath("kustomization.yaml").write_text(yaml.safe_dump({"resources": ["../deploy"], "images": [image]}))
    base = by_name([doc for doc in yaml.safe_load_all(cluster.kubectl("kustomize", str(overlay)).stdout) if doc])
    for name in ("wukong-webhook", "wukong-reconciler", "wukong-certs"):
        images = {c["image"] for c in chart[("Deployment", name)]["spec"]["template"]["spec"]["containers"]}
        assert images == {f"registry.example/wukong@{DIGEST}"}, name
        assert chart[("Deployment", name)] == base[("Deployment", name)]
    refused = template(*POD_CIDR_VALUES, "--set", "image.digest=latest")
    assert refused.returncode != 0 and "image.digest must be sha256:<64 hex digits>" in refused.stderr
