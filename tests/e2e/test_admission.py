"""Admission through the real API server and the real kubectl: what users see in `kubectl apply`."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from devcluster import toolchain
from devcluster.controlplane import ControlPlane
from devcluster.webhooks import LocalWebhook, deregister
from tests import bodies
from tests.e2e.conftest import SAMPLES, wait_for_webhooks, wait_for_webhooks_gone
from tests.e2e.test_namespace_policy import limits
from tests.waiting import poll

# The mutating webhook refuses first: the API server runs the CRD schema and CEL rules after mutating
# admission and before validating admission, and users should read this project's message, not CEL's.
pytestmark = pytest.mark.usefixtures("webhook")


def write(tmp_path: Path, sample: str, *edits: tuple[str, str]) -> Path:
    text = (SAMPLES / sample).read_text()
    for old, new in edits:
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / f"{len(list(tmp_path.iterdir()))}-{sample}"
    path.write_text(text)
    return path


def get(cluster: ControlPlane, namespace: str, name: str) -> dict:
    return json.loads(cluster.kubectl("get", "wukong", name, "-n", namespace, "-o", "json").stdout)


def users_part(cluster: ControlPlane, namespace: str, name: str) -> tuple:
    """What a user's write changes: generation, spec, annotations and kubectl's managed-fields entries (with their
    timestamps). The reconciler may be writing status meanwhile; that is not the user's part."""
    obj = get(cluster, namespace, name)
    metadata = obj["metadata"]
    kubectl = [m for m in metadata.get("managedFields") or [] if m["manager"].startswith("kubectl")]
    return metadata["generation"], obj["spec"], metadata.get("annotations"), kubectl


def apply(cluster: ControlPlane, namespace: str, path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return cluster.kubectl("apply", "-n", namespace, "-f", str(path), *extra, check=False)


def test_kubectl_reports_the_pinned_release(cluster):
    version = json.loads(cluster.kubectl("version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"] == toolchain.kubernetes_version()
    assert version["clientVersion"]["gitVersion"] == toolchain.kubernetes_version()


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        ("single-disk.yaml", [("system", "longhorn", True)]),
        ("system-and-data.yaml", [("system", "longhorn", True), ("data", "longhorn", False)]),
        (
            "storage-classes.yaml",
            [("system", "longhorn-ssd", True), ("data", "longhorn-hdd", False), ("scratch", "local-path", False)],
        ),
    ],
)
def test_applied_samples_show_the_defaults(cluster, namespace, tmp_path, sample, expected):
    result = apply(cluster, namespace, SAMPLES / sample)
    assert result.returncode == 0, result.stderr
    name = yaml.safe_load((SAMPLES / sample).read_text())["metadata"]["name"]
    shown = yaml.safe_load(cluster.kubectl("get", "wukong", name, "-n", namespace, "-o", "yaml").stdout)
    assert [(d["name"], d["storageClassName"], d["boot"]) for d in shown["spec"]["disks"]] == expected


DENIED = "Warning: denied by the Wukong admission webhook"


def refusal(result: subprocess.CompletedProcess[str]) -> list[str]:
    """What kubectl printed besides warnings, line by line."""
    assert result.returncode != 0
    assert DENIED in result.stderr, "the refusing component is not named"
    return [line for line in result.stderr.splitlines() if not line.startswith("Warning:")]


def test_a_shrink_is_refused_in_kubernetes_one_line_form_and_the_object_is_unchanged(cluster, namespace, tmp_path):
    assert apply(cluster, namespace, SAMPLES / "system-and-data.yaml").returncode == 0
    before = users_part(cluster, namespace, "system-and-data")
    result = apply(cluster, namespace, write(tmp_path, "system-and-data.yaml", ("500Gi", "400Gi")))
    assert refusal(result) == [
        'The Wukong "system-and-data" is invalid: spec.disks[1].size: Forbidden: disk "data" cannot shrink from '
        "500Gi to 400Gi; disks can only grow"
    ]
    assert users_part(cluster, namespace, "system-and-data") == before


