"""The scale curve against its floor: N Wukongs (2 disks each) converging on devcluster, and what they cost.

    .venv/bin/python bench/converge.py [--counts 100,500,1000,2000] [--repeat 1] [--workers N]
        [--simulation-workers 64] [--creators 16] [--profile DIR] [--plot bench/scale.png]

``--counts 100,500,1000,2000,5000`` adds the 5,000 (about half an hour more). For each N and repeat, two runs on the
same devcluster, each in a namespace of its own with a simulation of its own (devcluster/simulation.py: a process
with ``--simulation-workers`` workers, its queue depth reported so that it is seen not to be the bottleneck):

- **floor**: an ideal reconciler played by the benchmark (bench/floor.py) with the reconciler's ServiceAccount --
  each Wukong's children created the moment the Wukong is, ``Running`` written once when the VM's instance runs;
- **ours**: the real wukong-reconciler process with its ServiceAccount's rights, the benchmark creating only the
  Wukongs.

Both create the Wukongs from ``--creators`` threads and follow them with one watch until all are Running; which of
the two runs first alternates, and each namespace is deleted (and gone) before the next run starts. Printed per N:
both times and their ratio, our writes per Wukong (budget 6) and requests, all API requests, the reconciler's peak
RSS (KB per Wukong; budget 40) and CPU, the simulation's workers, CPU and queue, and the timeline of one Wukong --
created, volumes created, bound, VM created, VM running, status Running -- as percentiles over the N Wukongs.
``--profile DIR`` samples the reconciler with py-spy in each of our runs and prints where its time per Wukong went
at the smallest and the largest N. The plot (``--plot``) draws time, requests and memory against N, floor included.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from floor import IdealReconciler

from devcluster.controlplane import ControlPlane
from devcluster.local_reconciler import ACCOUNT as RECONCILER_ACCOUNT
from devcluster.local_reconciler import NAMESPACE as RECONCILER_NAMESPACE
from devcluster.local_reconciler import LocalReconciler, install_rbac
from devcluster.simulation import STEPS, SimulationProcess
from kubeclient.credentials import load_api_client
from kubeclient.resources import NAMESPACES
from kubeclient.rest import Kube, NotFound
from reconciler.events import COMPONENT
from wukong.api import WUKONGS

FLOOR, OURS = "floor", "ours"
CREATED, RUNNING = "created", "status Running"
TIMELINE = (CREATED, *STEPS, RUNNING)
WRITE_BUDGET = 6  # per Wukong: its 3 children and at most 3 status writes
MEMORY_BUDGET_KB = 40  # the reconciler's peak RSS per Wukong


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


def apiserver_requests(plane: ControlPlane) -> float:
    text = (plane.get("/metrics") or b"").decode()
    return sum(float(v) for v in re.findall(r"^apiserver_request_total\{[^}]*\} (\S+)$", text, re.MULTILINE))


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


def reconciler_passes(reconciler: LocalReconciler) -> float:
    pattern = r"^wukong_reconciler_reconciles_total\{[^}]*\} (\S+)$"
    return sum(float(v) for v in re.findall(pattern, reconciler.metrics(), re.MULTILINE))


class Observer:
    """One watch on the namespace's Wukongs, started before the first create (an observer whose cost does not grow
    with polling): when each was first seen Running, wall clock."""

    def __init__(self, admin: Kube, namespace: str) -> None:
        self.admin, self.namespace = admin, namespace
        self.running: dict[str, float] = {}
        self._changed = threading.Condition()
        _, self._version = admin.list(WUKONGS, namespace)
        self._stop = threading.Event()
        threading.Thread(target=self._watch, name="observer", daemon=True).start()

    def _watch(self) -> None:
        while not self._stop.is_set():
            for event in self.admin.watch(WUKONGS, self.namespace, self._version, timeout_seconds=30):
                obj = event["object"]
                self._version = obj["metadata"].get("resourceVersion", self._version)
                if event["type"] in ("ADDED", "MODIFIED") and (obj.get("status") or {}).get("phase") == "Running":
                    with self._changed:
                        self.running.setdefault(obj["metadata"]["name"], time.time())
                        self._changed.notify_all()
                if self._stop.is_set():
                    return

    def wait(self, count: int, say, timeout: float = 3600) -> dict[str, float]:
        started = time.monotonic()
        with self._changed:
            while len(self.running) < count:
                if time.monotonic() - started > timeout:
                    raise RuntimeError(f"did not converge in {timeout:.0f}s")
                if not self._changed.wait(10):
                    say(f"bench:   {len(self.running)}/{count} Running after {time.monotonic() - started:.0f}s")
            self._stop.set()
            return dict(self.running)


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


def create_all(count: int, namespace: str, creators: int, create) -> dict[str, float]:
    """Every Wukong, from ``creators`` threads; returns when each was created (wall clock)."""
    names = [f"w{i}" for i in range(count)]
    with ThreadPoolExecutor(creators, thread_name_prefix="creator") as pool:
        return dict(zip(names, pool.map(lambda name: create(manifest(name, namespace)), names), strict=True))


def run(plane: ControlPlane, admin: Kube, mode: str, count: int, args: argparse.Namespace, tag: str, say) -> dict:
    namespace = f"bench-{mode}-{count}-{tag}"
    plane.kubectl("create", "namespace", namespace)
    simulation = SimulationProcess(plane, namespace, args.simulation_workers, log_name=f"simulation-{namespace}")
    simulation.start()
    result: dict[str, Any] = {"mode": mode, "count": count}
    if mode == FLOOR:
        identity = plane.service_account_kubeconfig(RECONCILER_NAMESPACE, RECONCILER_ACCOUNT)
        as_reconciler = Kube(load_api_client(str(identity)), field_manager=COMPONENT)
        floor = IdealReconciler(admin, as_reconciler, namespace, args.creators).start()

        def create(obj: dict) -> float:
            return floor.create(obj)
    else:
        reconciler = LocalReconciler(
            plane,
            [
                "--namespace",
                namespace,
                "--resync-period",
                "600",
                *(["--workers", str(args.workers)] if args.workers else []),
            ],
            log_name=f"reconciler-{namespace}",
        ).start()
        assert reconciler.process is not None
        meter = ProcessMeter(reconciler.process.pid)
        cpu_before, before_rec = meter.cpu_seconds(), reconciler_requests(reconciler)
        passes_before = reconciler_passes(reconciler)
        profiler = profile_start(reconciler.process.pid, args.profile, namespace) if args.profile else None

        def create(obj: dict) -> float:
            admin.create(WUKONGS, obj)
            return time.time()

    observer = Observer(admin, namespace)
    before_api = apiserver_requests(plane)
    started = time.monotonic()
    created = create_all(count, namespace, args.creators, create)
    say(f"bench: {mode}: {count} Wukongs created in {time.monotonic() - started:.1f}s; watching them converge")
    running = observer.wait(count, say)
    result["seconds"] = time.monotonic() - started
    result["api_total"] = apiserver_requests(plane) - before_api
    if mode == FLOOR:
        floor.stop()
        result["writes"] = floor.writes / count
    else:
        after_rec = reconciler_requests(reconciler)
        result["passes"] = (reconciler_passes(reconciler) - passes_before) / count
        result["cpu"] = meter.cpu_seconds() - cpu_before
        result["rss"] = meter.peak_mib
        meter.stop()
        if profiler is not None:
            result["profile"] = profile_stop(profiler)
        reconciler.stop()
        mine = {k: v - before_rec.get(k, 0.0) for k, v in after_rec.items() if v - before_rec.get(k, 0.0)}
        verbs = ("POST", "PATCH", "PUT", "DELETE")
        result["writes"] = sum(v for k, v in mine.items() if k.split()[0] in verbs) / count
        result["status_writes"] = sum(v for k, v in mine.items() if k.startswith("PATCH wukongs/status")) / count
        result["requests"] = sum(mine.values()) / count
        result["by_verb"] = {k: v / count for k, v in sorted(mine.items())}
    report = simulation.stop()
    result["simulation"] = {k: report[k] for k in ("workers", "cpu", "queue")}
    result["timeline"] = {
        name: {CREATED: 0.0, **{s: t - created[name] for s, t in report["steps"].get(name, {}).items()}}
        | {RUNNING: running[name] - created[name]}
        for name in created
    }
    return result


def delete_namespace(plane: ControlPlane, admin: Kube, namespace: str, timeout: float = 3600) -> None:
    """Deleted and gone before the next run, which would otherwise pay for the garbage collection."""
    plane.kubectl("delete", "namespace", namespace, "--wait=false")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            admin.get(NAMESPACES, None, namespace)
        except NotFound:
            return
        time.sleep(1)  # a benchmark's pacing between runs
    raise RuntimeError(f"namespace {namespace} not gone after {timeout:.0f}s")


# -- profiling -------------------------------------------------------------------------------------------
def profile_start(pid: int, directory: Path, name: str) -> tuple[subprocess.Popen[bytes], Path]:
    """py-spy sampling the reconciler (100 Hz, without pausing it; idle threads left out) into collapsed stacks."""
    directory.mkdir(parents=True, exist_ok=True)
    out = directory / f"{name}.txt"
    spy = Path(sys.executable).parent / "py-spy"
    command = [str(spy), "record", "--pid", str(pid), "--rate", "100", "--nonblocking", "--format", "raw"]
    command += ["--output", str(out)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), out


def profile_stop(profiler: tuple[subprocess.Popen[bytes], Path]) -> dict[str, float]:
    """Samples per function, counted once per stack that holds it (inclusive), from py-spy's collapsed stacks."""
    process, out = profiler
    process.send_signal(2)  # SIGINT: py-spy writes what it sampled and exits
    process.wait(60)
    inclusive: collections.Counter[str] = collections.Counter()
    for line in out.read_text().splitlines() if out.exists() else []:
        stack, _, samples = line.rpartition(" ")
        frames = {re.sub(r" \(.*?:\d+\)$", "", f) + _file_of(f) for f in stack.split(";")}
        for frame in frames:
            inclusive[frame] += int(samples)
    return dict(inclusive)


