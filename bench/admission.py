"""Admission latency: the decision alone, and the same requests over the real TLS server.

    .venv/bin/python bench/admission.py [--requests 2000]

Baseline (same run): the pure decision (mutate + validate of the multi-disk sample) called in-process.
Then `wukong-webhook serve` (gunicorn, TLS) is asked the same thing over one kept-alive connection, as
the API server does, and with a new TLS connection per request, to show what keep-alive saves.
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


def per_request(seconds: float, count: int) -> str:
    return f"{seconds / count * 1e6:8.0f} us/request"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    n = args.requests
    facts = ClusterFacts.of([StorageClass.from_manifest(o) for o in yaml.safe_load_all(CLASSES.read_text())])
    bodies = [json.dumps(review(i)).encode() for i in range(n)]

    started = time.perf_counter()
    for body in bodies:
        request = parse_request(json.loads(body))
        decide(request, Endpoint.MUTATE, facts)
    base = time.perf_counter() - started

    with tempfile.TemporaryDirectory() as scratch:
        certs = Path(scratch)
        subprocess.run(
            [
                BIN / "wukong-certs",
                "generate",
                "--service",
                "bench",
                "--namespace",
                "bench",
                "--out-dir",
                certs,
                "--ip",
                "127.0.0.1",
            ],
            check=True,
            capture_output=True,
        )
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        server = subprocess.Popen(
            [
                BIN / "wukong-webhook",
                "serve",
                "--bind-address",
                "127.0.0.1",
                "--port",
                str(port),
                "--tls-cert-file",
                certs / "tls.crt",
                "--tls-private-key-file",
                certs / "tls.key",
                "--storage-classes",
                CLASSES,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        context = ssl.create_default_context(cafile=str(certs / "ca.crt"))
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    probe_connection = http.client.HTTPSConnection("127.0.0.1", port, context=context)
                    probe_connection.request("GET", "/readyz")
                    if probe_connection.getresponse().status == 200:
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            print(f"bench: {n} requests each way", flush=True)
            connection = http.client.HTTPSConnection("127.0.0.1", port, context=context)
            started = time.perf_counter()
            for body in bodies:
                connection.request("POST", "/mutate", body=body, headers={"Content-Type": "application/json"})
                assert connection.getresponse().read()
            kept = time.perf_counter() - started
            started = time.perf_counter()
            for body in bodies[: n // 4]:
                fresh = http.client.HTTPSConnection("127.0.0.1", port, context=context)
                fresh.request("POST", "/mutate", body=body, headers={"Content-Type": "application/json"})
                assert fresh.getresponse().read()
                fresh.close()
            new_each = (time.perf_counter() - started) * 4
        finally:
            server.terminate()
            server.wait()
    print()
    print(f"decision only (baseline)        {per_request(base, n)}")
    print(f"HTTPS, kept-alive connection    {per_request(kept, n)}  = {kept / base:.1f}x baseline")
    print(
        f"HTTPS, new connection each      {per_request(new_each, n)}  = {new_each / base:.1f}x baseline "
        f"({new_each / kept:.1f}x kept-alive)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
