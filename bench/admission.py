"""Admission speed: ``wukong-webhook serve`` against a bare endpoint served the same way, in one run.

    .venv/bin/python bench/admission.py [--seconds 5] [--rate 300]

The baseline is ``bench/bare_server.py``: the same gunicorn worker, TLS and request threads, an endpoint that
decodes the AdmissionReview and allows it. Each endpoint is driven by vegeta (bench/loadgen.py) over kept-alive
TLS connections, as the API server calls webhooks: closed loop with 4 workers for the saturated throughput, then
open loop at a fixed rate for latency. Printed: req/s and its ratio to the bare endpoint, p50/p99 at the fixed
rate and what the decision adds to the bare endpoint's.
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import loadgen
import yaml

from webhook.admission import Endpoint, decide, parse_request
from webhook.facts import ClusterFacts
from wukong.storageclass import StorageClass

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CLASSES = ROOT / "deploy" / "storageclasses" / "devcluster.yaml"


def review(uid: int) -> dict:
    obj = yaml.safe_load((ROOT / "deploy" / "samples" / "system-and-data.yaml").read_text())
    obj["metadata"]["namespace"] = "default"
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uid),
            "operation": "CREATE",
            "object": obj,
            "kind": {"group": "vm.novasphere.dev", "version": "v1alpha1", "kind": "Wukong"},
        },
    }


def review_of(operation: str, new: dict, old: dict | None = None) -> dict:
    request = {
        "uid": "bench",
        "operation": operation,
        "object": new,
        "kind": {"group": "vm.novasphere.dev", "version": "v1alpha1", "kind": "Wukong"},
    }
    if old is not None:
        request["oldObject"] = old
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


def wait_ready(port: int, context: ssl.SSLContext, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            probe = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=2)
            probe.request("GET", "/readyz")
            if probe.getresponse().status == 200:
                probe.close()
                return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="in-process decisions for the baseline")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each load run")
    parser.add_argument("--rate", type=int, default=300, help="the open-loop rate, requests per second")
    parser.add_argument("--threads", type=int, default=8, help="request threads of both servers")
    args = parser.parse_args()
    n = args.requests
    facts = ClusterFacts.of([StorageClass.from_manifest(o) for o in yaml.safe_load_all(CLASSES.read_text())])
    bodies = [json.dumps(review(i)).encode() for i in range(n)]

    started = time.perf_counter()
    for body in bodies:
        decide(parse_request(json.loads(body)), Endpoint.MUTATE, facts)
    decision = (time.perf_counter() - started) / n

    sample = review(0)["request"]["object"]
    defaulted = decide(parse_request(review(0)), Endpoint.MUTATE, facts).object
    grown = json.loads(json.dumps(defaulted))
    grown["spec"]["disks"][1]["size"] = "600Gi"
    loadgen.vegeta()
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        subprocess.run(
            [
                BIN / "wukong-certs",
                "generate",
                "--service",
                "bench",
                "--namespace",
                "bench",
                "--out-dir",
                work,
                "--ip",
                "127.0.0.1",
            ],
            check=True,
            capture_output=True,
        )
        ca, cert, key = work / "ca.crt", work / "tls.crt", work / "tls.key"
        cases = {
            "bare endpoint (baseline)": ("bare", review_of("CREATE", sample)),
            "/mutate CREATE": ("mutate", review_of("CREATE", sample)),
            "/mutate UPDATE": ("mutate", review_of("UPDATE", grown, defaulted)),
            "/validate CREATE": ("validate", review_of("CREATE", defaulted)),
            "/validate UPDATE": ("validate", review_of("UPDATE", grown, defaulted)),
        }
        for index, (_, body) in enumerate(cases.values()):
            (work / f"{index}.json").write_text(json.dumps(body))
        webhook_port, bare_port = free_port(), free_port()
        servers = [
            subprocess.Popen(
                [
                    BIN / "wukong-webhook",
                    "serve",
                    "--bind-address",
                    "127.0.0.1",
                    "--port",
                    str(webhook_port),
                    "--tls-cert-file",
                    cert,
                    "--tls-private-key-file",
                    key,
                    "--storage-classes",
                    CLASSES,
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            ),
            subprocess.Popen(
                [sys.executable, ROOT / "bench" / "bare_server.py", str(bare_port), cert, key, str(args.threads)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            ),
        ]
        context = ssl.create_default_context(cafile=str(ca))
        rows = []
        try:
            wait_ready(webhook_port, context, servers[0])
            wait_ready(bare_port, context, servers[1])
            for index, (name, (path, _)) in enumerate(cases.items()):
                port = bare_port if path == "bare" else webhook_port
                url = f"https://127.0.0.1:{port}/{path}"
                print(
                    f"bench: {name}: {args.seconds:g}s saturated, then {args.seconds:g}s at {args.rate}/s", flush=True
                )
                saturated = loadgen.attack(url, work / f"{index}.json", ca, args.seconds)
                paced = loadgen.attack(url, work / f"{index}.json", ca, args.seconds, rate=args.rate)
                rows.append((name, saturated, paced))
        finally:
            for server in servers:
                server.terminate()
                server.wait()

    print()
    print(f"decision only, in process (mutate of the two-disk sample): {decision * 1e6:.0f} us")
    print()
    base_saturated, base_paced = rows[0][1], rows[0][2]
    header = f"{'':28} {'saturated req/s':>16} {'ratio':>6}   {'at ' + str(args.rate) + '/s p50':>12} {'p99':>8}"
    print(header + f" {'p50 added':>10} {'p99 ratio':>10} {'ok':>6}")
    for name, saturated, paced in rows:
        print(
            f"{name:28} {saturated.throughput:16.0f} {saturated.throughput / base_saturated.throughput:6.2f}   "
            f"{paced.p50_ms:9.2f} ms {paced.p99_ms:5.2f} ms {paced.p50_ms - base_paced.p50_ms:7.2f} ms "
            f"{paced.p99_ms / base_paced.p99_ms:10.2f} {min(saturated.success, paced.success):6.1%}"
        )
    print()
    print("targets: saturated ratio >= 0.70; at the fixed rate, p50 added <= 0.3 ms and p99 ratio <= 2")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