def _file_of(frame: str) -> str:
    found = re.search(r"\(([^()]*?):\d+\)$", frame)
    return f" ({Path(found.group(1)).name})" if found else ""


# -- reporting -------------------------------------------------------------------------------------------
def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def print_timeline(count: int, floor: dict, ours: dict) -> None:
    print(f"  timeline of one Wukong, N={count}: seconds after its create, p50 / p90 / p99 / max over the Wukongs")
    print(f"    {'step':<16} {'floor':>31}   {'ours':>31}")
    for step in TIMELINE[1:]:
        cells = []
        for r in (floor, ours):
            values = [t[step] for t in r["timeline"].values() if step in t]
            cells.append(" / ".join(f"{percentile(values, q):5.1f}" for q in (0.5, 0.9, 0.99, 1.0)))
        print(f"    {step:<16} {cells[0]:>31}   {cells[1]:>31}")


def summarize(runs: list[dict]) -> list[dict]:
    """Per N: the floor and ours of each repeat, paired."""
    pairs = []
    for count in sorted({r["count"] for r in runs}):
        floors = [r for r in runs if r["count"] == count and r["mode"] == FLOOR]
        ours = [r for r in runs if r["count"] == count and r["mode"] == OURS]
        pairs += [{"count": count, FLOOR: f, OURS: o} for f, o in zip(floors, ours, strict=True)]
    return pairs


