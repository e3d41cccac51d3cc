"""A real Kubernetes control plane on loopback: etcd and kube-apiserver with throwaway PKI.

Started the way controller-runtime's envtest starts one: etcd on free loopback ports with fsync off,
kube-apiserver with RBAC, its own serving CA, a client CA whose ``admin`` certificate (group
system:masters) goes into a kubeconfig, and a service-account signing key; kube-controller-manager gets a
certificate of its own, ``system:kube-controller-manager``, the user it acts as without service-account
credentials (deploy/rbac/volume-guard.yaml exempts it, never the admin). Ready once /readyz answers
and the ``default`` namespace exists; then the Wukong CRD, the upstream KubeVirt/CDI CRDs and the
StorageClasses are installed. ``stop()`` ends both processes and removes every file it made; the
processes also die with the process that started them, so a killed test run leaves nothing behind.
"""

from __future__ import annotations

import ctypes
import datetime
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from certs import files, pki
from devcluster import checkout, crds, toolchain
from kubeclient.credentials import load_api_client
from kubeclient.rest import Kube
from wukong import api, schema

START_TIMEOUT_SECONDS = 60.0
CONTROLLER_MANAGER_USER = "system:kube-controller-manager"  # exempt from the guard on volume deletion, as in deploy/
CONTROLLERS = (
    "clusterrole-aggregation-controller",
    "garbage-collector-controller",
    "namespace-controller",
    "persistentvolumeclaim-protection-controller",
    "persistentvolume-protection-controller",
)
Log = Callable[[str], None]


