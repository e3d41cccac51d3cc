"""``make demo``: the whole product on the embedded control plane, through real kubectl.

Builds the pinned binaries if this machine has none, starts etcd + kube-apiserver, the webhook and the
reconciler (with its ServiceAccount's rights), plus the simulated storage/VM backend, then shows
defaulting, a shrink refused, a grow carried out, and the PVC, DataVolume and VirtualMachine created.
Everything is torn down at the end.
"""

from __future__ import annotations

import json
import sys
import time

from devcluster import checkout
from devcluster.backend import SimulatedBackend
from devcluster.controlplane import ControlPlane
from devcluster.local_reconciler import LocalReconciler, install_rbac
from devcluster.webhooks import LocalWebhook

SAMPLE = checkout.deploy("samples", "system-and-data.yaml")
NETWORK_POLICY = checkout.deploy("policies", "corporate-networks.yaml")
BOLD, DIM, RESET = ("\033[1m", "\033[2m", "\033[0m") if sys.stdout.isatty() else ("", "", "")


def say(text: str) -> None:
    print(text, flush=True)


def step(title: str) -> None:
    say(f"\n{BOLD}== {title}{RESET}")


def kubectl(plane: ControlPlane, *args: str, stdin: str | None = None) -> str:
    shown = " ".join(a if a != "-" else "-f -" for a in args if a != "-f" or stdin is None)
    say(f"{DIM}$ kubectl {shown}{RESET}")
    result = plane.kubectl(*args, stdin=stdin, check=False)
    say((result.stdout + result.stderr).rstrip())
    return result.stdout


def wukong(plane: ControlPlane) -> dict:
    return json.loads(plane.kubectl("get", "wukong", "system-and-data", "-o", "json").stdout)


def watch_phase(plane: ControlPlane, until: str, timeout: float = 60) -> None:
    seen, deadline = None, time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = wukong(plane).get("status") or {}
        bound = sum(1 for v in status.get("volumes") or [] if v.get("bound"))
        now = f"phase={status.get('phase', '-')} volumes bound={bound}/{len(status.get('volumes') or [])}"
        if now != seen:
            say(f"  {now}")
            seen = now
        if status.get("phase") == until:
            return
        time.sleep(0.2)
    raise RuntimeError(f"the Wukong did not reach {until} in {timeout:.0f}s")


def main() -> int:
    step("Starting the local control plane (etcd + kube-apiserver built from pinned upstream modules)")
    with ControlPlane.start(log=say) as plane:
        webhook = LocalWebhook(plane).start()
        webhook.register()
        say(f"devcluster: wukong-webhook serving at {webhook.url} (gunicorn, TLS) and registered")
        install_rbac(plane)
        backend = SimulatedBackend.on(plane, delay=0.4, expand_delay=1.5).start()
        say("devcluster: SIMULATED storage/VM backend running (plays Longhorn, CDI and KubeVirt)")
        reconciler = LocalReconciler(plane, ["--hotplug-disks"]).start()  # the simulation has the gate
        say("devcluster: wukong-reconciler running as system:serviceaccount:wukong-system:wukong-reconciler")
        try:
            run(plane)
        finally:
            reconciler.stop()
            backend.stop()
            webhook.stop()
        step("Done: everything is torn down. `make up` keeps a cluster running; `make test` runs every check.")
    return 0


def run(plane: ControlPlane) -> None:
    step("1. Defaulting: the manifest names no StorageClass and no boot disk")
    say(SAMPLE.read_text().rstrip())
    kubectl(plane, "apply", "-f", str(SAMPLE))
    disks = wukong(plane)["spec"]["disks"]
    say("What was stored (kubectl get wukong system-and-data -o yaml, spec.disks):")
    for disk in disks:
        say(
            f"  - name: {disk['name']:<7} size: {disk['size']:<6} storageClassName: {disk['storageClassName']}  "
            f"boot: {str(disk['boot']).lower()}"
        )

    step("2. The reconciler builds the storage and the VM")
    watch_phase(plane, "Running")
    kubectl(plane, "get", "wukong,datavolume,pvc,virtualmachine")

    step("3. Shrinking the data disk (500Gi -> 400Gi) is refused, with the reason, by kubectl apply")
    kubectl(plane, "apply", "-f", "-", stdin=SAMPLE.read_text().replace("500Gi", "400Gi"))

    step("4. Growing the data disk (500Gi -> 1Ti) expands its PVC")
    kubectl(plane, "apply", "-f", "-", stdin=SAMPLE.read_text().replace("500Gi", "1Ti"))
    seen, deadline = None, time.monotonic() + 30
    while time.monotonic() < deadline:
        status = wukong(plane)["status"]
        data = next(v for v in status["volumes"] if v["name"] == "data")
        resizing = next(c for c in status["conditions"] if c["type"] == "Resizing")
        now = f"  Resizing={resizing['status']:<5} data: size={data.get('size')} capacity={data.get('capacity')}"
        if now != seen:
            say(now)
            seen = now
        if resizing["status"] == "False" and data.get("capacity") == "1Ti":
            break
        time.sleep(0.2)
    kubectl(plane, "get", "pvc", "system-and-data-data")

    step("5. A network over a host bridge is refused until a cluster admin's WukongPolicy names it")
    networked = SAMPLE.read_text().replace("name: system-and-data", "name: on-corp-lan", 1)
    networked = networked.replace(
        "spec:\n", "spec:\n  networks:\n    - {name: lan, type: bridge, bridgeName: br-corp, vlanId: 100}\n", 1
    )
    kubectl(plane, "apply", "-f", "-", stdin=networked)
    say("A cluster admin publishes the bridge (deploy/policies/corporate-networks.yaml) and the namespace opts in:")
    kubectl(plane, "apply", "-f", str(NETWORK_POLICY))
    kubectl(plane, "label", "namespace", "default", "wukong.novasphere.dev/networks=corporate")
    deadline = time.monotonic() + 30  # the webhook's policy cache follows a watch: a moment
    while plane.kubectl("apply", "--dry-run=server", "-f", "-", stdin=networked, check=False).returncode != 0:
        if time.monotonic() > deadline:
            raise RuntimeError("the webhook did not take up the WukongPolicy in 30s")
        time.sleep(0.2)
    kubectl(plane, "apply", "-f", "-", stdin=networked)
    kubectl(plane, "delete", "wukong", "on-corp-lan")

    step("6. What happened, as Events")
    kubectl(
        plane,
        "get",
        "events",
        "--field-selector",
        "involvedObject.kind=Wukong",
        "-o",
        "custom-columns=TYPE:.type,REASON:.reason,MESSAGE:.message",
    )


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (RuntimeError, OSError) as error:
        print(f"demo: {error}", file=sys.stderr)
        sys.exit(1)
