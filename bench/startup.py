"""Warm start of devcluster: etcd + kube-apiserver ready, CRDs Established, StorageClasses installed.

    .venv/bin/python bench/startup.py [--runs 5]

Baseline (same run): etcd alone started and healthy, the floor every start pays before the API server.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from devcluster import toolchain
from devcluster.controlplane import ControlPlane


def etcd_alone(bin_dir: Path) -> float:
    with tempfile.TemporaryDirectory() as scratch:
        plane = ControlPlane(workdir=Path(scratch), bin_dir=bin_dir, log=lambda _line: None)
        started = time.perf_counter()
        try:
            plane.start_etcd()
            return time.perf_counter() - started
        finally:
            plane.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    bin_dir = toolchain.ensure_built()
    etcd, full = [], []
    for run in range(args.runs):
        etcd.append(etcd_alone(bin_dir))
        started = time.perf_counter()
        with ControlPlane.start(log=lambda _line: None):
            full.append(time.perf_counter() - started)
        print(f"bench: run {run + 1}/{args.runs}: etcd {etcd[-1]:.2f}s, control plane {full[-1]:.2f}s", flush=True)
    base, median = statistics.median(etcd), statistics.median(full)
    print()
    print(f"etcd alone (baseline), median      {base:.2f}s")
    print(
        f"warm control plane start, median    {median:.2f}s  = {median / base:.1f}x baseline  "
        f"(runs: {', '.join(f'{t:.2f}' for t in full)})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
