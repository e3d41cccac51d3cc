"""What the webhooks add to a create through the real API server, against a do-nothing pair: the floor.

    .venv/bin/python bench/webhook_latency.py [--creates 300] [--rounds 2]

On devcluster, three namespaces: one no webhook selects, one selected by a do-nothing pair (a mutating and a
validating webhook that allow with no patch: bench/serving.py's bare application, served by the product's stack,
``webhook.server.WebhookServer``), one selected by ours (``wukong-webhook serve`` with its configurations from
deploy/, their namespaceSelector narrowed to that namespace). The sample Wukong (deploy/samples/system-and-data.yaml)
is created with dryRun=All in each, interleaved (the order turns each time), CREATES times each per round, through
the project's client on one kept-alive connection. Printed: p50/p90/p99 per namespace; what each pair adds to the
p50 of no webhook; ours' added latency / the floor's (target <= 1.25).

Then what the floor is made of: the API server's own time in each webhook call (its histogram
apiserver_admission_webhook_admission_duration_seconds), the servers' time inside (ours: its
wukong_webhook_request_duration_seconds), the TLS connections each server saw during the run (sampled with ``ss``,
their client ports: a new port is a new connection and a new TLS handshake), and the protocol the API server
negotiates (ALPN: HTTP/2 is used only when the server offers it).
"""

from __future__ import annotations

import argparse
import copy
import os
import socket
import ssl
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml
from admission import free_port, wait_ready
from prometheus_client.parser import text_string_to_metric_families

from certs import files
from devcluster.controlplane import ControlPlane
from devcluster.webhooks import LocalWebhook, local_configurations
from wukong.api import WUKONGS

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "deploy" / "samples" / "system-and-data.yaml"
LABEL = "wukong-bench"
KINDS = ("none", "floor", "ours")
NAMES = {"none": "no webhooks", "floor": "do-nothing pair (floor)", "ours": "ours"}
APISERVER_WEBHOOK = "apiserver_admission_webhook_admission_duration_seconds"


def configurations(url: str, ca_pem: bytes, kind: str) -> list[dict[str, Any]]:
    """Ours from deploy/, or the same shape renamed for the do-nothing pair, selecting one namespace label."""
    found = local_configurations(url, ca_pem)
    for config in found:
        if kind == "floor":
            config["metadata"]["name"] = "wukong-bench-floor"
        for hook in config["webhooks"]:
            if kind == "floor":
                hook["name"] = hook["name"].replace(".wukongs.", ".floor.")
            hook["namespaceSelector"] = {"matchLabels": {LABEL: kind}}
    return found


def webhook_names(kind: str, url: str) -> list[str]:
    return [hook["name"] for config in configurations(url, b"", kind) for hook in config["webhooks"]]


class Connections:
    """The client ports seen on the servers' ports (``ss``, every 20 ms): each is one TCP connection, one handshake."""

    def __init__(self, ports: dict[str, int]) -> None:
        self.ports = ports
        self.seen: dict[str, set[int]] = defaultdict(set)
        self.most: dict[str, int] = defaultdict(int)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> Connections:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            listing = subprocess.run(
                ["ss", "-Htn", "state", "established"], capture_output=True, text=True, check=False
            ).stdout
            now: dict[str, set[int]] = defaultdict(set)
            for line in listing.splitlines():
                parts = line.split()
                if len(parts) < 4:
                    continue
                local, peer = parts[2], parts[3]
                for kind, port in self.ports.items():
                    if local.endswith(f":{port}"):
                        now[kind].add(int(peer.rsplit(":", 1)[1]))
            for kind, peers in now.items():
                self.seen[kind] |= peers
                self.most[kind] = max(self.most[kind], len(peers))


def metric_sums(text: str, name: str, label: str) -> dict[str, tuple[float, float]]:
    """(sum, count) of a histogram by one label's value."""
    found: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for family in text_string_to_metric_families(text):
        if family.name != name:
            continue
        for sample in family.samples:
            key = sample.labels.get(label, "")
            if sample.name == f"{name}_sum":
                found[key][0] += sample.value
            elif sample.name == f"{name}_count":
                found[key][1] += sample.value
    return {k: (v[0], v[1]) for k, v in found.items()}


def mean_ms(after: dict[str, tuple[float, float]], before: dict[str, tuple[float, float]], key: str) -> float:
    total = after.get(key, (0.0, 0.0))[0] - before.get(key, (0.0, 0.0))[0]
    count = after.get(key, (0.0, 0.0))[1] - before.get(key, (0.0, 0.0))[1]
    return total / count * 1000 if count else float("nan")


