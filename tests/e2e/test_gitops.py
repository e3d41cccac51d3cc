"""What GitOps tools read from a Wukong, on real objects from devcluster in every phase: kstatus' verdict (the
sigs.k8s.io/cli-utils library itself, built by devcluster: what Flux's ``wait``/``healthChecks`` act on) and the
Argo CD health checks of deploy/argocd/ (their Lua, run by lupa) -- Progressing until the VM runs, Degraded (kstatus:
Failed) while something waits for someone to act, Suspended (Current) while its user keeps the VM stopped.

Every version of a Wukong is collected through a watch, so the versions between two writes of the reconciler -- a spec
change it has not looked at yet -- are judged too."""

from __future__ import annotations

import copy
import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from lupa import lua51

from devcluster import toolchain
from kubeclient.resources import VIRTUAL_MACHINES
from kubeclient.rest import Kube
from tests.builders import disk, wukong
from tests.e2e.conftest import ROOT
from tests.e2e.test_reconciler import apply
from tests.waiting import wait_for_object
from wukong.api import WUKONG_POLICIES, WUKONGS

pytestmark = pytest.mark.usefixtures("reconciler")
ARGOCD = ROOT / "deploy" / "argocd"
TIMEOUT = 60.0

# phase -> (kstatus, Argo CD), once the reconciler has observed the Wukong's generation and nothing is Degraded
PHASES = {
    "Pending": ("InProgress", "Progressing"),
    "Creating": ("InProgress", "Progressing"),
    "Running": ("Current", "Healthy"),
    "Stopped": ("Current", "Suspended"),
    "Blocked": ("Failed", "Degraded"),
    "Error": ("Failed", "Degraded"),
}


def kstatus(objects: list[dict[str, Any]]) -> list[str]:
    """kstatus' verdict on each object, from the library itself (devcluster/go/kstatus)."""
    done = subprocess.run(
        [str(toolchain.binary_path("kstatus"))], input=json.dumps(objects), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return [v["status"] for v in json.loads(done.stdout)]


def argo(script: Path, obj: dict[str, Any]) -> tuple[str, str]:
    """Run an Argo CD health check as Argo CD does: ``obj`` a global, the script returning ``hs``."""
    lua = lua51.LuaRuntime()  # Argo CD runs gopher-lua, a Lua 5.1

    def table(value: Any) -> Any:
        if isinstance(value, dict):
            return lua.table_from({k: table(v) for k, v in value.items() if v is not None})
        if isinstance(value, list):
            return lua.table_from([table(v) for v in value])
        return value

    lua.globals().obj = table(obj)
    hs = lua.execute(script.read_text())
    assert hs["status"] in ("Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"), hs["status"]
    return hs["status"], hs["message"]


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == kind), {})


def caught_up(obj: dict[str, Any]) -> bool:
    return (obj.get("status") or {}).get("observedGeneration") == obj["metadata"]["generation"]