def report(pairs: list[dict], args: argparse.Namespace) -> None:
    print()
    print(
        f"simulation: a process of its own per run, {args.simulation_workers} workers; reconciler: "
        f"{args.workers or 'its default'} workers; Wukongs created (and the floor's statuses written) from "
        f"{args.creators} threads"
    )
    print(f"{'N':>6} {'floor':>8} {'ours':>8} {'ours/floor':>10} {'ms/Wukong floor':>16} {'ms/Wukong ours':>15}")
    for p in pairs:
        f, o, n = p[FLOOR], p[OURS], p["count"]
        print(
            f"{n:>6} {f['seconds']:>7.1f}s {o['seconds']:>7.1f}s {o['seconds'] / f['seconds']:>10.2f} "
            f"{f['seconds'] / n * 1000:>16.1f} {o['seconds'] / n * 1000:>15.1f}"
        )
    print(
        f"{'N':>6} {'writes/W':>9} {'status/W':>9} {'passes/W':>9} {'req/W':>6} {'API floor':>10} {'API ours':>9} "
        f"{'ratio':>6} {'peak RSS':>9} {'KB/W':>6} {'CPU s':>6}"
    )
    for p in pairs:
        f, o, n = p[FLOOR], p[OURS], p["count"]
        print(
            f"{n:>6} {o['writes']:>9.2f} {o['status_writes']:>9.2f} {o['passes']:>9.1f} {o['requests']:>6.1f} "
            f"{f['api_total']:>10.0f} {o['api_total']:>9.0f} {o['api_total'] / f['api_total']:>6.2f} "
            f"{o['rss']:>7.0f}Mi {o['rss'] * 1024 / n:>6.1f} {o['cpu']:>6.1f}"
        )
    print(
        f"  writes/W: the reconciler's writes per Wukong (budget {WRITE_BUDGET}; the floor's are 4), of which status; "
        f"passes/W: its reconcile passes; API: every request the API server counted in the run; KB/W: the "
        f"reconciler's peak RSS per Wukong (budget {MEMORY_BUDGET_KB})"
    )
    print(f"{'N':>6} {'simulation':>10} {'CPU s floor/ours':>17} {'queue peak floor/ours':>22} {'queue mean':>11}")
    for p in pairs:
        f, o = p[FLOOR]["simulation"], p[OURS]["simulation"]
        peaks, means = (
            f"{f['queue']['peak']:.0f}/{o['queue']['peak']:.0f}",
            f"{f['queue']['mean']:.1f}/{o['queue']['mean']:.1f}",
        )
        print(f"{p['count']:>6} {o['workers']:>8} w {f['cpu']:>8.1f}/{o['cpu']:<8.1f} {peaks:>22} {means:>11}")
    smallest, largest = min(p["count"] for p in pairs), max(p["count"] for p in pairs)
    if largest != smallest:
        per = {n: [p[OURS]["seconds"] / n for p in pairs if p["count"] == n] for n in (smallest, largest)}
        growth = (sum(per[largest]) / len(per[largest])) / (sum(per[smallest]) / len(per[smallest]))
        print(f"  ours per Wukong at N={largest} over N={smallest}: {growth:.2f}")
    for p in pairs:
        by_verb = ", ".join(f"{k} {v:.2f}" for k, v in p[OURS]["by_verb"].items())
        print(f"  N={p['count']} reconciler requests per Wukong: {by_verb}")
    for p in pairs:
        print_timeline(p["count"], p[FLOOR], p[OURS])
    profiled = [p for p in pairs if "profile" in p[OURS]]
    if len(profiled) >= 2:
        print_profile(profiled[0], profiled[-1])