def test_a_disk_removal_permission_is_spent_by_the_apply_that_carries_it(cluster, namespace, tmp_path):
    """Client-side kubectl apply keeps sending an annotation the manifest keeps: the permission must not outlive
    the update that set it, and dropping it from the manifest drops it from the object."""
    removal = "vm.novasphere.dev/allow-disk-removal"
    three = yaml.safe_load((SAMPLES / "system-and-data.yaml").read_text())
    three["spec"]["disks"].append({"name": "logs", "size": "10Gi"})

    def applied(manifest: dict, disks: list[str], annotation: str | None) -> subprocess.CompletedProcess[str]:
        edited = json.loads(json.dumps(manifest))
        edited["spec"]["disks"] = [d for d in edited["spec"]["disks"] if d["name"] in disks]
        if annotation is not None:
            edited["metadata"]["annotations"] = {removal: annotation}
        path = tmp_path / f"{len(list(tmp_path.iterdir()))}.yaml"
        path.write_text(yaml.safe_dump(edited))
        return apply(cluster, namespace, path)

    assert applied(three, ["system", "data", "logs"], None).returncode == 0
    removed = applied(three, ["system", "logs"], "data")
    assert removed.returncode == 0, removed.stderr
    stored = get(cluster, namespace, "system-and-data")
    assert [d["name"] for d in stored["spec"]["disks"]] == ["system", "logs"]

    # The same manifest, now also without "logs": the annotation it still holds was spent.
    assert refusal(applied(three, ["system"], "data")) == [
        'The Wukong "system-and-data" is invalid: spec.disks: Forbidden: disk "logs" cannot be removed: '
        'vm.novasphere.dev/allow-disk-removal: "data" was already set before this update, and a permission holds '
        "only for the update that sets it; to remove it anyway, set the annotation "
        'vm.novasphere.dev/allow-disk-removal: "logs" in the same update (its volume is kept, not deleted)'
    ]
    # Dropped from the manifest, it is dropped from the object (kubectl's last-applied names it).
    assert applied(three, ["system", "logs"], None).returncode == 0
    assert removal not in (get(cluster, namespace, "system-and-data")["metadata"].get("annotations") or {})
    # Annotating first and removing later is two updates: the second carries no permission.
    cluster.kubectl("annotate", "wukong", "system-and-data", "-n", namespace, f"{removal}=logs")
    assert "was already set before this update" in refusal(applied(three, ["system"], "logs"))[0]
    # A new value in the removing update is a new permission.
    assert applied(three, ["system"], "true").returncode == 0


def test_removing_a_disk_is_refused_in_one_line_and_two_refusals_as_kubectl_lists_them(cluster, namespace, tmp_path):
    assert apply(cluster, namespace, SAMPLES / "system-and-data.yaml").returncode == 0
    removed = write(tmp_path, "system-and-data.yaml", ("    - name: data\n      size: 500Gi\n", ""))
    assert refusal(apply(cluster, namespace, removed)) == [
        'The Wukong "system-and-data" is invalid: spec.disks: Forbidden: disk "data" cannot be removed: its data '
        "would be detached; to remove it anyway, set the annotation vm.novasphere.dev/allow-disk-removal: "
        '"data" in the same update (its volume is kept, not deleted)'
    ]
    both = write(tmp_path, "system-and-data.yaml", ("500Gi", "400Gi"), ("80Gi", "40Gi"))
    assert refusal(apply(cluster, namespace, both)) == [
        'The Wukong "system-and-data" is invalid: ',
        '* spec.disks[0].size: Forbidden: disk "system" cannot shrink from 80Gi to 40Gi; disks can only grow',
        '* spec.disks[1].size: Forbidden: disk "data" cannot shrink from 500Gi to 400Gi; disks can only grow',
    ]


def test_growing_on_local_path_is_refused_naming_the_class_and_on_longhorn_accepted(cluster, namespace, tmp_path):
    assert apply(cluster, namespace, SAMPLES / "storage-classes.yaml").returncode == 0
    refused = apply(cluster, namespace, write(tmp_path, "storage-classes.yaml", ("100Gi", "200Gi")))
    [line] = refusal(refused)
    assert line.startswith('The Wukong "tiered-storage" is invalid: spec.disks[2].size: Forbidden: disk "scratch" ')
    assert 'StorageClass "local-path" does not allow volume expansion' in line
    grown = apply(cluster, namespace, write(tmp_path, "storage-classes.yaml", ("2Ti", "3Ti")))
    assert grown.returncode == 0, grown.stderr
    assert get(cluster, namespace, "tiered-storage")["spec"]["disks"][1]["size"] == "3Ti"


def test_server_dry_run_goes_through_the_webhooks_and_creates_nothing(cluster, namespace):
    result = cluster.kubectl(
        "apply", "--dry-run=server", "-n", namespace, "-o", "json", "-f", str(SAMPLES / "single-disk.yaml")
    )
    assert json.loads(result.stdout)["spec"]["disks"][0]["storageClassName"] == "longhorn"
    missing = cluster.kubectl("get", "wukong", "single-disk", "-n", namespace, check=False)
    assert "NotFound" in missing.stderr