class Follow:
    """Every version of one Wukong from now on, collected through a watch."""

    def __init__(self, admin: Kube, namespace: str, name: str) -> None:
        self.admin, self.namespace, self.selector = admin, namespace, f"metadata.name={name}"
        _, self.version = admin.list(WUKONGS, namespace, field_selector=self.selector)
        self.seen: list[dict[str, Any]] = []

    def until(self, done: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        deadline = time.monotonic() + TIMEOUT
        while not (self.seen and done(self.seen[-1])):
            assert time.monotonic() < deadline, f"{what} not within {TIMEOUT:.0f}s; last: {self.seen[-1:]}"
            for event in self.admin.watch(
                WUKONGS, self.namespace, self.version, timeout_seconds=1, field_selector=self.selector
            ):
                obj = event["object"]
                self.version = obj["metadata"].get("resourceVersion", self.version)
                if event["type"] in ("ADDED", "MODIFIED"):
                    self.seen.append(obj)
                    if done(obj):
                        break
        return self.seen[-1]

    def judged(self) -> list[tuple[str | None, str, str]]:
        """(phase, kstatus, Argo CD) of every version seen, each checked against the other two."""
        verdicts = kstatus(self.seen)
        found = []
        for obj, verdict in zip(self.seen, verdicts, strict=True):
            health, message = argo(ARGOCD / "wukong-health.lua", obj)
            phase = (obj.get("status") or {}).get("phase")
            if "observedGeneration" not in (obj.get("status") or {}):
                # Before the reconciler's first write kstatus has nothing to read and says Current (its generic
                # rule for an object without conditions); the first pass writes within milliseconds of the create.
                assert (verdict, health) == ("Current", "Progressing"), obj
            elif not caught_up(obj):
                assert (verdict, health) == ("InProgress", "Progressing"), obj
                assert "observe generation" in message
                # every condition is of the older generation, so kubectl wait --for=condition=Ready skips them
                generation = obj["metadata"]["generation"]
                assert all(c["observedGeneration"] < generation for c in obj["status"]["conditions"])
            elif condition(obj, "Degraded").get("status") == "True":
                assert (verdict, health) == ("Failed", "Degraded"), obj
                assert condition(obj, "Stalled")["reason"] == condition(obj, "Degraded")["reason"]
            elif condition(obj, "Resizing").get("status") == "True":
                assert (verdict, health) == ("InProgress", "Progressing"), obj
            else:
                assert (verdict, health) == PHASES[phase], (phase, verdict, health, obj["status"]["conditions"])
            found.append((phase, verdict, health))
        return found


def conditions_hold_their_generation(obj: dict[str, Any]) -> None:
    status = obj["status"]
    types = [c["type"] for c in status["conditions"]]
    assert {"Ready", "Reconciling", "Stalled"} <= set(types)
    assert {c["observedGeneration"] for c in status["conditions"]} == {status["observedGeneration"]}
    assert not (condition(obj, "Reconciling")["status"] == condition(obj, "Stalled")["status"] == "True")


def test_a_wukong_is_progressing_until_it_runs_then_healthy_and_suspended_while_its_user_stops_it(
    cluster, admin, namespace
):
    name = "slow"
    slow = wukong(
        disk("system", "20Gi", image="docker://registry.example/simulate-slow-import:1"), disk("data"), name=name
    )
    follow = Follow(admin, namespace, name)
    apply(cluster, namespace, slow)
    running = follow.until(lambda o: caught_up(o) and o["status"].get("phase") == "Running", "Running")
    conditions_hold_their_generation(running)
    assert condition(running, "Reconciling")["reason"] == "Reconciled"
    cluster.kubectl("wait", f"wukong/{name}", "-n", namespace, "--for=condition=Ready", "--timeout=10s")

    grown = copy.deepcopy(slow)
    grown["spec"]["disks"][1]["size"] = "20Gi"
    apply(cluster, namespace, grown)
    follow.until(
        lambda o: (
            caught_up(o) and condition(o, "Resizing").get("status") == "False" and o["status"]["phase"] == "Running"
        ),
        "grown and Running",
    )
    admin.patch(VIRTUAL_MACHINES, namespace, f"{name}-vm", {"spec": {"runStrategy": "Halted"}})
    stopped = follow.until(lambda o: o["status"].get("phase") == "Stopped", "Stopped")
    conditions_hold_their_generation(stopped)
    assert condition(stopped, "Ready")["status"] == "True"
    cluster.kubectl("wait", f"wukong/{name}", "-n", namespace, "--for=condition=Ready", "--timeout=10s")

    seen = follow.judged()
    assert seen[-1] == ("Stopped", "Current", "Suspended")
    assert ("Running", "Current", "Healthy") in seen
    progressing = [phase for phase, verdict, health in seen if (verdict, health) == ("InProgress", "Progressing")]
    assert {"Pending", "Running"} <= set(progressing), seen  # importing; then the new size, not yet observed


def test_a_blocked_wukong_is_stalled_and_degraded_and_goes_on_once_fixed(cluster, admin, namespace):
    obj = wukong(disk("system", "20Gi", image="docker://quay.io/containerdisks/fedora:40"), name="keys")
    obj["spec"]["sshKeySecret"] = "keys"
    follow = Follow(admin, namespace, "keys")
    apply(cluster, namespace, obj)
    blocked = follow.until(lambda o: (o.get("status") or {}).get("phase") == "Blocked", "Blocked")
    conditions_hold_their_generation(blocked)
    assert condition(blocked, "Stalled")["reason"] == "SSHKeySecretNotFound"
    assert condition(blocked, "Reconciling")["status"] == "False"
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl user@example"
    cluster.kubectl("create", "secret", "generic", "keys", "-n", namespace, f"--from-literal=key={key}")
    follow.until(lambda o: o["status"].get("phase") == "Running", "Running once the Secret exists")
    seen = follow.judged()
    assert ("Blocked", "Failed", "Degraded") in seen
    assert seen[-1] == ("Running", "Current", "Healthy")


def test_a_failed_import_is_stalled_and_degraded(cluster, admin, namespace):
    obj = wukong(disk("root", "20Gi", image="https://images.example/simulate-import-failure.qcow2"), name="broken")
    follow = Follow(admin, namespace, "broken")
    apply(cluster, namespace, obj)
    failed = follow.until(lambda o: (o.get("status") or {}).get("phase") == "Error", "Error")
    conditions_hold_their_generation(failed)
    assert condition(failed, "Stalled")["reason"] == "VolumeFailed"
    assert follow.judged()[-1] == ("Error", "Failed", "Degraded")


def test_a_wukongpolicy_is_healthy_once_audited(cluster, admin, namespace):
    policy = yaml.safe_load((ROOT / "deploy" / "policies" / "small-tenant.yaml").read_text())
    policy["metadata"]["name"] = f"gitops-{namespace}"
    assert argo(ARGOCD / "wukongpolicy-health.lua", policy)[0] == "Progressing"
    admin.create(WUKONG_POLICIES, policy)
    try:
        audited = wait_for_object(
            admin,
            WUKONG_POLICIES,
            None,
            policy["metadata"]["name"],
            lambda p: p if p is not None and caught_up(p) else None,
            "the policy audited",
        )
        health, message = argo(ARGOCD / "wukongpolicy-health.lua", audited)
        assert health == "Healthy", (health, message, audited["status"])
    finally:
        admin.delete(WUKONG_POLICIES, None, policy["metadata"]["name"])


def test_the_argocd_cm_snippet_carries_the_health_checks_verbatim():
    config = yaml.safe_load((ARGOCD / "argocd-cm.yaml").read_text())
    assert config["data"] == {
        "resource.customizations.health.vm.novasphere.dev_Wukong": (ARGOCD / "wukong-health.lua").read_text(),
        "resource.customizations.health.vm.novasphere.dev_WukongPolicy": (
            ARGOCD / "wukongpolicy-health.lua"
        ).read_text(),
    }
