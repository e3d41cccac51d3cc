"""How long 100 Wukongs (2 disks each) take to converge on devcluster, and what it costs the API server.

    .venv/bin/python bench/converge.py [--count 100] [--workers 4]

Runs the real wukong-reconciler process (with its ServiceAccount's rights) against the real
kube-apiserver, with the simulated backend at zero delay. Figures are printed against a baseline taken
in the same run on the same machine: the time a plain client needs to create the same children
(a DataVolume, a PVC and a VM per Wukong) one by one, i.e. the raw write cost the reconciler cannot beat.
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
import time

from devcluster.backend import SIMULATION, SimulatedBackend
from devcluster.controlplane import ControlPlane
from devcluster.local_reconciler import LocalReconciler, install_rbac
from kubeclient.resources import DATA_VOLUMES, PVCS, VIRTUAL_MACHINES, WUKONGS
from kubeclient.rest import Kube
from reconciler import children
from wukong.spec import WukongSpec


def manifest(name: str, namespace: str) -> dict:
    return {
        "apiVersion": "vm.novasphere.dev/v1alpha1",
        "kind": "Wukong",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "cpu": 2,
            "memory": "4Gi",
            "disks": [
                {
                    "name": "system",
                    "size": "20Gi",
                    "storageClassName": "longhorn",
                    "boot": True,
                    "image": "docker://quay.io/containerdisks/fedora:40",
                },
                {"name": "data", "size": "100Gi", "storageClassName": "longhorn", "boot": False},
            ],
        },
    }


def apiserver_requests(plane: ControlPlane) -> dict[str, float]:
    totals: dict[str, float] = {}
    text = (plane.get("/metrics") or b"").decode()
    for labels, value in re.findall(r"^apiserver_request_total\{([^}]*)\} (\S+)$", text, re.MULTILINE):
        verb = dict(re.findall(r'(\w+)="([^"]*)"', labels)).get("verb", "")
        totals[verb] = totals.get(verb, 0.0) + float(value)
    return totals


def reconciler_requests(reconciler: LocalReconciler) -> dict[str, float]:
    """The reconciler's own count of its requests, by verb and resource (watches and lists included)."""
    counts: dict[str, float] = {}
    pattern = r"^wukong_kube_api_requests_total\{([^}]*)\} (\S+)$"
    for labels, value in re.findall(pattern, reconciler.metrics(), re.MULTILINE):
        parts = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        key = f"{parts['verb']} {parts['resource']}"
        counts[key] = counts.get(key, 0.0) + float(value)
    return counts


def baseline(plane: ControlPlane, admin: Kube, count: int) -> float:
    """Create what the reconciler creates (DV + PVC + VM per Wukong) with plain sequential requests."""
    plane.kubectl("create", "namespace", "bench-baseline")
    started = time.perf_counter()
    for i in range(count):
        owner = copy.deepcopy(manifest(f"b{i}", "bench-baseline"))
        owner["metadata"]["uid"] = f"00000000-0000-0000-0000-{i:012d}"
        spec = WukongSpec.from_object(owner)
        admin.create(DATA_VOLUMES, children.data_volume(owner, spec.disks[0]))
        admin.create(PVCS, children.persistent_volume_claim(owner, spec.disks[1]))
        admin.create(VIRTUAL_MACHINES, children.virtual_machine(owner, spec))
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    say = lambda line: print(line, flush=True)  # noqa: E731
    with ControlPlane.start(log=say) as plane:
        admin = plane.client("bench")
        install_rbac(plane)
        say(f"bench: baseline, {args.count * 3} plain creates ...")
        base = baseline(plane, admin, args.count)
        say(f"bench: baseline took {base:.2f}s")
        plane.kubectl("create", "namespace", "bench")
        # Both only look at the bench namespace, so the baseline's objects cost them nothing.
        backend = SimulatedBackend(plane.client(SIMULATION), namespace="bench").start()
        reconciler = LocalReconciler(
            plane, ["--namespace", "bench", "--workers", str(args.workers), "--resync-period", "600"]
        ).start()
        before_api, before_rec = apiserver_requests(plane), reconciler_requests(reconciler)
        started = time.perf_counter()
        for i in range(args.count):
            admin.create(WUKONGS, manifest(f"w{i}", "bench"))
        created = time.perf_counter() - started
        say(f"bench: {args.count} Wukongs created in {created:.2f}s; waiting for all to be Running")
        last_report, running = started, 0
        while running < args.count:
            items, _ = admin.list(WUKONGS, "bench")
            running = sum(1 for w in items if (w.get("status") or {}).get("phase") == "Running")
            if time.perf_counter() - last_report > 2:
                last_report = time.perf_counter()
                say(f"bench:   {running}/{args.count} Running after {last_report - started:.1f}s")
            if time.perf_counter() - started > 600:
                say("bench: did not converge in 600s")
                return 1
            time.sleep(0.05)
        converged = time.perf_counter() - started
        time.sleep(1.0)
        after_api, after_rec = apiserver_requests(plane), reconciler_requests(reconciler)
        reconciler.stop()
        backend.stop()
    total = sum(after_api.values()) - sum(before_api.values())
    by_verb = {v: after_api.get(v, 0) - before_api.get(v, 0) for v in after_api}
    mine = {k: v - before_rec.get(k, 0.0) for k, v in after_rec.items() if v - before_rec.get(k, 0.0)}
    own = sum(mine.values())
    print()
    print(f"Wukongs (2 disks each)           {args.count}")
    print(f"reconciler workers               {args.workers}")
    print(f"baseline: {args.count * 3} plain creates    {base:.2f}s")
    print(f"converged (all Running)          {converged:.2f}s  = {converged / base:.2f}x baseline")
    print(f"per Wukong                       {converged / args.count * 1000:.1f} ms")
    print(f"reconciler API requests          {own:.0f}  = {own / args.count:.1f} per Wukong")
    print("  per Wukong: " + ", ".join(f"{k} {v / args.count:.2f}" for k, v in sorted(mine.items())))
    print(f"all API requests (incl. backend, watches, this client's polling) {total:.0f}")
    print("  by verb: " + ", ".join(f"{v} {n:.0f}" for v, n in sorted(by_verb.items()) if n))
    return 0


if __name__ == "__main__":
    sys.exit(main())
