"""Serving the Flask app with gunicorn over TLS: an asynchronous front, request threads only for whole requests.

gunicorn's ``asgi`` worker accepts connections, completes TLS handshakes and reads requests on one event loop,
so a client that stalls in the handshake, trickles its headers or its body, or never sends a byte costs a
coroutine and a file descriptor -- never a request thread. ``WholeRequests`` reads each body completely, within a
size limit (413) and a deadline (408), before a2wsgi hands the request to the Flask app on a thread of its pool.
Deciding costs memory in proportion to the body, so large bodies are decided a few at a time (``BodyBudget``),
whatever the number of request threads: a flood of them waits its turn (503 when it waits too long) instead of
running the worker out of memory.

The certificate is re-read when its files change (Secret volumes are updated by an atomic symlink swap): every
TLS handshake switches to the current context in the SNI callback, so a rotated certificate is served from the
next connection on, with no restart and no failed request. A half-written pair that does not load keeps the
previous context until the files are consistent again.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import ssl
import threading
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, cast

from a2wsgi.wsgi import build_environ
from flask import Flask
from gunicorn.app.base import BaseApplication

from webhook.app import MAX_BODY_BYTES

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
WSGIApplication = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class BodyBudget:
    """The bytes of request bodies being read and decided at once: at most ``limit``; bodies up to ``small`` pass
    without counting.

    Reading a body holds it in memory and deciding holds it several times over: the bytes, the decoded text, and
    what ``json.loads`` makes of it, up to 13 bytes of Python objects for each byte of a hostile body (short strings,
    say). So the worker's memory follows the sum of the bodies in flight, not the number of threads.
    Every real Wukong's review is small and passes at once. A larger one waits, before a byte of it is read, until
    the bytes it declares are free, at most ``wait`` seconds (then 503). With ``limit`` the body limit, one body of
    the largest size is in flight at a time, or several smaller ones; a flood of them waits its turn, in the
    client's socket, instead of running the worker out of memory.
    """

    def __init__(self, limit: int, small: int, wait: float) -> None:
        self.limit, self.small, self.wait = limit, small, wait
        self.free = limit
        self._changed = asyncio.Condition()

    async def take(self, size: int) -> bool:
        """Whether ``size`` bytes were granted within ``wait`` seconds (always, for a small body)."""
        if size <= self.small:
            return True
        try:
            await asyncio.wait_for(self._take(size), self.wait)  # cancelled while waiting, it took nothing
        except TimeoutError:
            return False
        return True

    async def _take(self, size: int) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self.free >= size)
            self.free -= size

    async def give(self, size: int) -> None:
        if size <= self.small:
            return
        async with self._changed:
            self.free += size
            self._changed.notify_all()


class WholeRequests:
    """The ASGI application: the body of every HTTP request is read completely -- at most ``max_body_bytes``,
    within ``body_timeout`` seconds, within ``budget`` -- before the WSGI application runs it on one of ``threads``
    request threads.

    A whole request needs no streaming bridge: the WSGI application gets the body as a file, its whole answer is
    collected on the request thread and comes back to the event loop in one hop (a generic bridge such as a2wsgi's
    middleware hands the body in and each piece of the answer out through the loop, a blocking round trip each,
    four per request). Answers here are small: an AdmissionReview's response, the metrics page."""

    def __init__(
        self, app: WSGIApplication, threads: int, max_body_bytes: int, body_timeout: float, budget: BodyBudget
    ) -> None:
        self.app, self.max_body_bytes, self.body_timeout = app, max_body_bytes, body_timeout
        self.budget = budget
        self.threads = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="request")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return  # a WebSocket is refused by returning without accepting it
        expected = self._expected(dict(scope.get("headers") or []))
        if expected > self.max_body_bytes:
            await _answer(send, 413, f"request body is larger than {self.max_body_bytes} bytes")
            return
        if not await self.budget.take(expected):
            await _answer(send, 503, f"too many large requests at once; no room freed within {self.budget.wait:g}s")
            return
        try:
            await self._whole(scope, receive, send)
        finally:
            await self.budget.give(expected)

    def _expected(self, headers: dict[bytes, bytes]) -> int:
        """The body's size as declared; a chunked body may be as large as the limit."""
        if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
            return self.max_body_bytes
        declared = headers.get(b"content-length", b"0").strip()
        return int(declared) if declared.isdigit() else 0

    async def _whole(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            body = await asyncio.wait_for(self._read(receive), self.body_timeout)
        except _TooLarge:
            await _answer(send, 413, f"request body is larger than {self.max_body_bytes} bytes")
            return
        except TimeoutError:
            await _answer(send, 408, f"request body not received within {self.body_timeout:g}s")
            return
        await self._forward(scope, send, body)

    async def _forward(self, scope: Scope, send: Send, body: bytes) -> None:
        environ: dict[str, Any] = cast(Any, build_environ(cast(Any, scope), cast(Any, io.BytesIO(body))))
        environ.pop("HTTP_TRANSFER_ENCODING", None)  # the body is whole: a chunked one is handed on with its length
        environ["CONTENT_LENGTH"] = str(len(body))
        loop = asyncio.get_running_loop()
        status, headers, payload = await loop.run_in_executor(self.threads, self._run, environ)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    def _run(self, environ: dict[str, Any]) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """On a request thread: the WSGI application's whole answer."""
        started: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[..., None]:
            started[:] = [status, headers]
            return _no_write

        answer = self.app(environ, start_response)
        try:
            payload = b"".join(answer)
        finally:
            if hasattr(answer, "close"):
                answer.close()
        status, headers = started
        encoded = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]
        return int(status.split(" ", 1)[0]), encoded, payload

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


def _no_write(_data: bytes) -> None:
    raise NotImplementedError("the WSGI write() callable: the application returns its body instead")


async def _lifespan(receive: Receive, send: Send) -> None:
    """Nothing to start or stop: the WSGI application was made before the server started."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


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
    max_body_bytes: int = MAX_BODY_BYTES
    small_body_bytes: int = 64 * 1024  # a real Wukong's review is a few kB; its largest possible, 1.4 MiB
    budget_wait_seconds: float = 2.0  # with the body's 2 s, within the API server's 5 s
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
            "asgi_loop": "asyncio",  # as in the image; uvloop, where a developer has it, measured no faster here
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
        return whole_requests(self.app_factory(), self.options)


def whole_requests(app: WSGIApplication | Flask, options: ServeOptions) -> WholeRequests:
    budget = BodyBudget(options.max_body_bytes, options.small_body_bytes, options.budget_wait_seconds)
    return WholeRequests(app, options.threads, options.max_body_bytes, options.body_timeout_seconds, budget)
