"""Load generation with vegeta (github.com/tsenart/vegeta), built once per machine from the Go module proxy.

Closed loop: ``rate=0`` with a fixed number of workers, each sending its next request when the answer came
(saturated throughput). Open loop: a fixed rate, whatever the answers do (latency at a known load).
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from devcluster import toolchain

VEGETA = "github.com/tsenart/vegeta/v12"
VEGETA_VERSION = "v12.13.0"


def vegeta() -> Path:
    binary = toolchain.cache_dir() / f"vegeta-{VEGETA_VERSION}" / "vegeta"
    if not binary.exists():
        print(f"bench: building vegeta {VEGETA_VERSION} with the Go toolchain (once per machine, ~1 min)", flush=True)
        env = {**os.environ, "GOBIN": str(binary.parent), "GOFLAGS": "", "CGO_ENABLED": "0"}
        subprocess.run(["go", "install", f"{VEGETA}@{VEGETA_VERSION}"], check=True, env=env)
    return binary


@dataclass(frozen=True)
class Result:
    throughput: float  # successful requests per second
    p50_ms: float
    p99_ms: float
    success: float  # ratio

    @classmethod
    def of(cls, report: dict) -> Result:
        latencies = report["latencies"]
        return cls(report["throughput"], latencies["50th"] / 1e6, latencies["99th"] / 1e6, report["success"])


def attack(url: str, body: Path, ca: Path, seconds: float, rate: int = 0, workers: int = 4) -> Result:
    """POST ``body`` to ``url`` for ``seconds``: at ``rate`` per second, or as fast as ``workers`` can."""
    targets = f"POST {url}\nContent-Type: application/json\n@{body}\n"
    pacing = ["-rate=0", f"-workers={workers}", f"-max-workers={workers}"] if rate == 0 else [f"-rate={rate}/s"]
    attacked = subprocess.run(
        [str(vegeta()), "attack", f"-duration={seconds}s", f"-root-certs={ca}", "-keepalive=true", *pacing],
        input=targets.encode(),
        capture_output=True,
        check=True,
    )
    report = subprocess.run(
        [str(vegeta()), "report", "-type=json"], input=attacked.stdout, capture_output=True, check=True
    )
    return Result.of(json.loads(report.stdout))
