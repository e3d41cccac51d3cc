"""What a hostile body costs the webhook: the real server's answer, time and memory, and the decision in process.

    .venv/bin/python bench/hostile.py [--size BYTES] [--threads 8]

``wukong-webhook serve`` runs as it is deployed (gunicorn, TLS, 8 request threads). Each hostile shape of
``tests/bodies.py`` goes to ``/mutate`` at the largest body the server accepts: a million or more items where 16
disks go, maps of 200,000 keys (known, unknown, labels), short lists nested 28 deep, a string of megabytes in a
field and in an annotation, nesting as deep as the body allows. Then 16 disks and 64 tolerations each wrong in
several ways, the largest valid Wukong's update review, a body one byte over the limit, and the shape that makes the
most Python objects sent by as many clients as there are request threads, at once. Each row has a fresh server:
the peak RSS of its gunicorn worker (VmHWM) is set against the RSS of the same worker idle, just before. A last row
sends every body again, one after another, to one server. Then the same shapes through the offline checker's path
in process (``webhook.check``: mutation, then validation; it has no body limit), with their time and tracemalloc's
peak.

The stated bound, ``BOUND_MIB`` above the idle worker: one body of at most 3 MiB is decided at a time (the server's
body budget), json.loads makes at most 13 bytes of Python objects of each byte of a body of at most 50,000 JSON
objects and arrays (40 MiB), the body is held about four times on the way (12 MiB), and each other request thread
decides a body of at most 64 KiB (7 MiB); the rest is the allocator's. With the master and the idle worker beside
it, that fits the pod's 256 MiB limit (deploy/webhook/deployment.yaml), every request thread busy.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from admission import free_port, wait_ready

from tests import bodies
from webhook.app import MAX_BODY_BYTES
from webhook.check import check
from webhook.facts import ClusterFacts
from wukong.storageclass import StorageClass

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CLASSES = ROOT / "deploy" / "storageclasses" / "devcluster.yaml"
POD_LIMIT_MIB = 256
BOUND_MIB = 80  # above the idle worker
MIB = 1024 * 1024
COSTLIEST = "spec.disks: short strings"  # the most Python objects per byte of JSON that is decoded


@dataclass
class Row:
    shape: str
    size: int
    status: str
    answer: str
    seconds: float
    idle_mib: float
    peak_mib: float


@dataclass
class Server:
    port: int
    context: ssl.SSLContext
    master: int
    worker: int

    def post(self, body: bytes) -> tuple[int, bytes]:
        """POST /mutate; an answer sent before the whole body was read (413) is read all the same."""
        head = "POST /mutate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        head += f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        with (
            socket.create_connection(("127.0.0.1", self.port), timeout=60) as raw,
            self.context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            with contextlib.suppress(OSError):  # the server answered and closed before the whole body was sent
                tls.sendall(head.encode() + body)
            reply = http.client.HTTPResponse(tls)
            reply.begin()
            return reply.status, reply.read()

    def rss(self, pid: int | None = None, field: str = "VmRSS") -> float:
        for line in Path(f"/proc/{pid or self.worker}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError(f"no {field}")

    def peak_of(self, send: Callable[[], Any]) -> tuple[Any, float, float, float]:
        """What ``send`` returned, its time, and the worker's RSS before and at its peak."""
        idle = self.rss()
        Path(f"/proc/{self.worker}/clear_refs").write_text("5")  # VmHWM starts again from the current RSS
        started = time.perf_counter()
        result = send()
        return result, time.perf_counter() - started, idle, self.rss(field="VmHWM")


