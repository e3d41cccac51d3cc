"""The server's ASGI front: a request reaches the WSGI application only whole, and its answer comes back whole."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from flask import Flask, Response, request

from webhook.server import BodyBudget, WholeRequests

LIMIT = 1000


def echo() -> Flask:
    app = Flask("echo")

    @app.post("/echo")
    def answer() -> Response:
        seen = {"body": request.get_data(as_text=True), "length": request.content_length, "path": request.path}
        return Response(json.dumps(seen), status=201, headers={"X-Seen": "yes"}, mimetype="application/json")

    return app


def exchange(
    chunks: list[bytes], headers: list[tuple[bytes, bytes]], stall: bool = False
) -> tuple[int, dict[bytes, bytes], bytes]:
    """One request through WholeRequests: the status, headers and body it sends."""

    async def run() -> list[dict[str, Any]]:
        front = WholeRequests(echo(), 2, LIMIT, 0.2, BodyBudget(LIMIT, 100, 0.2))
        pieces = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            if pieces and not (stall and len(pieces) < len(chunks)):
                return pieces.pop(0)
            await asyncio.Event().wait()  # the client sends nothing more
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "method": "POST",
            "path": "/echo",
            "query_string": b"",
            "http_version": "1.1",
            "scheme": "https",
            "headers": headers,
        }
        await front(scope, receive, send)
        front.threads.shutdown()
        return sent

    start, body = asyncio.run(run())
    return start["status"], dict(start["headers"]), body["body"]


def test_a_body_in_pieces_reaches_the_application_whole_and_its_answer_comes_back_whole():
    status, headers, body = exchange([b'{"a":', b" 1}"], [(b"content-length", b"8"), (b"host", b"x")])
    assert (status, headers[b"x-seen"], headers[b"content-type"]) == (201, b"yes", b"application/json")
    assert json.loads(body) == {"body": '{"a": 1}', "length": 8, "path": "/echo"}


def test_a_chunked_body_is_handed_on_with_its_length():
    status, _, body = exchange([b"abc", b"def"], [(b"transfer-encoding", b"chunked")])
    assert (status, json.loads(body)["body"], json.loads(body)["length"]) == (201, "abcdef", 6)


@pytest.mark.parametrize("declared", [True, False], ids=["declared", "chunked"])
def test_a_body_over_the_limit_gets_413_before_the_application_runs(declared):
    headers = [(b"content-length", b"2000")] if declared else [(b"transfer-encoding", b"chunked")]
    status, _, body = exchange([b"x" * 600, b"x" * 600], headers)
    assert (status, body) == (413, b"request body is larger than 1000 bytes\n")


def test_a_body_that_stops_arriving_gets_408():
    status, _, _ = exchange([b"x", b"y"], [(b"content-length", b"2")], stall=True)
    assert status == 408
