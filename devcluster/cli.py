"""``python -m devcluster`` (from the checkout's .venv; `make up` / `make down`): the local control plane.

python -m devcluster build          build kube-apiserver, kube-controller-manager, kubectl, etcd once per machine
python -m devcluster up             start it in the foreground (Ctrl-C stops it and removes everything)
python -m devcluster up --detach    start it in the background; `down` stops it
eval "$(python -m devcluster env)"  point kubectl at it
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from devcluster import toolchain

STATE_FILE = "devcluster.json"


def state_path() -> Path:
    return toolchain.cache_dir() / STATE_FILE


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devcluster", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    commands.add_parser("build", help="build the pinned binaries into the cache").set_defaults(run=_build)
    up = commands.add_parser("up", help="start etcd, kube-apiserver, the webhook, the reconciler and the simulation")
    up.add_argument("--detach", action="store_true", help="run in the background until `down`")
    up.add_argument("--no-webhook", action="store_true", help="do not run and register the admission webhook")
    up.add_argument("--no-reconciler", action="store_true", help="do not run the reconciler")
    up.add_argument("--no-simulation", action="store_true", help="do not run the simulated storage/VM backend")
    up.add_argument("--detached-child", action="store_true", help=argparse.SUPPRESS)  # what --detach starts
    up.set_defaults(run=_up)
    commands.add_parser("down", help="stop a cluster started with --detach").set_defaults(run=_down)
    commands.add_parser("env", help="print shell exports for a running cluster").set_defaults(run=_env)
    permissions = commands.add_parser(
        "permissions",
        help="print what each ServiceAccount may do (kubectl auth can-i --list) and compare it with the expectation",
        description="Starts a throwaway control plane with deploy/'s RBAC and policies for the three "
        "ServiceAccounts, prints kubectl auth can-i --list for each in wukong-system and in another namespace, "
        "and exits 1 with a diff when it differs from deploy/rbac/expected-permissions.txt.",
    )
    permissions.add_argument("--update", action="store_true", help="write the listing as the new expectation")
    permissions.set_defaults(run=_permissions)
    args = parser.parse_args(argv)
    return args.run(args)


def _build(_args: argparse.Namespace) -> int:
    return toolchain.main()


def _up(args: argparse.Namespace) -> int:
    if _running_state() is not None:
        print(f"devcluster: already running (see `python -m devcluster env`); state in {state_path()}", file=sys.stderr)
        return 1
    if args.detach:
        return _detach(args)
    from devcluster.backend import SimulatedBackend
    from devcluster.controlplane import ControlPlane
    from devcluster.local_reconciler import LocalReconciler, install_rbac
    from devcluster.webhooks import LocalWebhook

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        plane = ControlPlane.start(log=lambda line: print(line, flush=True))
    except (RuntimeError, OSError) as error:
        print(f"devcluster: {error}", file=sys.stderr)
        return 1
    webhook = backend = reconciler = None
    try:
        if not args.no_webhook:
            webhook = LocalWebhook(plane).start()
            webhook.register()
            print(f"devcluster: wukong-webhook serving at {webhook.url} and registered", flush=True)
        if not args.no_simulation:
            backend = SimulatedBackend.on(plane, delay=0.5).start()
            print("devcluster: SIMULATED storage/VM backend running (plays Longhorn, CDI and KubeVirt)", flush=True)
        if not args.no_reconciler:
            install_rbac(plane)
            reconciler = LocalReconciler(plane, ["--hotplug-disks"]).start()  # the simulation has the gate
            print("devcluster: wukong-reconciler running with its ServiceAccount's rights", flush=True)
        state = {
            "pid": os.getpid(),
            "kubeconfig": str(plane.kubeconfig),
            "server": plane.server,
            "bin_dir": str(plane.bin_dir),
            "workdir": str(plane.workdir),
        }
        state_path().parent.mkdir(parents=True, exist_ok=True)
        state_path().write_text(json.dumps(state))
        print(_exports(state), flush=True)
        stops = "`make down` (`python -m devcluster down`)" if args.detached_child else "Ctrl-C (or `make down`)"
        print(f"devcluster: up; {stops} stops it", flush=True)
        stop.wait()
    finally:
        print("devcluster: stopping", flush=True)
        if reconciler is not None:
            reconciler.stop()
        if backend is not None:
            backend.stop()
        if webhook is not None:
            webhook.stop()
        plane.stop()
        state_path().unlink(missing_ok=True)
    return 0


def _permissions(args: argparse.Namespace) -> int:
    import difflib

    from devcluster import checkout, identities
    from devcluster.controlplane import ControlPlane

    with ControlPlane.start(log=lambda line: print(line, file=sys.stderr, flush=True)) as plane:
        identities.install(plane)
        listing = identities.permissions(plane)
    print(listing, end="")
    path = checkout.deploy(*identities.EXPECTED_PERMISSIONS)
    if args.update:
        path.write_text(listing)
        print(f"devcluster: wrote {path}", file=sys.stderr)
        return 0
    expected = identities.expected_permissions()
    if listing == expected:
        print(f"devcluster: the ServiceAccounts may do exactly what {path.name} lists", file=sys.stderr)
        return 0
    diff = difflib.unified_diff(
        expected.splitlines(keepends=True), listing.splitlines(keepends=True), str(path), "the API server's answer"
    )
    print("".join(diff), file=sys.stderr)
    print(f"devcluster: RBAC differs from {path}; review it, then `make permissions-update`", file=sys.stderr)
    return 1


def _detach(args: argparse.Namespace) -> int:
    skipped = [f"--no-{part}" for part in ("webhook", "reconciler", "simulation") if getattr(args, f"no_{part}")]
    command = [sys.executable, "-m", "devcluster", "up", "--detached-child", *skipped]
    log_path = toolchain.cache_dir() / "devcluster.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    shown = 0
    while (state := _running_state()) is None:
        shown = _follow(log_path, shown)
        if process.poll() is not None:
            _follow(log_path, shown)
            print(f"devcluster: failed to start (log: {log_path})", file=sys.stderr)
            return 1
        time.sleep(0.2)
    _follow(log_path, shown)
    print(_exports(state))
    return 0


def _follow(path: Path, shown: int) -> int:
    """Print what the background process logged since last time, so a build or start is never silent."""
    lines = path.read_text(errors="replace").splitlines() if path.exists() else []
    for line in lines[shown:]:
        if not line.startswith("export "):
            print(line, flush=True)
    return len(lines)


def _down(_args: argparse.Namespace) -> int:
    state = _running_state()
    if state is None:
        print("devcluster: not running")
        return 0
    os.kill(state["pid"], signal.SIGTERM)
    deadline = time.monotonic() + 60
    while _alive(state["pid"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    print("devcluster: stopped")
    return 0


def _env(_args: argparse.Namespace) -> int:
    state = _running_state()
    if state is None:
        print("devcluster: not running; start it with `python -m devcluster up --detach`", file=sys.stderr)
        return 1
    print(_exports(state))
    return 0


def _exports(state: dict) -> str:
    scripts = Path(sys.executable).parent  # the checkout's .venv/bin: kubectl-wukong, so `kubectl wukong` works
    return f"export KUBECONFIG={state['kubeconfig']}\nexport PATH={state['bin_dir']}:{scripts}:$PATH"


def _running_state() -> dict | None:
    try:
        state = json.loads(state_path().read_text())
    except (OSError, ValueError):
        return None
    if not _alive(state.get("pid", -1)):
        state_path().unlink(missing_ok=True)
        return None
    return state


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True