def die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it when the process that started it goes away."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def terminate(process: subprocess.Popen[bytes], timeout: float) -> int:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout``; returns the exit code."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class ControlPlane:
    workdir: Path
    bin_dir: Path
    api_port: int = 0
    _etcd_url: str = ""
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    log: Log = print

    # -- paths ------------------------------------------------------------------------------------------
    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "admin.kubeconfig"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.api_port}"

    @property
    def pki_dir(self) -> Path:
        return self.workdir / "pki"

    def binary(self, name: str) -> Path:
        return self.bin_dir / name

    # -- lifecycle --------------------------------------------------------------------------------------
    @classmethod
    def start(cls, log: Log = print, workdir: Path | None = None, base: bool = True) -> ControlPlane:
        """``base``: install the CRDs, the users' roles and the StorageClasses (False: an empty cluster, for an
        installer -- Helm -- that brings its own)."""
        bin_dir = toolchain.ensure_built(log)
        workdir = workdir or Path(tempfile.mkdtemp(prefix="wukong-devcluster-"))
        plane = cls(workdir=workdir, bin_dir=bin_dir, log=log)
        try:
            plane._start(base)
        except BaseException:
            plane.stop()
            raise
        return plane

    def _start(self, base: bool = True) -> None:
        started = time.monotonic()
        self._make_pki()
        etcd_url = self.start_etcd()
        self._start_apiserver(etcd_url)
        self._write_kubeconfig()
        self._wait_ready()
        self._start_controller_manager()
        self.log(
            f"devcluster: kube-apiserver {toolchain.kubernetes_version()} ready at {self.server} "
            f"after {time.monotonic() - started:.1f}s"
        )
        if not base:
            return
        self.install_base()
        self.log(f"devcluster: CRDs, user roles and StorageClasses installed, {time.monotonic() - started:.1f}s in all")

    def stop(self) -> None:
        for name in ("kube-controller-manager", "kube-apiserver", "etcd"):
            process = self.processes.pop(name, None)
            if process is not None:
                terminate(process, timeout=15)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> ControlPlane:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- pieces -----------------------------------------------------------------------------------------
    def _make_pki(self) -> None:
        day = datetime.timedelta(days=1)
        serving_ca = pki.new_ca("devcluster-serving-ca", day)
        serving = pki.issue(
            serving_ca, "kube-apiserver", day, dns_names=["localhost", "kubernetes.default.svc"], ips=["127.0.0.1"]
        )
        client_ca = pki.new_ca("devcluster-client-ca", day)
        admin = pki.issue(client_ca, "admin", day, usages=[pki.Usage.CLIENT], organizations=["system:masters"])
        # kube-controller-manager's own user, the name it has on kubeadm clusters: with
        # --use-service-account-credentials=false its garbage collector and namespace controller act as it.
        controllers = pki.issue(
            client_ca, CONTROLLER_MANAGER_USER, day, usages=[pki.Usage.CLIENT], organizations=["system:masters"]
        )
        signer = pki.new_ca("devcluster-service-accounts", day)  # only its key is used, to sign tokens
        d = self.pki_dir
        files.write_pair(serving_ca, d / "serving-ca.crt", d / "serving-ca.key")
        files.write_pair(serving, d / "apiserver.crt", d / "apiserver.key")
        files.write_pair(client_ca, d / "client-ca.crt", d / "client-ca.key")
        files.write_pair(admin, d / "admin.crt", d / "admin.key")
        files.write_pair(controllers, d / "controller-manager.crt", d / "controller-manager.key")
        files.write_pair(signer, d / "sa.crt", d / "sa.key")

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log_file = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 - lives as long as the process
        process = subprocess.Popen(
            [str(self.binary(name)), *args],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )
        self.processes[name] = process
        return process

    def start_etcd(self) -> str:
        client, peer = free_port(), free_port()
        url = f"http://127.0.0.1:{client}"
        self._spawn(
            "etcd",
            [
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls={url}",
                f"--advertise-client-urls={url}",
                f"--listen-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-cluster=default=http://127.0.0.1:{peer}",
                "--unsafe-no-fsync=true",
                "--log-level=warn",
            ],
        )
        self._wait("etcd", lambda: _http_ok(f"{url}/health"))
        return url

    def restart_apiserver(self) -> float:
        """Stop kube-apiserver and start it again on the same port and etcd (an upgrade, a crash, a node
        reboot); every client must find its way back by itself. Returns the seconds it was away."""
        started = time.monotonic()
        terminate(self.processes.pop("kube-apiserver"), timeout=15)
        self._start_apiserver(self._etcd_url)
        self._wait_ready()
        return time.monotonic() - started

    def _start_apiserver(self, etcd_url: str) -> None:
        self._etcd_url = etcd_url
        self.api_port = self.api_port or free_port()
        d = self.pki_dir
        self._spawn(
            "kube-apiserver",
            [
                f"--etcd-servers={etcd_url}",
                f"--secure-port={self.api_port}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--tls-cert-file={d / 'apiserver.crt'}",
                f"--tls-private-key-file={d / 'apiserver.key'}",
                f"--client-ca-file={d / 'client-ca.crt'}",
                "--authorization-mode=RBAC",
                f"--service-account-issuer={self.server}",
                f"--service-account-key-file={d / 'sa.crt'}",
                f"--service-account-signing-key-file={d / 'sa.key'}",
                "--service-cluster-ip-range=10.0.0.0/24",
                "--allow-privileged=true",
                "--disable-admission-plugins=ServiceAccount",
                f"--cert-dir={self.workdir / 'cert-dir'}",
                "--endpoint-reconciler-type=none",
                "--profiling=false",
                "--v=0",
            ],
        )

    def _start_controller_manager(self) -> None:
        """The real garbage collector, namespace controller and PVC/PV protection, so deletion cascades -- and
        completes -- as on a real cluster (the API server gives every claim the pvc-protection finalizer); and the
        ClusterRole aggregation, so the built-in view/edit/admin carry the Wukong rights of deploy/rbac/users.yaml.

        Only those: what else a cluster runs for storage and VMs (binding, provisioning, KubeVirt, CDI) is
        played by the simulation, and the other built-in controllers have nothing to act on here."""
        self._spawn(
            "kube-controller-manager",
            [
                f"--kubeconfig={self.workdir / 'controller-manager.kubeconfig'}",
                "--controllers=" + ",".join(CONTROLLERS),
                "--leader-elect=false",
                "--use-service-account-credentials=false",
                "--secure-port=0",
                "--concurrent-gc-syncs=5",
                "--v=0",
            ],
        )

    def _write_kubeconfig(self) -> None:
        self._write_user_kubeconfig(self.kubeconfig, "admin")
        self._write_user_kubeconfig(self.workdir / "controller-manager.kubeconfig", "controller-manager")

    def _write_user_kubeconfig(self, path: Path, user: str) -> None:
        d = self.pki_dir
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "devcluster",
            "clusters": [
                {
                    "name": "devcluster",
                    "cluster": {"server": self.server, "certificate-authority": str(d / "serving-ca.crt")},
                }
            ],
            "users": [
                {
                    "name": user,
                    "user": {"client-certificate": str(d / f"{user}.crt"), "client-key": str(d / f"{user}.key")},
                }
            ],
            "contexts": [{"name": "devcluster", "context": {"cluster": "devcluster", "user": user}}],
        }
        files.write_file(path, yaml.safe_dump(config).encode(), 0o600)

    def _wait_ready(self) -> None:
        self._wait("kube-apiserver", lambda: self.get("/readyz") is not None)
        self._wait("the default namespace", lambda: self.get("/api/v1/namespaces/default") is not None)

    def _wait(self, what: str, ready: Callable[[], bool]) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not ready():
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(
                        f"{name} exited with {process.returncode} while waiting for {what}:\n{self.log_tail(name)}"
                    )
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out after {START_TIMEOUT_SECONDS:.0f}s waiting for {what}")
            time.sleep(0.05)

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.workdir / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    # -- talking to it ----------------------------------------------------------------------------------
    def _ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.pki_dir / "serving-ca.crt"))
        context.load_cert_chain(str(self.pki_dir / "admin.crt"), str(self.pki_dir / "admin.key"))
        return context

    def get(self, path: str) -> bytes | None:
        """GET a path as admin; None for any failure (used while waiting, and for /metrics)."""
        try:
            with urllib.request.urlopen(self.server + path, context=self._ssl_context(), timeout=5) as reply:
                return reply.read()
        except (urllib.error.URLError, OSError):
            return None

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.binary("kubectl")), f"--kubeconfig={self.kubeconfig}", *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result

    def apply(self, objects: Iterable[dict[str, Any]]) -> None:
        """Server-side apply: no last-applied annotation, which the large upstream CRDs would overflow."""
        self.kubectl(
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=devcluster",
            "-f",
            "-",
            stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}),
        )

    def install_base(self) -> None:
        """The CRDs, the users' ClusterRoles and the StorageClasses. The roles go with the CRD rather than with
        the reconciler's RBAC: a namespace editor may use Wukongs whether or not a reconciler runs."""
        policies = yaml.safe_load(checkout.deploy("crd", f"{api.POLICY_CRD_NAME}.yaml").read_text())
        custom = [schema.crd(), policies, *(crds.crd(kind) for kind in crds.UPSTREAM_KINDS), *crds.snapshot_crds()]
        roles = list(yaml.safe_load_all(checkout.deploy("rbac", "users.yaml").read_text()))
        storage = list(yaml.safe_load_all(checkout.deploy("storageclasses", "devcluster.yaml").read_text()))
        self.apply([*custom, *roles, *storage])
        names = [f"crd/{c['metadata']['name']}" for c in custom]
        self.kubectl("wait", "--for=condition=Established", "--timeout=60s", *names)
        snapshot_classes = checkout.deploy("storageclasses", "devcluster-snapshotclasses.yaml").read_text()
        self.apply(list(yaml.safe_load_all(snapshot_classes)))  # once their CRD is established

    def client(self, field_manager: str = "devcluster") -> Kube:
        """An admin client (system:masters) through the project's own client layer."""
        return Kube(load_api_client(str(self.kubeconfig)), field_manager=field_manager)

    def service_account_kubeconfig(self, namespace: str, name: str, server: str | None = None) -> Path:
        """A kubeconfig holding a token of that ServiceAccount (TokenRequest API): a process run with it has
        exactly the rights RBAC gives the account, as it would in its Pod. ``server``: another address for the
        API server (a proxy in front of it)."""
        token = self.kubectl("create", "token", name, "-n", namespace, "--duration=24h").stdout.strip()
        path = self.workdir / f"{namespace}.{name}{'.proxied' if server else ''}.kubeconfig"
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": name,
            "clusters": [
                {
                    "name": "devcluster",
                    "cluster": {
                        "server": server or self.server,
                        "certificate-authority": str(self.pki_dir / "serving-ca.crt"),
                    },
                }
            ],
            "users": [{"name": name, "user": {"token": token}}],
            "contexts": [{"name": name, "context": {"cluster": "devcluster", "user": name, "namespace": namespace}}],
        }
        files.write_file(path, yaml.safe_dump(config).encode(), 0o600)
        return path

    def environment(self) -> dict[str, str]:
        """KUBECONFIG, and PATH with the pinned binaries and this checkout's console scripts (``kubectl wukong``
        finds its plugin, kubectl-wukong, there)."""
        scripts = Path(sys.executable).parent
        return {
            "KUBECONFIG": str(self.kubeconfig),
            "PATH": os.pathsep.join([str(self.bin_dir), str(scripts), os.environ["PATH"]]),
        }


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return reply.status == 200
    except (urllib.error.URLError, OSError):
        return False
