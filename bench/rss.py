"""The reconciler's memory does not grow with objects that are not its own.

    .venv/bin/python bench/rss.py [--unrelated 10000]

Starts devcluster and the real wukong-reconciler (its informers select PVCs, DataVolumes, VMs and VMIs by label),
measures its resident memory once its caches have synced (baseline), creates N unrelated PVCs, starts a fresh
reconciler and measures again. Printed: both figures and their ratio.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from devcluster.controlplane import ControlPlane
from devcluster.local_reconciler import LocalReconciler, install_rbac


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def settled_rss(plane: ControlPlane) -> float:
    """RSS of a freshly started reconciler once ready (caches synced), after a few seconds of idling."""
    reconciler = LocalReconciler(plane, ["--resync-period", "600"], log_name="rss-reconciler").start()
    try:
        assert reconciler.process is not None
        time.sleep(3)  # a benchmark's pacing: let allocation settle after the initial lists
        return rss_mib(reconciler.process.pid)
    finally:
        reconciler.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--unrelated", type=int, default=10000)
    args = parser.parse_args()
    say = lambda line: print(line, flush=True)  # noqa: E731
    with ControlPlane.start(log=say) as plane:
        install_rbac(plane)
        plane.kubectl("create", "namespace", "unrelated")
        baseline = settled_rss(plane)
        say(f"bench: reconciler RSS with no unrelated objects: {baseline:.1f} MiB; creating {args.unrelated} PVCs")
        kube = plane.client("bench")
        from kubeclient.resources import PVCS

        started = time.monotonic()
        for index in range(args.unrelated):
            kube.create(
                PVCS,
                {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "metadata": {"name": f"other-{index}", "namespace": "unrelated", "labels": {"app": "someone-else"}},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
                },
            )
            if index % 2000 == 1999:
                say(f"bench:   {index + 1} PVCs, {time.monotonic() - started:.0f}s")
        loaded = settled_rss(plane)
        listed = json.loads(plane.kubectl("get", "pvc", "-n", "unrelated", "-o", "json").stdout)["items"]
    print()
    print(f"unrelated PVCs in the cluster      {len(listed)}")
    print(f"reconciler RSS without them        {baseline:.1f} MiB (baseline)")
    print(f"reconciler RSS with them           {loaded:.1f} MiB = {loaded / baseline:.2f}x baseline")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
