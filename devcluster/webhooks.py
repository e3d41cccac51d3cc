"""The webhook on devcluster: a real ``wukong-webhook serve`` on loopback, registered from deploy/.

The configurations are the ones in deploy/webhookconfigurations with each ``clientConfig.service``
rewritten to ``url: https://127.0.0.1:PORT/<path>`` and the local CA as ``caBundle`` -- what envtest
does for controller-runtime webhooks.
"""

from __future__ import annotations

import base64
import copy
import datetime
import os
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from certs import files, pki
from devcluster import checkout
from devcluster.controlplane import ControlPlane, die_with_parent, free_port, terminate

START_TIMEOUT_SECONDS = 30.0


def configurations() -> list[dict[str, Any]]:
    path = checkout.deploy("webhookconfigurations", "webhookconfigurations.yaml")
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def webhook_names() -> list[str]:
    return [hook["name"] for config in configurations() for hook in config["webhooks"]]


def local_configurations(url: str, ca_pem: bytes) -> list[dict[str, Any]]:
    rewritten = []
    for config in configurations():
        config = copy.deepcopy(config)
        for hook in config["webhooks"]:
            path = hook["clientConfig"]["service"].get("path", "/")
            hook["clientConfig"] = {"url": f"{url}{path}", "caBundle": base64.b64encode(ca_pem).decode()}
        rewritten.append(config)
    return rewritten


def register(plane: ControlPlane, url: str, ca_pem: bytes) -> None:
    plane.apply(local_configurations(url, ca_pem))


def deregister(plane: ControlPlane) -> None:
    for config in configurations():
        plane.kubectl("delete", config["kind"].lower(), config["metadata"]["name"], "--ignore-not-found")


@dataclass
class LocalWebhook:
    """``wukong-webhook serve`` for a devcluster, with certificates made by the certs library."""

    plane: ControlPlane
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    certs_dir: Path = field(init=False)

    def __post_init__(self) -> None:
        self.certs_dir = self.plane.workdir / "webhook-certs"

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_pem(self) -> bytes:
        return (self.certs_dir / files.CA_CERT).read_bytes()

    def start(self) -> LocalWebhook:
        if not (self.certs_dir / files.TLS_CERT).exists():
            day = datetime.timedelta(days=1)
            ca = pki.new_ca("devcluster-webhook-ca", day)
            serving = pki.issue(ca, "wukong-webhook", day, dns_names=["localhost"], ips=["127.0.0.1"])
            files.write_pair(ca, self.certs_dir / files.CA_CERT, self.certs_dir / files.CA_KEY)
            files.write_pair(serving, self.certs_dir / files.TLS_CERT, self.certs_dir / files.TLS_KEY)
        self.port = self.port or free_port()
        log = open(self.plane.workdir / "webhook.log", "ab")  # noqa: SIM115 - lives as long as the process
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "wukong-webhook"),
                "serve",
                "--bind-address",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--tls-cert-file",
                str(self.certs_dir / files.TLS_CERT),
                "--tls-private-key-file",
                str(self.certs_dir / files.TLS_KEY),
                "--kubeconfig",
                str(self.plane.kubeconfig),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        context = ssl.create_default_context(cafile=str(self.certs_dir / files.CA_CERT))
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/readyz", context=context, timeout=2) as reply:
                    if reply.status == 200:
                        return
            except OSError:
                pass
            assert self.process is not None
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"wukong-webhook did not become ready:\n{self.plane.log_tail('webhook')}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None:
            terminate(self.process, timeout=20)
        self.process = None

    def register(self) -> None:
        register(self.plane, self.url, self.ca_pem)
