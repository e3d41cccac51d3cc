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

from kubeclient import health
from kubeclient.credentials import load_api_client
from kubeclient.leader import LeaderElector
from kubeclient.rest import Kube
from reconciler.controller import Controller, Settings
from reconciler.events import COMPONENT

log = logging.getLogger("wukong.reconciler")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wukong-reconciler", description=__doc__)
    parser.add_argument("--kubeconfig", help="default: in-cluster, then $KUBECONFIG or ~/.kube/config")
    parser.add_argument("--namespace", help="only reconcile Wukongs in this namespace (default: all)")
    parser.add_argument("--workers", type=_positive_int, default=4, help="concurrent reconciles (default 4)")
    parser.add_argument(
        "--resync-period",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="requeue every Wukong this often (default 300)",
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
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    try:
        kube = Kube(load_api_client(args.kubeconfig), field_manager=COMPONENT)
    except Exception as error:  # a kubeconfig problem is the user's to fix: say so, no traceback
        print(f"wukong-reconciler: cannot load Kubernetes credentials: {error}", file=sys.stderr)
        return 2
    identity = f"{os.environ.get('POD_NAME') or socket.gethostname()}_{uuid.uuid4().hex[:8]}"
    controller = Controller(
        kube,
        Settings(
            namespace=args.namespace,
            workers=args.workers,
            resync_period=args.resync_period,
            instance=identity,
            hotplug_disks=args.hotplug_disks,
        ),
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if args.metrics_port:
        health.serve(args.metrics_bind_address, args.metrics_port, controller.synced)
    controller.start_informers()
    lost = threading.Event()
    if args.leader_elect:
        elector = LeaderElector(kube, args.leader_elect_namespace, args.leader_elect_id, identity)
        runner = threading.Thread(
            target=elector.run,
            name="leader-election",
            daemon=True,
            args=(controller.run_workers, lambda: _lost(lost, stop), stop),
        )
        runner.start()
    else:
        threading.Thread(target=controller.run_workers, name="start-workers", daemon=True).start()
    log.info(
        "wukong-reconciler started (workers %d, namespace %s, leader election %s)",
        args.workers,
        args.namespace or "all",
        "on" if args.leader_elect else "off",
    )
    stop.wait()
    log.info("shutting down")
    controller.stop()  # passes under way finish while this replica still holds the lease
    if args.leader_elect:
        runner.join(timeout=10)
        elector.release()
    return 1 if lost.is_set() else 0


def _lost(lost: threading.Event, stop: threading.Event) -> None:
    lost.set()
    stop.set()


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return int(text)
