"""``wukong-reconciler``: run the Wukong controller."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
import uuid
from collections.abc import Callable

from prometheus_client import REGISTRY

from kubeclient import health
from kubeclient.credentials import load_api_client
from kubeclient.leader import LEASE_SECONDS, LeaderElector
from kubeclient.rest import Kube
from reconciler.audit import PolicyAudit
from reconciler.controller import LEADER, SHARDS, SHARDS_HELD, Controller, Settings
from reconciler.events import COMPONENT
from reconciler.fleet import FleetCollector
from reconciler.sharding import MAX_SHARDS, ShardHolder, shard_of

log = logging.getLogger("wukong.reconciler")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wukong-reconciler", description=__doc__)
    parser.add_argument("--kubeconfig", help="default: in-cluster, then $KUBECONFIG or ~/.kube/config")
    parser.add_argument("--namespace", help="only reconcile Wukongs in this namespace (default: all)")
    parser.add_argument(
        "--workers",
        type=_positive_int,
        default=Settings.workers,
        help=f"concurrent reconciles (default {Settings.workers})",
    )
    parser.add_argument(
        "--resync-period",
        type=float,
        default=Settings.resync_period,
        metavar="SECONDS",
        help=f"requeue every Wukong this often (default {Settings.resync_period:g})",
    )
    parser.add_argument(
        "--hotplug-disks",
        action="store_true",
        help="attach disks added to a running VM without a restart (needs KubeVirt's DeclarativeHotplugVolumes "
        "feature gate; without it such disks wait for a restart)",
    )
    parser.add_argument("--metrics-port", type=int, default=8080, help="/healthz, /readyz, /metrics (0: off)")
    parser.add_argument("--metrics-bind-address", default="0.0.0.0")
    parser.add_argument("--leader-elect", action="store_true", help="run only while holding the Lease")
    parser.add_argument("--leader-elect-namespace", default=os.environ.get("POD_NAMESPACE", "wukong-system"))
    parser.add_argument("--leader-elect-id", default="wukong-reconciler", help="Lease name")
    parser.add_argument(
        "--shards",
        type=int,
        default=0,
        help=f"share the Wukongs among replicas: hash them into this many shards (2-{MAX_SHARDS}), each replica "
        "reconciling the shards whose Lease it holds (instead of --leader-elect)",
    )
    parser.add_argument("--shard-replicas", type=int, default=1, help="replicas expected: each takes its fair share")
    parser.add_argument(
        "--lease-seconds", type=int, default=LEASE_SECONDS, help=f"Lease duration for shards (default {LEASE_SECONDS})"
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    try:
        kube = Kube(load_api_client(args.kubeconfig), field_manager=COMPONENT)
    except Exception as error:  # a kubeconfig problem is the user's to fix: say so, no traceback
        print(f"wukong-reconciler: cannot load Kubernetes credentials: {error}", file=sys.stderr)
        return 2
    identity = f"{os.environ.get('POD_NAME') or socket.gethostname()}_{uuid.uuid4().hex[:8]}"
    if args.shards and not 2 <= args.shards <= MAX_SHARDS:
        print(f"wukong-reconciler: --shards must be between 2 and {MAX_SHARDS}", file=sys.stderr)
        return 2
    if args.shards and args.leader_elect:
        print("wukong-reconciler: --shards and --leader-elect exclude each other", file=sys.stderr)
        return 2
    holder = None
    if args.shards:
        holder = ShardHolder(
            kube,
            args.leader_elect_namespace,
            f"{args.leader_elect_id}-shard",
            args.shards,
            args.shard_replicas,
            identity,
            args.lease_seconds,
            on_gained=lambda shard: controller.enqueue_shard(shard, lambda ns, n: shard_of(ns, n, args.shards)),
        )
    controller = Controller(
        kube,
        Settings(
            namespace=args.namespace,
            workers=args.workers,
            resync_period=args.resync_period,
            instance=identity,
            hotplug_disks=args.hotplug_disks,
            owns=holder.owns if holder is not None else None,
        ),
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if args.metrics_port:
        REGISTRY.register(FleetCollector(controller.wukongs.items))
        health.serve(args.metrics_bind_address, args.metrics_port, controller.synced)
    controller.start_informers()
    lost = threading.Event()
    elector = LeaderElector(kube, args.leader_elect_namespace, args.leader_elect_id, identity)
    audit = None
    if args.namespace is None:  # policies are cluster-wide: audited only by a reconciler that sees every Wukong
        auditing = _auditing(holder, elector if args.leader_elect else None)
        audit = PolicyAudit(kube, controller.wukongs, controller.policies, auditing)
        audit.start()
    _count_leadership(holder, elector if args.leader_elect else None, args.shards)
    if args.leader_elect:
        runner = threading.Thread(
            target=elector.run,
            name="leader-election",
            daemon=True,
            args=(controller.run_workers, lambda: _lost(lost, stop), stop),
        )
        runner.start()
    else:
        if holder is not None:
            threading.Thread(target=holder.run, args=(stop,), name="shards", daemon=True).start()
        threading.Thread(target=controller.run_workers, name="start-workers", daemon=True).start()
    log.info(
        "wukong-reconciler %s started (workers %d, namespace %s, leader election %s)",
        identity,
        args.workers,
        args.namespace or "all",
        "on" if args.leader_elect else "off",
    )
    if holder is not None:
        log.info(
            "sharding: %d shards, fair share %d, Lease %s-shard-N", args.shards, holder.fair_share, args.leader_elect_id
        )
    stop.wait()
    log.info("shutting down")
    controller.stop()  # passes under way finish while this replica still holds the lease
    if audit is not None:
        audit.stop()
    if args.leader_elect:
        runner.join(timeout=10)
        elector.release()
    if holder is not None:
        holder.release()
    return 1 if lost.is_set() else 0


def _auditing(holder: ShardHolder | None, elector: LeaderElector | None) -> Callable[[], bool]:
    """Which replica audits the WukongPolicies: the one holding shard 0, else the leader, else the only one."""
    if holder is not None:
        return lambda: 0 in holder.held
    if elector is not None:
        return elector.leading.is_set
    return lambda: True


def _count_leadership(holder: ShardHolder | None, elector: LeaderElector | None, shards: int) -> None:
    """Whether this replica reconciles, for /metrics: an alert fires when none does."""
    if holder is not None:
        LEADER.set_function(lambda: float(bool(holder.held)))
        SHARDS_HELD.set_function(lambda: float(len(holder.held)))
    elif elector is not None:
        LEADER.set_function(lambda: float(elector.leading.is_set()))
    else:
        LEADER.set(1)
    SHARDS.set(shards)


def _lost(lost: threading.Event, stop: threading.Event) -> None:
    lost.set()
    stop.set()


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return int(text)
