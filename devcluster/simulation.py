"""The simulated backend (backend.py) as a process of its own, for the benchmarks.

Inside the benchmark's process the simulation would share one interpreter lock with the load it is measured under
(the creates, the watch, the floor's writes); in a process of its own, its throughput is its workers' (a setting,
``--workers``) and its CPU its own. It also records, from the events it reacts to, when each Wukong's children
reached each step -- the timeline bench/converge.py prints -- without a watch more:

    python -m devcluster.simulation --kubeconfig K --cdi-kubeconfig C --namespace NS --workers W --report FILE

prints ``ready`` once its caches synced; on SIGTERM it stops and writes FILE (JSON): each Wukong's steps (wall-clock
seconds), its CPU seconds, and the depth of its work queue sampled every 0.1 s -- a queue that stays short says
the workers kept up, so the simulation was not what the measurement waited for.
"""

from __future__ import annotations

import argparse
import json
import resource
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devcluster.backend import CDI_ACCOUNT, CDI_NAMESPACE, SIMULATION, SimulatedBackend, cdi_identity
from devcluster.controlplane import ControlPlane, die_with_parent, terminate
from kubeclient.credentials import load_api_client
from kubeclient.rest import Kube
from wukong import api

# The steps of one Wukong that the simulation sees, in order; each is the time the last of its children got there.
VOLUMES_CREATED, VOLUMES_BOUND, VM_CREATED, VM_RUNNING = "volumes created", "volumes bound", "VM created", "VM running"
STEPS = (VOLUMES_CREATED, VOLUMES_BOUND, VM_CREATED, VM_RUNNING)
SAMPLE_SECONDS = 0.1


class Timeline:
    """When each Wukong's children were first seen at each step, by the Wukong label they carry. The claim CDI
    makes for a DataVolume is the DataVolume's business: the DataVolume's success says that volume is bound."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, dict[tuple[str, str], float]] = {}  # Wukong -> (step, child) -> first seen

    def attach(self, backend: SimulatedBackend) -> None:
        """Before the backend starts: its informers then call these for every object, the first list included."""
        backend.data_volumes.on_change(lambda _event, obj: self._volume(obj, "Succeeded"))
        backend.pvcs.on_change(lambda _event, obj: self._volume(obj, "Bound"))
        backend.vms.on_change(lambda _event, obj: self._record(obj, VM_CREATED))
        backend.instances.on_change(self._instance)

    def _volume(self, obj: dict[str, Any], done: str) -> None:
        if any(ref.get("kind") == "DataVolume" for ref in obj["metadata"].get("ownerReferences") or []):
            return
        self._record(obj, VOLUMES_CREATED)
        if (obj.get("status") or {}).get("phase") == done:
            self._record(obj, VOLUMES_BOUND)

    def _instance(self, _event: str, obj: dict[str, Any]) -> None:
        if (obj.get("status") or {}).get("phase") == "Running":
            self._record(obj, VM_RUNNING)

    def _record(self, obj: dict[str, Any], step: str) -> None:
        owner = (obj["metadata"].get("labels") or {}).get(api.WUKONG_LABEL)
        if owner is None:
            return
        now = time.time()
        with self._lock:
            self._seen.setdefault(owner, {}).setdefault((step, obj["metadata"]["name"]), now)

    def steps(self) -> dict[str, dict[str, float]]:
        """Wukong -> step -> when its last child reached it (a step none reached is left out)."""
        with self._lock:
            seen = {owner: dict(children) for owner, children in self._seen.items()}
        result: dict[str, dict[str, float]] = {}
        for owner, children in seen.items():
            reached: dict[str, float] = {}
            for (step, _child), when in children.items():
                reached[step] = max(reached.get(step, when), when)
            result[owner] = reached
        return result


class QueueDepth:
    """The simulation's queue length, sampled: its peak and mean while the run lasts."""

    def __init__(self, backend: SimulatedBackend) -> None:
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, args=(backend,), name="queue-depth", daemon=True)
        self._thread.start()

    def _sample(self, backend: SimulatedBackend) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self.samples.append(len(backend.queue))

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join(1)
        samples = self.samples or [0]
        return {"peak": max(samples), "mean": sum(samples) / len(samples)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devcluster.simulation", description=__doc__)
    parser.add_argument("--kubeconfig", required=True, help="an admin's: the simulation binds and runs what it plays")
    parser.add_argument("--cdi-kubeconfig", required=True, help="CDI's ServiceAccount's, for the claims CDI makes")
    parser.add_argument("--namespace", help="simulate only there (default: everywhere)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--report", type=Path, required=True)
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    kube = Kube(load_api_client(args.kubeconfig), field_manager=SIMULATION)
    cdi = Kube(load_api_client(args.cdi_kubeconfig), field_manager=SIMULATION)
    backend = SimulatedBackend(kube, workers=args.workers, namespace=args.namespace, cdi=cdi)
    timeline = Timeline()
    timeline.attach(backend)
    backend.start()
    depth = QueueDepth(backend)
    print("ready", flush=True)
    stop.wait()
    backend.stop()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    report = {
        "workers": args.workers,
        "cpu": usage.ru_utime + usage.ru_stime,
        "queue": depth.stop(),
        "steps": timeline.steps(),
    }
    args.report.write_text(json.dumps(report))
    return 0


@dataclass
class SimulationProcess:
    """The simulation run as ``python -m devcluster.simulation`` on devcluster, from the benchmark's process."""

    plane: ControlPlane
    namespace: str
    workers: int
    log_name: str = "simulation"
    process: subprocess.Popen[bytes] | None = None
    report: Path = field(init=False)

    def start(self) -> SimulationProcess:
        self.plane.apply(cdi_identity())
        cdi = self.plane.service_account_kubeconfig(CDI_NAMESPACE, CDI_ACCOUNT)
        self.report = self.plane.workdir / f"{self.log_name}.json"
        log = open(self.plane.workdir / f"{self.log_name}.log", "ab")  # noqa: SIM115 - lives as long as the process
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "devcluster.simulation",
                "--kubeconfig",
                str(self.plane.kubeconfig),
                "--cdi-kubeconfig",
                str(cdi),
                "--namespace",
                self.namespace,
                "--workers",
                str(self.workers),
                "--report",
                str(self.report),
            ],
            stdout=subprocess.PIPE,
            stderr=log,
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
            cwd=Path(__file__).resolve().parents[1],
        )
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != b"ready":  # its caches wait 30 s at most; EOF if it died
            terminate(self.process, 5)
            raise RuntimeError(f"the simulation did not start:\n{self.plane.log_tail(self.log_name)}")
        return self

    def stop(self) -> dict[str, Any]:
        """Stops it and returns its report (see the module's docstring)."""
        assert self.process is not None
        code = terminate(self.process, timeout=30)
        if code != 0 or not self.report.exists():
            raise RuntimeError(f"the simulation ended with {code}:\n{self.plane.log_tail(self.log_name)}")
        report: dict[str, Any] = json.loads(self.report.read_text())
        return report


if __name__ == "__main__":
    sys.exit(main())
