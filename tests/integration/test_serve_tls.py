"""The real ``wukong-webhook serve``: gunicorn over TLS, verified against a CA from ``wukong-certs generate``."""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from cryptography import x509

from tests import bodies
from tests.builders import disk, wukong
from webhook.app import MAX_BODY_BYTES

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def generate(out: Path, *extra: str) -> None:
    subprocess.run(
        [
            BIN / "wukong-certs",
            "generate",
            "--service",
            "wukong-webhook",
            "--namespace",
            "wukong-system",
            "--out-dir",
            out,
            "--ip",
            "127.0.0.1",
            *extra,
        ],
        check=True,
        capture_output=True,
    )


def review(uid: str) -> bytes:
    body = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "operation": "CREATE",
            "object": wukong(disk("system")),
            "kind": {"group": "vm.novasphere.dev", "version": "v1alpha1", "kind": "Wukong"},
        },
    }
    return json.dumps(body).encode()


@pytest.fixture
def server(tmp_path):
    certs = tmp_path / "certs"
    generate(certs)
    port = free_port()
    log = tmp_path / "server.log"  # a file, not a pipe: nobody reads a pipe while the tests run, and a full one blocks
    with log.open("wb") as output:  # the server keeps its own copy of the descriptor
        process = subprocess.Popen(
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
                ROOT / "deploy/storageclasses/devcluster.yaml",
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    context = ssl.create_default_context(cafile=str(certs / "ca.crt"))
    deadline = time.monotonic() + 30
    while True:
        try:
            connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=5)
            connection.request("GET", "/readyz")
            ready = connection.getresponse().status == 200
            connection.close()
            if ready:
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                process.wait()
                pytest.fail(f"wukong-webhook serve did not start:\n{log.read_text()}")
            time.sleep(0.1)
    yield port, certs, context
    process.terminate()
    process.wait(timeout=30)


def serial_served(port: int, context: ssl.SSLContext) -> int:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True)).serial_number


def test_admission_over_verified_tls_with_keep_alive(server):
    port, _, context = server
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context)
    for uid in ("first", "second", "third"):  # one connection, three requests
        connection.request("POST", "/mutate", body=review(uid), headers={"Content-Type": "application/json"})
        reply = connection.getresponse()
        answer = json.loads(reply.read())["response"]
        assert (reply.status, answer["uid"], answer["allowed"]) == (200, uid, True)
        assert answer["patchType"] == "JSONPatch"


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_tls_1_2_clients_are_served_and_the_server_refuses_tls_1_1(server):
    port, certs, _ = server
    tls12 = ssl.create_default_context(cafile=str(certs / "ca.crt"))
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection(("127.0.0.1", port)) as raw, tls12.wrap_socket(raw, server_hostname="127.0.0.1") as s:
        assert s.version() == "TLSv1.2"

    tls11 = ssl.create_default_context(cafile=str(certs / "ca.crt"))
    tls11.minimum_version = tls11.maximum_version = ssl.TLSVersion.TLSv1_1
    tls11.set_ciphers("DEFAULT:@SECLEVEL=0")  # OpenSSL 3 offers no TLS 1.1 cipher at the default level
    with (
        pytest.raises(ssl.SSLError) as refused,
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        tls11.wrap_socket(raw, server_hostname="127.0.0.1"),
    ):
        pass
    # Refused by the server after it read the ClientHello: its alert, or (asyncio's TLS does not flush the alert
    # before closing) the connection closed mid-handshake. A local refusal (NO_PROTOCOLS_AVAILABLE) would fail here.
    assert refused.value.reason in ("TLSV1_ALERT_PROTOCOL_VERSION", "UNEXPECTED_EOF_WHILE_READING"), (
        f"not refused by the server: {refused.value}"
    )


def test_a_replaced_certificate_is_served_without_restart_or_a_failed_request(server):
    port, certs, context = server
    failures: list[str] = []
    asked = 0
    done = threading.Event()

    def keep_asking() -> None:
        nonlocal asked
        while not done.is_set():
            asked += 1
            try:
                connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=5)
                connection.request("POST", "/validate", body=review(f"r{asked}"))
                if connection.getresponse().status != 200:
                    failures.append(f"request {asked}: HTTP error")
                connection.close()
            except (OSError, http.client.HTTPException) as error:
                failures.append(f"request {asked}: {error}")

    askers = [threading.Thread(target=keep_asking) for _ in range(4)]
    for asker in askers:
        asker.start()
    swaps = 5
    for _ in range(swaps):
        before = serial_served(port, context)
        generate(certs, "--ca-cert", str(certs / "ca.crt"), "--ca-key", str(certs / "ca.key"))
        deadline = time.monotonic() + 10
        while serial_served(port, context) == before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert serial_served(port, context) != before
    done.set()
    for asker in askers:
        asker.join()
    assert x509.load_pem_x509_certificate((certs / "tls.crt").read_bytes()).serial_number == serial_served(
        port, context
    )
    assert failures == []
    print(f"\ncertificate swapped {swaps} times under load: {asked} requests on new connections, 0 failed")


def raw_exchange(port: int, context: ssl.SSLContext, request: bytes, body_chunks: list[bytes]) -> tuple[bytes, float]:
    """Send a request by hand; the status line of the answer and how long it took to come."""
    started = time.monotonic()
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(request)
        for chunk in body_chunks:
            try:
                tls.sendall(chunk)
            except OSError:
                break  # the server answered and closed before the whole body was sent
        answer = tls.recv(4096)
    return answer.split(b"\r\n", 1)[0], time.monotonic() - started


def test_a_body_that_does_not_arrive_in_time_gets_408_without_holding_a_thread(server):
    port, _, context = server
    head = b"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
    status, took = raw_exchange(port, context, head, [])
    assert status == b"HTTP/1.1 408 Request Timeout"
    assert 1.5 < took < 5, f"answered after {took:.1f}s; the body deadline is 2s"


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
def test_a_body_over_3_mib_gets_413_however_it_is_framed(server, chunked):
    port, _, context = server
    if chunked:
        head = b"POST /validate HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        piece = b"x" * 65536
        chunks = [b"%x\r\n%s\r\n" % (len(piece), piece)] * 60 + [b"0\r\n\r\n"]  # 3.75 MiB
    else:
        head = b"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Length: 4000000\r\n\r\n"
        chunks = [b"x" * 65536] * 62
    status, _ = raw_exchange(port, context, head, chunks)
    assert status.startswith(b"HTTP/1.1 413 ")


def test_a_hostile_body_of_the_largest_size_is_denied_with_a_field_error_not_a_500(server):
    port, _, context = server
    body = next(s for s in bodies.SHAPES if s.name == "spec.disks: numbers").body(MAX_BODY_BYTES)
    items = len(json.loads(body)["request"]["object"]["spec"]["disks"])
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=30)
    connection.request("POST", "/mutate", body=body, headers={"Content-Type": "application/json"})
    reply = connection.getresponse()
    answer = json.loads(reply.read())["response"]
    assert (reply.status, answer["uid"], answer["allowed"], answer["status"]["code"]) == (200, bodies.UID, False, 422)
    assert answer["status"]["message"] == f"spec.disks: Too many: {items}: must have at most 16 items"
