"""The scale curve: how long N Wukongs (2 disks each) take to converge on devcluster, and what they cost.

    .venv/bin/python bench/converge.py [--counts 100,500,1000,2000] [--workers 4] [--plot bench/scale.png]

Runs the real wukong-reconciler process (with its ServiceAccount's rights) against the real
kube-apiserver, with the simulated backend at zero delay. Figures are printed against a baseline taken
in the same run on the same machine: the time a plain client needs to create the same children
(a DataVolume, a PVC and a VM per Wukong) one by one, i.e. the raw write cost the reconciler cannot beat.
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import threading
import time
from pathlib import Path

from devcluster.backend import SimulatedBackend
from devcluster.controlplane import ControlPlane
from devcluster.local_reconciler import LocalReconciler, install_rbac
from kubeclient.resources import DATA_VOLUMES, PVCS, VIRTUAL_MACHINES
from kubeclient.rest import Kube
from reconciler.guest import cloud_init_secret
from reconciler.observation import Observed
from reconciler.vm import virtual_machine
from reconciler.volumes import data_volume, persistent_volume_claim
from wukong.api import WUKONGS
from wukong.spec import DELETE


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
    """The reconciler's own count of its requests, by verb and resource (watches and lists included); refused
    requests (a 409 on a stale resourceVersion, say) are counted apart, by code."""
    counts: dict[str, float] = {}
    pattern = r"^wukong_kube_api_requests_total\{([^}]*)\} (\S+)$"
    for labels, value in re.findall(pattern, reconciler.metrics(), re.MULTILINE):
        parts = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        key = f"{parts['verb']} {parts['resource']}" + ("" if parts["code"].startswith("2") else f" ({parts['code']})")
        counts[key] = counts.get(key, 0.0) + float(value)
    return counts


def baseline(plane: ControlPlane, admin: Kube, count: int) -> float:
    """Create what the reconciler creates (DV + PVC + VM per Wukong) with plain sequential requests."""
    plane.kubectl("create", "namespace", "bench-baseline")
    started = time.perf_counter()
    for i in range(count):
        owner = copy.deepcopy(manifest(f"b{i}", "bench-baseline"))
        owner["metadata"]["uid"] = f"00000000-0000-0000-0000-{i:012d}"
        observed = Observed(owner)
        spec, delete_with_owner = observed.spec, observed.spec.when_deleted == DELETE
        admin.create(DATA_VOLUMES, data_volume(owner, spec.disks[0], delete_with_owner))
        admin.create(PVCS, persistent_volume_claim(owner, spec.disks[1], delete_with_owner))
        admin.create(VIRTUAL_MACHINES, virtual_machine(observed, cloud_init_secret(observed)))
    return time.perf_counter() - started


def watch_until_running(admin: Kube, namespace: str, count: int, say, timeout: float = 1800) -> float:
    """Follow the Wukongs with one watch (an observer whose cost does not grow with polling) until all run."""
    started = time.perf_counter()
    items, version = admin.list(WUKONGS, namespace)
    phases = {w["metadata"]["name"]: (w.get("status") or {}).get("phase") for w in items}
    last_report = started
    while sum(p == "Running" for p in phases.values()) < count:
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"did not converge in {timeout:.0f}s")
        for event in admin.watch(WUKONGS, namespace, version, timeout_seconds=5):
            obj = event["object"]
            version = obj["metadata"].get("resourceVersion", version)
            if event["type"] in ("ADDED", "MODIFIED"):
                phases[obj["metadata"]["name"]] = (obj.get("status") or {}).get("phase")
            if time.perf_counter() - last_report > 5:
                last_report = time.perf_counter()
                running = sum(p == "Running" for p in phases.values())
                say(f"bench:   {running}/{count} Running after {last_report - started:.0f}s")
            if sum(p == "Running" for p in phases.values()) >= count:
                break
    return time.perf_counter() - started


class ProcessMeter:
    """Peak resident memory and CPU seconds of a process, sampled from /proc."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak_mib, self._stop = pid, 0.0, threading.Event()
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            try:
                for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        self.peak_mib = max(self.peak_mib, int(line.split()[1]) / 1024)
            except OSError:
                return

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self._stop.set()


