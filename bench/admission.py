"""Admission speed: ``wukong-webhook serve`` against the bare endpoint on two stacks, in one run.

    .venv/bin/python bench/admission.py [--seconds 5] [--rate 300] [--rounds 2]

Two floors, served by bench/serving.py: the bare endpoint (it decodes the AdmissionReview and allows it) on
gunicorn's ``gthread`` worker, 1 process x 8 threads, the WSGI application called straight from the thread that read
the request -- the least a Python server does per request, but a slow client holds one of its threads -- and the same
endpoint on the product's stack (``webhook.server``: an event loop for connections, TLS and reading, request
threads for whole requests). Each case is driven by vegeta (bench/loadgen.py) over kept-alive TLS connections, as
the API server calls webhooks: closed loop with 4 workers for the saturated throughput and its p50/p99, then open
loop at a fixed rate for latency. The cases run in turn, ROUNDS times; the product's server starts fresh and its
first case is ``/mutate`` CREATE, so the first round shows what the first seconds after a start cost.
Printed: the medians over the rounds; req/s against both floors; p50, p99 and p99/p50 saturated; p50/p99 at
the fixed rate and what the decision adds to the bare endpoint's on the same stack; then each round's figures.
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import ssl
import statistics
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


FLOOR, BARE = "bare, gunicorn gthread (floor)", "bare, product's stack"


def serve_bare(stack: str, port: int, cert: Path, key: Path, threads: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, ROOT / "bench" / "serving.py", stack, "bare", str(port), cert, key]
    return subprocess.Popen([*command, "--threads", str(threads)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="in-process decisions for the baseline")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each load run")
    parser.add_argument("--rate", type=int, default=300, help="the open-loop rate, requests per second")
    parser.add_argument("--threads", type=int, default=8, help="request threads of every server")
    parser.add_argument("--rounds", type=int, default=2, help="times every case runs, in turn")
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
                *(BIN / "wukong-certs", "generate", "--service", "bench", "--namespace", "bench"),
                *("--out-dir", work, "--ip", "127.0.0.1"),
            ],
            check=True,
            capture_output=True,
        )
        ca, cert, key = work / "ca.crt", work / "tls.crt", work / "tls.key"
        cases = {  # the product's server is measured first on its CREATE, the first seconds after its start
            "/mutate CREATE": ("ours", "mutate", review_of("CREATE", sample)),
            FLOOR: ("gthread", "bare", review_of("CREATE", sample)),
            BARE: ("product", "bare", review_of("CREATE", sample)),
            "/mutate UPDATE": ("ours", "mutate", review_of("UPDATE", grown, defaulted)),
            "/validate CREATE": ("ours", "validate", review_of("CREATE", defaulted)),
            "/validate UPDATE": ("ours", "validate", review_of("UPDATE", grown, defaulted)),
        }
        for index, (_, _, body) in enumerate(cases.values()):
            (work / f"{index}.json").write_text(json.dumps(body))
        ports = {"ours": free_port(), "gthread": free_port(), "product": free_port()}
        servers = {
            "ours": subprocess.Popen(
                [
                    *(BIN / "wukong-webhook", "serve", "--bind-address", "127.0.0.1", "--port", str(ports["ours"])),
                    *("--tls-cert-file", cert, "--tls-private-key-file", key, "--storage-classes", CLASSES),
                    *("--threads", str(args.threads)),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            ),
            "gthread": serve_bare("gthread", ports["gthread"], cert, key, args.threads),
            "product": serve_bare("product", ports["product"], cert, key, args.threads),
        }
        context = ssl.create_default_context(cafile=str(ca))
        rounds: list[dict[str, tuple[loadgen.Result, loadgen.Result]]] = []
        try:
            for name, server in servers.items():
                wait_ready(ports[name], context, server)
            for number in range(args.rounds):
                measured = {}
                for index, (name, (server, path, _)) in enumerate(cases.items()):
                    url = f"https://127.0.0.1:{ports[server]}/{path}"
                    print(
                        f"bench: round {number + 1}, {name}: {args.seconds:g}s saturated, "
                        f"then {args.seconds:g}s at {args.rate}/s",
                        flush=True,
                    )
                    saturated = loadgen.attack(url, work / f"{index}.json", ca, args.seconds)
                    paced = loadgen.attack(url, work / f"{index}.json", ca, args.seconds, rate=args.rate)
                    measured[name] = (saturated, paced)
                rounds.append(measured)
        finally:
            for server in servers.values():
                server.terminate()
                server.wait()

    print()
    print(f"decision only, in process (mutate of the two-disk sample): {decision * 1e6:.0f} us")
    print()
    report(rounds, args.rate)
    return 0


def report(rounds: list[dict[str, tuple[loadgen.Result, loadgen.Result]]], rate: int) -> None:
    def median(name: str, pick: str, paced: bool = False) -> float:
        return statistics.median(getattr(r[name][1 if paced else 0], pick) for r in rounds)

    floor, bare = median(FLOOR, "throughput"), median(BARE, "throughput")
    bare_paced_p50 = median(BARE, "p50_ms", paced=True)
    order = [FLOOR, BARE, *[name for name in rounds[0] if name not in (FLOOR, BARE)]]
    print(f"medians of {len(rounds)} rounds; saturated: 4 vegeta workers, kept-alive TLS")
    print(
        f"{'':32} {'req/s':>6} {'÷floor':>7} {'÷bare':>6} {'p50':>8} {'p99':>8} {'p99/p50':>7}   "
        f"{f'at {rate}/s p50':>13} {'p99':>8} {'p50 added':>9} {'ok':>6}"
    )
    for name in order:
        throughput = median(name, "throughput")
        p50, p99 = median(name, "p50_ms"), median(name, "p99_ms")
        paced_p50, paced_p99 = median(name, "p50_ms", True), median(name, "p99_ms", True)
        success = min(min(r[name][0].success, r[name][1].success) for r in rounds)
        print(
            f"{name:32} {throughput:6.0f} {throughput / floor:7.2f} {throughput / bare:6.2f} {p50:5.2f} ms "
            f"{p99:5.2f} ms {p99 / p50:7.1f}   {paced_p50:10.2f} ms {paced_p99:5.2f} ms "
            f"{paced_p50 - bare_paced_p50:6.2f} ms {success:6.1%}"
        )
    print()
    for number, measured in enumerate(rounds, 1):
        figures = ", ".join(
            f"{name} {measured[name][0].throughput / measured[FLOOR][0].throughput:.2f} of the floor, "
            f"p99/p50 {measured[name][0].p99_ms / measured[name][0].p50_ms:.1f}"
            for name in ("/mutate CREATE", "/mutate UPDATE")
        )
        print(f"round {number}: floor {measured[FLOOR][0].throughput:.0f} req/s; {figures}")
    print()
    print(
        "targets: /mutate >= 0.70 of the floor (bare on gthread), saturated; p99 <= 3 x p50 saturated, CREATE and "
        "UPDATE alike (round 1's CREATE is the server's first seconds)"
    )


if __name__ == "__main__":
    raise SystemExit(main())