def alpn(port: int, ca: Path) -> str:
    """What a client offering h2 and http/1.1, as the API server's does, gets from the server."""
    context = ssl.create_default_context(cafile=str(ca))
    context.set_alpn_protocols(["h2", "http/1.1"])
    raw = socket.create_connection(("127.0.0.1", port))
    with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        return tls.selected_alpn_protocol() or "none offered: HTTP/1.1"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--creates", type=int, default=300, help="creates per namespace and round")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    sample = yaml.safe_load(SAMPLE.read_text())
    with ControlPlane.start(log=lambda line: print(line, flush=True)) as plane:
        ours = LocalWebhook(plane).start()
        cert, key, ca = (ours.certs_dir / name for name in (files.TLS_CERT, files.TLS_KEY, files.CA_CERT))
        floor_port = free_port()
        floor_log = (plane.workdir / "floor.log").open("wb")
        floor = subprocess.Popen(
            [sys.executable, ROOT / "bench" / "serving.py", "product", "bare", str(floor_port), str(cert), str(key)],
            stdout=floor_log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            context = ssl.create_default_context(cafile=str(ca))
            wait_ready(floor_port, context, floor)
            urls = {"floor": f"https://127.0.0.1:{floor_port}", "ours": ours.url}
            for kind in KINDS:
                plane.kubectl("create", "namespace", f"bench-{kind}")
                plane.kubectl("label", "namespace", f"bench-{kind}", f"{LABEL}={kind}")
            for kind, url in urls.items():
                plane.apply(configurations(url, ours.ca_pem, kind))
            kube = plane.client("bench")

            def create(kind: str) -> dict[str, Any]:
                obj = copy.deepcopy(sample)
                obj["metadata"]["namespace"] = f"bench-{kind}"
                return kube.create(WUKONGS, obj, dry_run=True)

            def apiserver_metrics() -> dict[str, tuple[float, float]]:
                return metric_sums((plane.get("/metrics") or b"").decode(), APISERVER_WEBHOOK, "name")

            deadline = time.monotonic() + 30  # the API server reads webhook configurations asynchronously
            while True:
                defaulted = "volumeRetentionPolicy" in create("ours")["spec"]
                create("floor")
                called = apiserver_metrics()
                if defaulted and all(called.get(n, (0, 0))[1] for n in webhook_names("floor", "")):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("the webhooks did not take effect within 30 s")
                time.sleep(0.2)
            for _ in range(20):  # the connections opened, every path run once
                for kind in KINDS:
                    create(kind)

            times: dict[str, list[float]] = defaultdict(list)
            per_round: list[dict[str, float]] = []
            before = apiserver_metrics()
            inside_before = {kind: server_time(url, context) for kind, url in urls.items()}
            ports = {"floor": floor_port, "ours": ours.port}
            print(
                f"bench: {args.rounds} rounds of {args.creates} dry-run creates in each namespace, interleaved",
                flush=True,
            )
            with Connections(ports) as connections:
                for _ in range(args.rounds):
                    this_round: dict[str, list[float]] = defaultdict(list)
                    for index in range(args.creates):
                        order = KINDS[index % 3 :] + KINDS[: index % 3]
                        for kind in order:
                            started = time.perf_counter()
                            create(kind)
                            took = (time.perf_counter() - started) * 1000
                            times[kind].append(took)
                            this_round[kind].append(took)
                    per_round.append({kind: statistics.median(values) for kind, values in this_round.items()})
            after = apiserver_metrics()
            inside_after = {kind: server_time(url, context) for kind, url in urls.items()}
            protocols = {kind: alpn(port, ca) for kind, port in ports.items()}
        finally:
            floor.terminate()
            floor.wait()
            floor_log.close()
            ours.stop()

    base = statistics.median(times["none"])
    added = {kind: statistics.median(times[kind]) - base for kind in ("floor", "ours")}
    print()
    print(
        f"create latency through the API server, dryRun=All, {args.rounds} x {args.creates} creates each, interleaved"
    )
    print(f"{'':26} {'p50':>8} {'p90':>8} {'p99':>8} {'added p50':>10} {'÷ floor':>8}")
    for kind in KINDS:
        values = times[kind]
        p50, p90, p99 = statistics.median(values), percentile(values, 0.9), percentile(values, 0.99)
        row = f"{NAMES[kind]:26} {p50:6.2f}ms {p90:6.2f}ms {p99:6.2f}ms"
        if kind != "none":
            row += f" {added[kind]:8.2f}ms {added[kind] / added['floor']:8.2f}"
        print(row)
    for number, medians in enumerate(per_round, 1):
        floor_added, ours_added = medians["floor"] - medians["none"], medians["ours"] - medians["none"]
        print(
            f"  round {number}: p50 none {medians['none']:.2f} ms, floor +{floor_added:.2f} ms, "
            f"ours +{ours_added:.2f} ms: ours ÷ floor {ours_added / floor_added:.2f}"
        )
    print(f"target: ours' added latency <= 1.25 x the floor's; here {added['ours'] / added['floor']:.2f}")
    print()
    print("what a webhook call is made of (means over the run):")
    for kind in ("floor", "ours"):
        names = webhook_names(kind, "")
        spent = ", ".join(f"{name.split('.')[0]} {mean_ms(after, before, name):.2f} ms" for name in names)
        print(f"  {NAMES[kind]:24} the API server's time per call: {spent}")
    for kind in ("floor", "ours"):
        ended, began = inside_after[kind], inside_before[kind]
        inside = ", ".join(f"{e} {mean_ms(ended, began, e):.2f} ms" for e in ("mutate", "validate"))
        print(f"  {NAMES[kind]:24} inside the server (its histogram, on the request thread): {inside}")
    calls = 2 * args.rounds * args.creates
    for kind in ("floor", "ours"):
        print(
            f"  {NAMES[kind]:24} {len(connections.seen[kind])} TLS connections for {calls} calls (at most "
            f"{connections.most[kind]} open at once); ALPN: {protocols[kind]}"
        )
    return 0


def server_time(url: str, context: ssl.SSLContext) -> dict[str, tuple[float, float]]:
    """The server's own histogram of its time per request, by endpoint."""
    with urllib.request.urlopen(url + "/metrics", context=context, timeout=5) as reply:
        return metric_sums(reply.read().decode(), "wukong_webhook_request_duration_seconds", "endpoint")


if __name__ == "__main__":
    raise SystemExit(main())
