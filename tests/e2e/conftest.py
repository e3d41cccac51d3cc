"""End-to-end fixtures: one real control plane and one real webhook for the whole session."""

from __future__ import annotations

import itertools
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from devcluster.backend import SimulatedBackend
from devcluster.controlplane import ControlPlane
from devcluster.local_reconciler import LocalReconciler, install_rbac
from devcluster.webhooks import LocalWebhook
from kubeclient.rest import Kube
from tests.waiting import poll

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "deploy" / "samples"
POD_CIDRS = {"ipv4": "10.244.0.0/16", "ipv6": "fd00:10:244::/56"}  # kind's defaults: what the tests install with
_names = itertools.count()


@pytest.fixture(scope="session")
def cluster() -> Iterator[ControlPlane]:
    plane = ControlPlane.start(log=lambda line: print(line, flush=True))
    try:
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def webhook(cluster: ControlPlane) -> Iterator[LocalWebhook]:
    server = LocalWebhook(cluster).start()
    server.register()
    wait_for_webhooks(cluster)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def admin(cluster: ControlPlane) -> Kube:
    """An admin client for the tests' own reads and writes."""
    return cluster.client("e2e-tests")


@pytest.fixture(scope="session")
def backend(cluster: ControlPlane) -> Iterator[SimulatedBackend]:
    """The simulated Longhorn/CDI/KubeVirt; expansion takes a second so Resizing can be seen; CDI collects the
    DataVolumes annotated for it (the reconciler's say "false")."""
    simulation = SimulatedBackend.on(cluster, expand_delay=1.0, collect_data_volumes=True).start()
    try:
        yield simulation
    finally:
        simulation.stop()


@pytest.fixture(scope="session")
def reconciler(cluster: ControlPlane, webhook: LocalWebhook, backend: SimulatedBackend) -> Iterator[LocalReconciler]:
    """The real wukong-reconciler process, with its ServiceAccount's rights only."""
    install_rbac(cluster)
    process = LocalReconciler(cluster, ["--resync-period", "2", "--workers", "4", "--hotplug-disks"]).start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def namespace(cluster: ControlPlane) -> str:
    """A fresh namespace per test; the cluster is thrown away at the end of the session."""
    name = f"t{next(_names)}-{int(time.time() * 1000) % 100000}"
    cluster.kubectl("create", "namespace", name)
    return name


def wait_for_webhooks(cluster: ControlPlane, active: bool = True, timeout: float = 20.0) -> None:
    """The API server picks up configuration changes asynchronously: wait until a server-side dry run is
    defaulted (webhooks active) or comes back untouched (webhooks gone)."""
    probe = yaml.safe_load((SAMPLES / "single-disk.yaml").read_text())
    probe["metadata"]["name"] = "webhook-probe"

    def settled() -> bool:
        result = cluster.kubectl(
            "create", "--dry-run=server", "-n", "default", "-o", "json", "-f", "-", stdin=json.dumps(probe), check=False
        )
        return result.returncode == 0 and ("storageClassName" in result.stdout) == active

    poll(settled, f"the webhooks to {'take effect' if active else 'go away'} (a dry run defaulted: {active})", timeout)


def wait_for_webhooks_gone(cluster: ControlPlane) -> None:
    wait_for_webhooks(cluster, active=False)


def server_dry_run(cluster: ControlPlane, objects: list[dict], suffix: str = "-dry-run"):
    """``kubectl apply --dry-run=server`` of rendered manifests as one List. devcluster's own webhook
    configurations (pointing at a URL) already hold the real names, so those are dry-run under name + suffix."""
    for obj in objects:
        if obj["kind"].endswith("WebhookConfiguration"):
            obj["metadata"]["name"] += suffix
    items = json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})
    return cluster.kubectl("apply", "--dry-run=server", "-f", "-", check=False, stdin=items)


def kustomized(cluster: ControlPlane, path: Path, workdir: Path) -> list[dict]:
    """``kubectl kustomize`` of deploy/ or an overlay, from a copy whose pod-cidrs.yaml names POD_CIDRS: the
    checkout's leaves them unset on purpose (the render fails until an installer sets them)."""
    for tree in ("deploy", "overlays"):
        shutil.copytree(ROOT / tree, workdir / tree, dirs_exist_ok=True)
    cidrs = workdir / "deploy" / "networkpolicy" / "pod-cidrs.yaml"
    config = yaml.safe_load(cidrs.read_text())
    cidrs.write_text(yaml.safe_dump({**config, "data": POD_CIDRS}))
    rendered = cluster.kubectl("kustomize", str(workdir / path.relative_to(ROOT))).stdout
    return [doc for doc in yaml.safe_load_all(rendered) if doc]