@contextmanager
def served(threads: int) -> Iterator[Server]:
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        generate = [BIN / "wukong-certs", "generate", "--service", "bench", "--namespace", "bench"]
        subprocess.run([*generate, "--out-dir", work, "--ip", "127.0.0.1"], check=True, capture_output=True)
        port = free_port()
        serve = [BIN / "wukong-webhook", "serve", "--bind-address", "127.0.0.1", "--port", str(port)]
        serve += ["--threads", str(threads), "--storage-classes", str(CLASSES)]
        serve += ["--tls-cert-file", str(work / "tls.crt"), "--tls-private-key-file", str(work / "tls.key")]
        process = subprocess.Popen(serve, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            context = ssl.create_default_context(cafile=str(work / "ca.crt"))
            wait_ready(port, context, process)
            server = Server(port, context, process.pid, worker_of(process.pid))
            for obj in (bodies.base(), bodies.many_small_errors()):  # what a first allowed and denied decision load
                server.post(bodies.encoded(bodies.review(obj)))
            yield server
        finally:
            process.terminate()
            process.wait()


def worker_of(master: int) -> int:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if parent == master:
                return int(stat.parent.name)
        time.sleep(0.1)
    raise RuntimeError("gunicorn started no worker")


def first_line(status: int, payload: bytes) -> str:
    if status != 200:
        return payload.decode(errors="replace").splitlines()[0] if payload else ""
    response = json.loads(payload)["response"]
    if response["allowed"]:
        return "allowed, patched" if "patch" in response else "allowed"
    return shortened(str(response["status"]["message"]))


def shortened(message: str) -> str:
    """The first error of a denial, and how many more there were."""
    first = message.removeprefix("[").split(", ")[0]
    return f"{first} (and {message.rsplit(', and ', 1)[1][:-1]})" if message.endswith("more errors]") else first


def over_the_network(cases: list[tuple[str, bytes]], costliest: bytes, threads: int) -> tuple[list[Row], float]:
    rows = []
    for name, body in cases:
        print(f"bench: {name}, {len(body):,} bytes", flush=True)
        with served(threads) as server:
            (status, payload), seconds, idle, peak = server.peak_of(lambda body=body: server.post(body))
            rows.append(Row(name, len(body), str(status), first_line(status, payload), seconds, idle, peak))
            master = server.rss(server.master)
    print(f"bench: {threads} clients at once, each {len(costliest):,} bytes", flush=True)
    with served(threads) as server, ThreadPoolExecutor(threads) as pool:
        answers, seconds, idle, peak = server.peak_of(
            lambda: list(pool.map(lambda _: server.post(costliest), range(threads)))
        )
        statuses = [str(status) for status, _ in answers]
        counted = ", ".join(f"{statuses.count(s)}x {s}" for s in sorted(set(statuses)))
        first = first_line(*answers[0])
        rows.append(Row(f"{threads} at once: {COSTLIEST}", len(costliest), counted, first, seconds, idle, peak))
    print("bench: every body again, one after another, to one server", flush=True)
    with served(threads) as server:
        _, seconds, idle, peak = server.peak_of(lambda: [server.post(body) for _, body in cases])
        total = sum(len(body) for _, body in cases)
        rows.append(Row("all of the above in turn, one server", total, "", "", seconds, idle, peak))
    return rows, master


def in_process(size: int) -> list[tuple[str, float, float, str]]:
    """Each shape decoded and judged as ``wukong-webhook check`` judges a file (it has no body limit): time, then
    tracemalloc's peak. The deep shapes are built, not decoded: json.loads gives up after a thousand levels."""
    facts = ClusterFacts.of([StorageClass.from_manifest(o) for o in yaml.safe_load_all(CLASSES.read_text())])
    results = []
    for shape in bodies.SHAPES:
        body = shape.body(size)
        built = shape.decoded(size) if shape.nested else None

        def judged(body: bytes = body, built: dict[str, Any] | None = built) -> str:
            request = built if built is not None else json.loads(body)["request"]
            verdict = check(request["object"], request.get("oldObject"), facts)
            return "allowed" if verdict.allowed else shortened(verdict.message)

        started = time.perf_counter()
        answer = judged()
        seconds = time.perf_counter() - started
        tracemalloc.start()
        judged()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        results.append((shape.name, seconds, peak / MIB, answer))
        del built
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=MAX_BODY_BYTES, help="bytes of each hostile body")
    parser.add_argument("--threads", type=int, default=8, help="request threads of the server (as deployed)")
    args = parser.parse_args()

    cases = [(shape.name, shape.body(args.size)) for shape in bodies.SHAPES]
    small = bodies.encoded(bodies.review(bodies.many_small_errors()))
    cases.append(("16 disks and 64 tolerations, each wrong in several ways", small))
    cases.append(("the largest valid Wukong, an update", bodies.encoded(bodies.largest_update())))
    if args.size < 3 * MIB:
        cases.append(("3 MiB", bodies.SHAPES[0].body(3 * MIB)))
    cases.append(("one byte over the limit", bodies.SHAPES[0].body(MAX_BODY_BYTES + 1)))
    costliest = next(s for s in bodies.SHAPES if s.name == COSTLIEST).body(args.size)
    rows, master = over_the_network(cases, costliest, args.threads)

    print("bench: the same shapes through the offline checker's path, in process", flush=True)
    decided = in_process(args.size)

    print()
    print(f"wukong-webhook serve: {args.threads} request threads, body limit {MAX_BODY_BYTES:,} bytes; POST /mutate")
    print(f"bound: the worker's peak RSS at most {BOUND_MIB} MiB above the same worker idle, just before")
    print()
    columns = ["shape", "body bytes", "HTTP", "answer (first line)", "time", "idle", "peak", "x idle", "+ idle"]
    print("| " + " | ".join([*columns, f"within {BOUND_MIB} MiB"]) + " |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row.shape} | {row.size:,} | {row.status} | {row.answer[:110]} | {row.seconds * 1000:,.0f} ms | "
            f"{row.idle_mib:.0f} MiB | {row.peak_mib:.0f} MiB | {row.peak_mib / row.idle_mib:.2f} | "
            f"{row.peak_mib - row.idle_mib:+.0f} MiB | {'yes' if row.peak_mib - row.idle_mib <= BOUND_MIB else 'NO'} |"
        )
    print()
    print(f"in process (webhook.check: mutation, then validation), bodies of {args.size:,} bytes")
    print()
    print("| shape | time | peak (tracemalloc) | answer (first line) |")
    print("|---|---|---|---|")
    for name, seconds, peak, answer in decided:
        print(f"| {name} | {seconds * 1000:,.0f} ms | {peak:.1f} MiB | {answer[:110]} |")
    print()
    idle = max(row.idle_mib for row in rows)
    spare = POD_LIMIT_MIB - master - idle - BOUND_MIB
    print(
        f"pod: {POD_LIMIT_MIB} MiB limit - gunicorn master {master:.0f} MiB - idle worker {idle:.0f} MiB - "
        f"bound {BOUND_MIB} MiB = {spare:.0f} MiB to spare"
    )
    return 0 if all(row.peak_mib - row.idle_mib <= BOUND_MIB for row in rows) and spare > 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