def print_profile(small: dict, large: dict, top: int = 25) -> None:
    """py-spy samples (10 ms each) per Wukong, inclusive, at the smallest and largest N: what grew."""
    a, b = small[OURS]["profile"], large[OURS]["profile"]
    na, nb = small["count"], large["count"]
    rows = sorted(set(a) | set(b), key=lambda f: -(b.get(f, 0) / nb))[:top]
    print(f"  reconciler profile, ms of samples per Wukong (inclusive), N={na} and N={nb}:")
    for frame in rows:
        print(f"    {a.get(frame, 0) * 10 / na:8.2f} {b.get(frame, 0) * 10 / nb:8.2f}  {frame[:110]}")


def plot(pairs: list[dict], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    counts = sorted({p["count"] for p in pairs})

    def mean(mode: str, figure_of) -> list[float]:  # over the repeats of each N
        return [
            sum(figure_of(p[mode]) for p in pairs if p["count"] == n) / sum(p["count"] == n for p in pairs)
            for n in counts
        ]

    figure, (time_, requests, memory) = plt.subplots(1, 3, figsize=(15, 4))
    time_.plot(counts, mean(OURS, lambda r: r["seconds"]), "o-", label="ours")
    time_.plot(counts, mean(FLOOR, lambda r: r["seconds"]), "s--", label="floor (ideal reconciler)")
    time_.set(xlabel="Wukongs", ylabel="seconds to all Running", title="convergence time")
    requests.plot(counts, mean(OURS, lambda r: r["api_total"]), "o-", label="all API requests, ours")
    requests.plot(counts, mean(FLOOR, lambda r: r["api_total"]), "s--", label="all API requests, floor")
    requests.plot(counts, mean(OURS, lambda r: r["requests"] * r["count"]), "^-", label="the reconciler's")
    requests.set(xlabel="Wukongs", ylabel="requests", title="API requests")
    memory.plot(counts, mean(OURS, lambda r: r["rss"]), "o-", label="reconciler peak RSS")
    memory.plot(counts, [MEMORY_BUDGET_KB * n / 1024 for n in counts], ":", label=f"{MEMORY_BUDGET_KB} KB per Wukong")
    memory.set(xlabel="Wukongs", ylabel="MiB", title="memory")
    for axes in (time_, requests, memory):
        axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--counts", default="100,500,1000,2000", help="Wukong counts, comma-separated (5000 too)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each N, floor and ours each time")
    parser.add_argument("--workers", type=int, help="the reconciler's --workers (default: its own default)")
    parser.add_argument("--simulation-workers", type=int, default=64)
    parser.add_argument(
        "--creators", type=int, default=16, help="threads creating the Wukongs (and writing the floor's statuses)"
    )
    parser.add_argument("--profile", type=Path, help="sample the reconciler with py-spy, collapsed stacks here")
    parser.add_argument("--plot", type=Path, default=Path("bench/scale.png"))
    parser.add_argument("--results", type=Path, help="append each run's figures to this file (JSON lines)")
    parser.add_argument("--report", type=Path, help="print the report of the runs in this file and run nothing")
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    say = lambda line: print(line, flush=True)  # noqa: E731
    runs = []
    if args.report:
        runs = [json.loads(line) for line in args.report.read_text().splitlines() if line.strip()]
    else:
        with ControlPlane.start(log=say) as plane:
            admin = plane.client("bench")
            install_rbac(plane)
            plan = [
                (repeat, count, mode)
                for turn, (repeat, count) in enumerate((r, c) for r in range(args.repeat) for c in counts)
                for mode in ((FLOOR, OURS) if turn % 2 == 0 else (OURS, FLOOR))
            ]
            for index, (repeat, count, mode) in enumerate(plan):
                say(f"bench: N = {count}, {mode} (repeat {repeat + 1})")
                runs.append(run(plane, admin, mode, count, args, str(repeat), say))
                if args.results:
                    with args.results.open("a") as out:
                        out.write(json.dumps(runs[-1]) + "\n")
                if index < len(plan) - 1:
                    delete_namespace(plane, admin, f"bench-{mode}-{count}-{repeat}")
    pairs = summarize(runs)
    report(pairs, args)
    if plot(pairs, args.plot):
        print(f"plot: {args.plot}")
    else:
        print("plot: matplotlib is not installed (pip install matplotlib)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
