"""``wukong-reconciler`` on devcluster, run with exactly the rights of its ServiceAccount in deploy/.

The reconciler gets a kubeconfig holding a token of the ``wukong-reconciler`` ServiceAccount (TokenRequest
API), as it would in its Pod: every request it makes is authorised against deploy/rbac/reconciler.yaml,
which proves those rules suffice (and nothing more is granted).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from devcluster import identities
from devcluster.controlplane import ControlPlane, die_with_parent, free_port, terminate

NAMESPACE, ACCOUNT = identities.NAMESPACE, identities.RECONCILER
SERVICE_ACCOUNT = identities.username(ACCOUNT)


def install_rbac(plane: ControlPlane) -> None:
    identities.install(plane, identities.RECONCILER)


@dataclass
class LocalReconciler:
    plane: ControlPlane
    extra_args: list[str] = field(default_factory=list)
    metrics_port: int = 0
    process: subprocess.Popen[bytes] | None = None
    log_name: str = "reconciler"
    server: str | None = None  # another address for the API server (a proxy in front of it)

    def start(self, wait_ready: bool = True) -> LocalReconciler:
        kubeconfig = self.plane.service_account_kubeconfig(NAMESPACE, ACCOUNT, self.server)
        self.metrics_port = free_port()
        log = open(self.plane.workdir / f"{self.log_name}.log", "ab")  # noqa: SIM115 - lives as long as the process
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "wukong-reconciler"),
                "--kubeconfig",
                str(kubeconfig),
                "--metrics-bind-address",
                "127.0.0.1",
                "--metrics-port",
                str(self.metrics_port),
                *self.extra_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        if wait_ready:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while self.get("/readyz") != 200:
            assert self.process is not None
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"wukong-reconciler did not become ready:\n{self.plane.log_tail(self.log_name)}")
            time.sleep(0.05)

    def get(self, path: str) -> int | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}{path}", timeout=2) as reply:
                return reply.status
        except OSError:
            return None

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as reply:
            return reply.read().decode()

    def kill(self) -> None:
        """SIGKILL: no cleanup at all, as when a node dies."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> int | None:
        """SIGTERM, the graceful way; returns the exit code."""
        return None if self.process is None else terminate(self.process, timeout=30)
