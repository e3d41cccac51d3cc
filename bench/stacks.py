"""Which server to serve admission with: every stack of bench/serving.py serving the bare endpoint and ours, in one run.

    .venv/bin/python bench/stacks.py [--seconds 5] [--rounds 2] [--stacks gthread,product,...]

For each stack, in turn and once per round: the bare endpoint and ``/mutate`` of the two-disk CREATE, each
saturated by vegeta for SECONDS (4 workers, kept-alive TLS, as bench/admission.py drives them); then ours again
under attack: 200 idle TCP connections, 200 that trickle their headers and 200 that trickle a body
(tests/hostile.py, what tests/e2e/faults/test_slow_clients.py holds the product to), and 20 ``/healthz`` on fresh
connections, each to be answered within 1 s. Printed per stack, the medians of the rounds: req/s of both, ours /
bare on the same stack, ours / the bare endpoint on gunicorn gthread (the floor: the least a Python server does per
request), and whether the slow and idle clients stopped admission.
"""

from __future__ import annotations

import argparse
import http.client
import json
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import loadgen
from admission import free_port, review, review_of, wait_ready
from serving import STACKS

from tests.hostile import HostileClients

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
HEALTH_TRIES = 20
# What each stack does with a certificate replaced on disk (granian's rustls is given the files once per worker).
CERT_RELOAD = {stack: "next handshake" for stack in STACKS} | {
    "granian-asgi": "worker restart",
    "granian-wsgi": "worker restart",
}


def health_under_attack(port: int, context: ssl.SSLContext) -> tuple[int, float, str]:
    """Answers to /healthz (of HEALTH_TRIES) within 1 s each, the slowest, and how the attack went, while 600
    clients hold on (or as many as the server let connect)."""
    answered, worst = 0, 0.0
    hostile = HostileClients("127.0.0.1", port, context)
    try:
        hostile.open(idle=200, slow_headers=200, slow_bodies=200)
        note = ""
    except OSError as error:  # the server stopped completing handshakes: it is held
        note = f"; held after {len(hostile.idle) + len(hostile.slow)} clients ({type(error).__name__})"
    try:
        deadline = time.monotonic() + 10  # the body deadline is 2 s; a stack without one never cuts them
        while not note and hostile.dropped < 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        for _ in range(HEALTH_TRIES):
            started = time.perf_counter()
            try:
                connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=1)
                connection.request("GET", "/healthz")
                reply = connection.getresponse()
                reply.read()
                connection.close()
                answered += reply.status == 200
            except (OSError, http.client.HTTPException):
                pass
            worst = max(worst, time.perf_counter() - started)
    finally:
        hostile.close()
    return answered, worst, note


def start(stack: str, app: str, port: int, cert: Path, key: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, ROOT / "bench" / "serving.py", stack, app, str(port), str(cert), key],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--stacks", default=",".join(STACKS))
    parser.add_argument("--no-attack", action="store_true", help="skip the slow and idle clients")
    args = parser.parse_args()
    stacks = args.stacks.split(",")
    loadgen.vegeta()
    bare_rate: dict[str, list[float]] = defaultdict(list)
    ours_rate: dict[str, list[float]] = defaultdict(list)
    floor: list[float] = []
    attack: dict[str, tuple[int, float, str]] = {}
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
        context = ssl.create_default_context(cafile=str(ca))
        sample = review(0)["request"]["object"]
        (work / "create.json").write_text(json.dumps(review_of("CREATE", sample)))
        for round_ in range(args.rounds):
            for stack in stacks:
                ports = {"bare": free_port(), "ours": free_port()}
                servers = {app: start(stack, app, port, cert, str(key)) for app, port in ports.items()}
                try:
                    for app, port in ports.items():
                        wait_ready(port, context, servers[app])
                    print(f"bench: round {round_ + 1}, {stack}: bare, then ours, {args.seconds:g}s each", flush=True)
                    for app, path in (("bare", "bare"), ("ours", "mutate")):
                        url = f"https://127.0.0.1:{ports[app]}/{path}"
                        result = loadgen.attack(url, work / "create.json", ca, args.seconds)
                        (bare_rate if app == "bare" else ours_rate)[stack].append(result.throughput)
                        if stack == "gthread" and app == "bare":
                            floor.append(result.throughput)
                    if not args.no_attack and round_ == 0:
                        attack[stack] = health_under_attack(ports["ours"], context)
                finally:
                    for server in servers.values():
                        server.terminate()
                        server.wait()

    gthread = statistics.median(floor) if floor else float("nan")
    print()
    print(f"medians of {args.rounds} rounds; {args.seconds:g}s saturated each, 4 vegeta workers; floor: the bare")
    print(f"endpoint on gunicorn gthread 1x8, {gthread:.0f} req/s")
    print(
        f"{'stack':22} {'bare req/s':>10} {'ours req/s':>10} {'ours/bare':>9} {'ours/floor':>10} "
        f"{'/healthz under 600 slow clients':>32}  certificate replaced"
    )
    for stack in stacks:
        b, o = statistics.median(bare_rate[stack]), statistics.median(ours_rate[stack])
        if stack in attack:
            answered, worst, note = attack[stack]
            held = f"{answered}/{HEALTH_TRIES} answered, max {worst * 1000:.0f} ms{note}"
        else:
            held = "not run"
        print(f"{stack:22} {b:10.0f} {o:10.0f} {o / b:9.2f} {o / gthread:10.2f} {held:>32}  {CERT_RELOAD[stack]}")
    print()
    print("target: ours/floor >= 0.70 with every /healthz answered within 1 s under the slow and idle clients")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