@pytest.mark.parametrize("mode", [(), ("--server-side",)], ids=["client-side-apply", "server-side-apply"])
def test_reapplying_the_same_manifest_changes_nothing(cluster, namespace, mode):
    sample = SAMPLES / "system-and-data.yaml"
    assert apply(cluster, namespace, sample, *mode).returncode == 0
    first = users_part(cluster, namespace, "system-and-data")
    for _ in range(2):
        result = apply(cluster, namespace, sample, *mode)
        assert result.returncode == 0, result.stderr
        if not mode:  # see docs/vm-owners.md: the whole disks list is sent again (JSON merge patch); nothing is written
            assert result.stdout.strip() == "wukong.vm.novasphere.dev/system-and-data configured"
    assert users_part(cluster, namespace, "system-and-data") == first


def test_with_the_webhook_down_failure_policy_fail_still_blocks_a_shrink(cluster, namespace, tmp_path, webhook):
    assert apply(cluster, namespace, SAMPLES / "system-and-data.yaml").returncode == 0
    before = users_part(cluster, namespace, "system-and-data")
    webhook.stop()
    try:
        result = apply(cluster, namespace, write(tmp_path, "system-and-data.yaml", ("500Gi", "400Gi")))
        assert result.returncode != 0
        assert "failed calling webhook" in result.stderr
        assert users_part(cluster, namespace, "system-and-data") == before
    finally:
        webhook.start()
        wait_for_webhooks(cluster)


def test_without_any_webhook_the_crd_rule_still_refuses_a_shrink(cluster, namespace, tmp_path, webhook):
    assert apply(cluster, namespace, SAMPLES / "system-and-data.yaml").returncode == 0
    before = users_part(cluster, namespace, "system-and-data")
    deregister(cluster)
    try:
        wait_for_webhooks_gone(cluster)
        result = apply(cluster, namespace, write(tmp_path, "system-and-data.yaml", ("500Gi", "400Gi")))
        assert result.returncode != 0
        assert "spec.disks: Forbidden: a disk cannot shrink; disks can only grow" in result.stderr
        assert users_part(cluster, namespace, "system-and-data") == before
    finally:
        webhook.register()
        wait_for_webhooks(cluster)


def test_inject_ca_bundle_sets_the_bundle_on_every_webhook(cluster, webhook: LocalWebhook):
    command = [
        str(Path(sys.executable).parent / "wukong-certs"),
        "inject-ca-bundle",
        "--kubeconfig",
        str(cluster.kubeconfig),
        "--ca-file",
        str(webhook.certs_dir / "ca.crt"),
        "--mutating",
        "wukong-webhook",
        "--validating",
        "wukong-webhook",
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "into 2 webhook(s)" in result.stdout
    for kind in ("mutatingwebhookconfiguration", "validatingwebhookconfiguration"):
        config = json.loads(cluster.kubectl("get", kind, "wukong-webhook", "-o", "json").stdout)
        assert base64.b64decode(config["webhooks"][0]["clientConfig"]["caBundle"]) == webhook.ca_pem
    missing = subprocess.run([*command[:6], "--mutating", "absent"], capture_output=True, text=True)
    assert missing.returncode == 1
    assert missing.stderr.startswith("error: 404 Not Found:") and "absent" in missing.stderr


def test_the_checker_reads_storage_classes_and_live_objects_from_the_cluster(cluster, namespace, tmp_path):
    assert apply(cluster, namespace, SAMPLES / "system-and-data.yaml").returncode == 0
    shrunk = write(tmp_path, "system-and-data.yaml", ("500Gi", "400Gi"))
    checker = [str(Path(sys.executable).parent / "wukong-webhook"), "check", "--kubeconfig", str(cluster.kubeconfig)]

    fresh = subprocess.run(
        [*checker, "-n", namespace, str(SAMPLES / "single-disk.yaml")], capture_output=True, text=True
    )
    assert fresh.returncode == 0, fresh.stderr
    assert yaml.safe_load(fresh.stdout)["spec"]["disks"][0]["storageClassName"] == "longhorn"  # the live default

    as_new = subprocess.run([*checker, "-n", namespace, str(shrunk)], capture_output=True, text=True)
    assert as_new.returncode == 0, "without --old-from-cluster it is a create"
    update = subprocess.run(
        [*checker, "--old-from-cluster", "-n", namespace, str(shrunk)], capture_output=True, text=True
    )
    assert update.returncode == 1
    assert 'spec.disks[1].size: Forbidden: disk "data" cannot shrink from 500Gi to 400Gi' in update.stderr


def test_the_webhook_sees_a_storage_class_created_moved_to_default_and_deleted_within_a_second(cluster, namespace):
    probe = yaml.safe_load((SAMPLES / "single-disk.yaml").read_text())
    probe["metadata"]["namespace"] = namespace

    def defaulted_class() -> str:
        result = cluster.kubectl("create", "--dry-run=server", "-o", "json", "-f", "-", stdin=json.dumps(probe))
        return str(json.loads(result.stdout)["spec"]["disks"][0]["storageClassName"])

    name = f"newest-{namespace}"
    default = {"storageclass.kubernetes.io/is-default-class": "true"}
    manifest = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": name, "annotations": default},
        "provisioner": "driver.longhorn.io",
    }
    try:
        cluster.kubectl("create", "-f", "-", stdin=json.dumps(manifest))
        poll(lambda: defaulted_class() == name, "the newest default class used", timeout=1, interval=0.05)
        cluster.kubectl("annotate", "storageclass", name, "storageclass.kubernetes.io/is-default-class-")
        poll(lambda: defaulted_class() == "longhorn", "the default back on longhorn", timeout=1, interval=0.05)
    finally:
        cluster.kubectl("delete", "storageclass", name, "--ignore-not-found")
    probe["spec"]["disks"][0]["storageClassName"] = name

    def warned() -> bool:
        result = cluster.kubectl("create", "--dry-run=server", "-f", "-", stdin=json.dumps(probe))
        return f'StorageClass "{name}" does not exist' in result.stderr

    poll(warned, "the deleted class reported as missing", timeout=1, interval=0.05)


