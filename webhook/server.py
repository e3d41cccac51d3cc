"""Serving the Flask app with gunicorn over TLS: an asynchronous front, request threads only for whole requests.

gunicorn's ``asgi`` worker accepts connections, completes TLS handshakes and reads requests on one event loop,
so a client that stalls in the handshake, trickles its headers or its body, or never sends a byte costs a
coroutine and a file descriptor -- never a request thread. ``WholeRequests`` reads each body completely, within a
size limit (413) and a deadline (408), before a2wsgi hands the request to the Flask app on a thread of its pool.

The certificate is re-read when its files change (Secret volumes are updated by an atomic symlink swap): every
TLS handshake switches to the current context in the SNI callback, so a rotated certificate is served from the
next connection on, with no restart and no failed request. A half-written pair that does not load keeps the
previous context until the files are consistent again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from a2wsgi import WSGIMiddleware
from flask import Flask
from gunicorn.app.base import BaseApplication

log = logging.getLogger("wukong.webhook.tls")


class ReloadingTLSContext:
    """A server-side TLS context (1.2 minimum) that follows its certificate and key files."""

    def __init__(self, cert_file: str, key_file: str) -> None:
        self.cert_file, self.key_file = cert_file, key_file
        self._lock = threading.Lock()
        self._stamp: tuple[Any, ...] | None = None
        self._context = self._load()
        self._stamp = self._file_stamp()

    def get(self) -> ssl.SSLContext:
        stamp = self._file_stamp()
        if stamp != self._stamp:
            with self._lock:
                if stamp != self._stamp:
                    try:
                        self._context = self._load()
                        log.info("loaded a new serving certificate from %s", self.cert_file)
                    except (OSError, ssl.SSLError) as error:
                        log.warning("keeping the current certificate: the new files do not load yet (%s)", error)
                    else:
                        self._stamp = stamp
        return self._context

    def _file_stamp(self) -> tuple[Any, ...]:
        stamps: list[tuple[int, int, int] | None] = []
        for path in (self.cert_file, self.key_file):
            try:
                info = os.stat(path)
                stamps.append((info.st_ino, info.st_mtime_ns, info.st_size))
            except OSError:
                stamps.append(None)
        return tuple(stamps)

    def _load(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def listener(self) -> ssl.SSLContext:
        """The context a listener is created with: each handshake moves to the current one (OpenSSL calls the
        server-name callback for every ClientHello, with or without SNI)."""
        context = self._load()
        context.sni_callback = self._switch
        return context

    def _switch(self, connection: ssl.SSLObject | ssl.SSLSocket, _name: str | None, _context: ssl.SSLContext) -> None:
        connection.context = self.get()


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class WholeRequests:
    """ASGI middleware: the body of every HTTP request is read completely -- at most ``max_body_bytes``, within
    ``body_timeout`` seconds -- before the wrapped application sees the request."""

    def __init__(self, app: Callable[..., Awaitable[None]], max_body_bytes: int, body_timeout: float) -> None:
        self.app, self.max_body_bytes, self.body_timeout = app, max_body_bytes, body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            await _answer(send, 413, f"request body is larger than {self.max_body_bytes} bytes")
            return
        try:
            body = await asyncio.wait_for(self._read(receive), self.body_timeout)
        except _TooLarge:
            await _answer(send, 413, f"request body is larger than {self.max_body_bytes} bytes")
            return
        except TimeoutError:
            await _answer(send, 408, f"request body not received within {self.body_timeout:g}s")
            return
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # only a disconnect is left to hear

        await self.app(scope, replay, send)

    async def _read(self, receive: Receive) -> bytes:
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise TimeoutError  # nothing to answer; the connection is gone
            chunk = message.get("body") or b""
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)


class _TooLarge(Exception):
    pass


async def _answer(send: Send, status: int, text: str) -> None:
    body = (text + "\n").encode()
    headers = [
        (b"content-type", b"text/plain"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@dataclass
class ServeOptions:
    bind: str
    cert_file: str
    key_file: str
    threads: int = 8
    keepalive_seconds: int = 5  # idle connections close by then, and a stopping server waits no longer for them
    graceful_timeout_seconds: int = 20
    body_timeout_seconds: float = 2.0  # well under the API server's webhook timeout (5 s here, 10 s by default)
    max_body_bytes: int = 3 * 1024 * 1024
    max_connections: int = 10000


class WebhookServer(BaseApplication):
    """One gunicorn worker: the cache and the metrics live in a single process."""

    def __init__(self, app_factory: Callable[[], Flask], options: ServeOptions) -> None:
        self.app_factory, self.options = app_factory, options
        super().__init__()

    def load_config(self) -> None:
        tls = ReloadingTLSContext(self.options.cert_file, self.options.key_file)  # fails early on bad files
        settings = {
            "bind": [self.options.bind],
            "workers": 1,
            "worker_class": "asgi",
            "worker_connections": self.options.max_connections,
            "keepalive": self.options.keepalive_seconds,
            "graceful_timeout": self.options.graceful_timeout_seconds,
            "certfile": self.options.cert_file,
            "keyfile": self.options.key_file,
            "ssl_context": lambda _conf, _factory: tls.listener(),
            "accesslog": None,
            "errorlog": "-",
            "loglevel": "info",
            "proc_name": "wukong-webhook",
        }
        for key, value in settings.items():
            self.cfg.set(key, value)

    def load(self) -> WholeRequests:
        flask_app: Any = self.app_factory()  # a WSGI callable; a2wsgi's stub spells the environ type differently
        wsgi = WSGIMiddleware(flask_app, workers=self.options.threads)
        return WholeRequests(wsgi, self.options.max_body_bytes, self.options.body_timeout_seconds)