def converge(plane: ControlPlane, admin: Kube, count: int, workers: int, say) -> dict:
    namespace = f"bench-{count}"
    plane.kubectl("create", "namespace", namespace)
    backend = SimulatedBackend.on(plane, namespace=namespace).start()
    reconciler = LocalReconciler(
        plane, ["--namespace", namespace, "--workers", str(workers), "--resync-period", "600"], log_name=f"r{count}"
    ).start()
    assert reconciler.process is not None
    meter = ProcessMeter(reconciler.process.pid)
    cpu_before = meter.cpu_seconds()
    before_api, before_rec = apiserver_requests(plane), reconciler_requests(reconciler)
    started = time.perf_counter()
    for i in range(count):
        admin.create(WUKONGS, manifest(f"w{i}", namespace))
    say(f"bench: {count} Wukongs created in {time.perf_counter() - started:.1f}s; watching them converge")
    watch_until_running(admin, namespace, count, say)
    took = time.perf_counter() - started
    after_api, after_rec = apiserver_requests(plane), reconciler_requests(reconciler)
    cpu = meter.cpu_seconds() - cpu_before
    meter.stop()
    reconciler.stop()
    backend.stop()
    mine = {k: v - before_rec.get(k, 0.0) for k, v in after_rec.items() if v - before_rec.get(k, 0.0)}
    writes = sum(v for k, v in mine.items() if k.split()[0] in ("POST", "PATCH", "PUT", "DELETE"))
    return {
        "count": count,
        "seconds": took,
        "requests": sum(mine.values()) / count,
        "writes": writes / count,
        "by_verb": {k: v / count for k, v in sorted(mine.items())},
        "api_total": sum(after_api.values()) - sum(before_api.values()),
        "rss": meter.peak_mib,
        "cpu": cpu,
    }


def plot(rows: list[dict], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    counts = [r["count"] for r in rows]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(counts, [r["seconds"] for r in rows], marker="o")
    left.set(xlabel="Wukongs", ylabel="seconds to all Running", title="convergence time")
    right.plot(counts, [r["api_total"] for r in rows], marker="o", label="all API requests")
    right.plot(counts, [r["requests"] * r["count"] for r in rows], marker="o", label="reconciler requests")
    right.set(xlabel="Wukongs", ylabel="requests", title="API requests")
    right.legend()
    figure.tight_layout()
    figure.savefig(path)
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--counts",
        default="100,500,1000,2000",
        help="Wukong counts, comma-separated (5000 takes about ten minutes more)",
    )
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--plot", type=Path, default=Path("bench/scale.png"))
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    say = lambda line: print(line, flush=True)  # noqa: E731
    with ControlPlane.start(log=say) as plane:
        admin = plane.client("bench")
        install_rbac(plane)
        say("bench: baseline, 300 plain creates (a DV, a PVC and a VM for 100 Wukongs) ...")
        base = baseline(plane, admin, 100) / 100
        rows = []
        for count in counts:
            say(f"bench: N = {count}")
            rows.append(converge(plane, admin, count, args.workers, say))
    print()
    print(f"baseline: the 3 plain creates of one Wukong take {base * 1000:.1f} ms (same run)")
    print(
        f"{'N':>6} {'to Running':>11} {'per Wukong':>11} {'x baseline':>10} {'req/Wukong':>11} {'writes/W':>9} "
        f"{'API total':>10} {'peak RSS':>9} {'CPU s':>7}"
    )
    for r in rows:
        per = r["seconds"] / r["count"]
        print(
            f"{r['count']:>6} {r['seconds']:>10.1f}s {per * 1000:>9.1f}ms {per / base:>10.2f} {r['requests']:>11.1f} "
            f"{r['writes']:>9.1f} {r['api_total']:>10.0f} {r['rss']:>7.1f}Mi {r['cpu']:>7.1f}"
        )
    for r in rows:
        print(f"  N={r['count']} per Wukong: " + ", ".join(f"{k} {v:.2f}" for k, v in r["by_verb"].items()))
    if plot(rows, args.plot):
        print(f"plot: {args.plot}")
    else:
        print("plot: matplotlib is not installed (pip install matplotlib)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
