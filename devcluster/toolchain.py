"""Building kube-apiserver, kube-controller-manager, kubectl, etcd, helm, promtool and kstatus from the pinned Go
modules in devcluster/go/.

The versions live in the scratch modules' go.mod files and nowhere else. Binaries are built once per
machine into a cache outside the checkout and reused; each is built to a temporary name and renamed
into place only when the build succeeded, so an interrupted build never leaves a binary that looks usable.
"""

from __future__ import annotations

import fcntl
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

GO_DIR = Path(__file__).resolve().parent / "go"
K8S_MODULE = GO_DIR / "k8s"
ETCD_MODULE = GO_DIR / "etcd"
HELM_MODULE = GO_DIR / "helm"
PROMETHEUS_MODULE = GO_DIR / "prometheus"
KSTATUS_MODULE = GO_DIR / "kstatus"
PROGRESS_EVERY_SECONDS = 10.0


@dataclass(frozen=True)
class Binary:
    name: str
    package: str
    module_dir: Path
    version_ldflags: bool
    tags: str = ""


BINARIES = (
    Binary("etcd", "go.etcd.io/etcd/server/v3", ETCD_MODULE, version_ldflags=False),
    Binary("kube-apiserver", "k8s.io/kubernetes/cmd/kube-apiserver", K8S_MODULE, version_ldflags=True),
    Binary("kube-controller-manager", "k8s.io/kubernetes/cmd/kube-controller-manager", K8S_MODULE, True),
    Binary("kubectl", "k8s.io/kubernetes/cmd/kubectl", K8S_MODULE, version_ldflags=True),
    Binary("helm", "helm.sh/helm/v3/cmd/helm", HELM_MODULE, version_ldflags=False),  # lints and renders the chart
    # tests the alerting rules (`promtool test rules`); without the service discoveries, which it does not use and
    # which are most of Prometheus' dependencies
    Binary("promtool", "github.com/prometheus/prometheus/cmd/promtool", PROMETHEUS_MODULE, False, "remove_all_sd"),
    # kstatus' verdict on objects read from stdin (what Flux waits on), for the GitOps tests
    Binary("kstatus", "novasphere.dev/wukong/devcluster/kstatus", KSTATUS_MODULE, version_ldflags=False),
)


def pinned_version(module_dir: Path, module: str) -> str:
    text = (module_dir / "go.mod").read_text()
    match = re.search(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)", text, re.MULTILINE)
    if not match:
        raise RuntimeError(f"{module_dir}/go.mod does not require {module}")
    return match.group(1)


def kubernetes_version() -> str:
    return pinned_version(K8S_MODULE, "k8s.io/kubernetes")


def etcd_version() -> str:
    return pinned_version(ETCD_MODULE, "go.etcd.io/etcd/server/v3")


def cache_dir() -> Path:
    if override := os.environ.get("WUKONG_CACHE_DIR"):
        return Path(override)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "wukong"


def bin_dir() -> Path:
    return cache_dir() / f"k8s-{kubernetes_version()}-etcd-{etcd_version()}" / "bin"


def binary_path(name: str) -> Path:
    return bin_dir() / name


def missing() -> list[Binary]:
    return [b for b in BINARIES if not binary_path(b.name).is_file()]


def ensure_built(log=print) -> Path:
    """Build whatever is missing (under a lock, so concurrent callers build once) and return the bin dir."""
    if not missing():
        return bin_dir()
    bin_dir().mkdir(parents=True, exist_ok=True)
    with open(bin_dir().parent / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        todo = missing()
        if todo:
            log(
                f"devcluster: building {', '.join(b.name for b in todo)} for Kubernetes {kubernetes_version()} "
                f"and etcd {etcd_version()} into {bin_dir()}"
            )
            log("devcluster: the first build takes about 5 minutes on 2 cores; later runs reuse it")
        for binary in todo:
            _build(binary, log)
    return bin_dir()


def _ldflags(binary: Binary) -> str:
    """Upstream's version stamps (hack/lib/version.sh), so /version reports the real release."""
    flags = ["-s", "-w"]
    if binary.version_ldflags:
        version = kubernetes_version()
        major, minor = version.lstrip("v").split(".")[:2]
        for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
            flags += [
                f"-X {package}.gitVersion={version}",
                f"-X {package}.gitMajor={major}",
                f"-X {package}.gitMinor={minor}",
                f"-X {package}.gitTreeState=clean",
            ]
    return " ".join(flags)


def _build(binary: Binary, log) -> None:
    target = binary_path(binary.name)
    partial = target.with_name(f".{binary.name}.partial-{os.getpid()}")
    flags = f"{os.environ.get('GOFLAGS', '')} -mod=readonly".strip()
    env = {**os.environ, "CGO_ENABLED": "0", "GOWORK": "off", "GOFLAGS": flags}
    tags = ["-tags", binary.tags] if binary.tags else []
    command = [
        "go",
        "build",
        "-v",
        "-trimpath",
        *tags,
        "-ldflags",
        _ldflags(binary),
        "-o",
        str(partial),
        binary.package,
    ]
    started = last_report = time.monotonic()
    compiled = 0
    log(f"devcluster: go build {binary.package}")
    process = subprocess.Popen(
        command, cwd=binary.module_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    output: list[str] = []
    assert process.stdout is not None
    for line in process.stdout:
        output.append(line)
        if not line.startswith(("#", " ", "go:")):
            compiled += 1
        if time.monotonic() - last_report >= PROGRESS_EVERY_SECONDS:
            last_report = time.monotonic()
            log(f"devcluster:   {binary.name}: {compiled} packages compiled, {last_report - started:.0f}s")
    if process.wait() != 0:
        partial.unlink(missing_ok=True)
        tail = "".join(output[-30:])
        raise RuntimeError(f"building {binary.name} failed (go build exit {process.returncode}):\n{tail}")
    os.replace(partial, target)
    log(f"devcluster:   {binary.name} built in {time.monotonic() - started:.0f}s")


def main() -> int:
    try:
        path = ensure_built(lambda line: print(line, flush=True))
    except (RuntimeError, OSError) as error:
        print(f"devcluster: {error}", file=sys.stderr)
        return 1
    print(f"devcluster: binaries ready in {path}")
    return 0