def test_a_list_over_its_bound_is_refused_by_the_webhook_in_kubernetes_words(cluster, namespace):
    probe = yaml.safe_load((SAMPLES / "single-disk.yaml").read_text())
    probe["spec"]["disks"] = [{"name": f"d{i}", "size": "1Gi"} for i in range(1000)]
    result = cluster.kubectl("create", "-n", namespace, "-f", "-", stdin=json.dumps(probe), check=False)
    assert refusal(result) == [
        f'The Wukong "{probe["metadata"]["name"]}" is invalid: spec.disks: Too many: 1000: must have at most 16 items'
    ]


def test_the_largest_wukong_the_bounds_allow_is_accepted_by_the_api_server_and_both_webhooks(cluster, namespace):
    largest = bodies.largest_wukong()
    metadata = {key: largest["metadata"][key] for key in ("name", "labels", "annotations")}
    applied = "kubectl.kubernetes.io/last-applied-configuration"  # kubectl create would rewrite it: same size
    metadata["annotations"][applied.replace("kubectl.kubernetes.io", "example.novasphere.io")] = metadata[
        "annotations"
    ].pop(applied)
    manifest = {**largest, "metadata": {**metadata, "namespace": namespace}}
    status = manifest.pop("status")
    # Its networks attach to host interfaces: allowed only where a cluster admin's WukongPolicy names them.
    named = [
        {"type": n["type"], "resourceName": n["resourceName"], "vlans": [str(n["vlanId"])]}
        if n["type"] == "sriov"
        else {"type": n["type"], "interface": n.get("master") or n["bridgeName"], "vlans": [str(n["vlanId"])]}
        for n in largest["spec"]["networks"]
    ]
    allowing = limits(f"largest-{namespace}", namespace, networks={"hostNetworks": named})
    cluster.kubectl("apply", "-f", "-", stdin=json.dumps(allowing))
    try:
        created = poll(
            lambda: (
                answer
                if (
                    answer := cluster.kubectl(
                        "create", "-o", "json", "-f", "-", stdin=json.dumps(manifest), check=False
                    )
                ).returncode
                == 0
                or "host network" not in answer.stderr
                else None
            ),
            "the webhook to apply the policy naming its host networks",
        )
    finally:
        cluster.kubectl("delete", "wukongpolicy", allowing["metadata"]["name"])
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["spec"] == manifest["spec"]
    stored = {**json.loads(created.stdout), "status": status}
    replaced = cluster.kubectl(
        "replace", "--subresource=status", "--dry-run=server", "-f", "-", stdin=json.dumps(stored), check=False
    )
    assert replaced.returncode == 0, replaced.stderr
