"""Serving stacks for the admission benchmarks: one WSGI application served over TLS by one of several servers.

    python bench/serving.py STACK APP PORT CERT KEY [--threads 8]

APP is ``bare`` (an endpoint that decodes the AdmissionReview and allows it, with no patch, at ``/bare``,
``/mutate`` and ``/validate``) or ``ours`` (``webhook.app.create_app`` with the StorageClasses of devcluster, as
``wukong-webhook serve --storage-classes`` makes it). STACK is one of ``STACKS``:

- ``gthread``: gunicorn's threaded worker, 1 process x THREADS threads, the WSGI application called directly: the
  floor for throughput; a slow client holds a thread (the TLS handshake and the request's reading happen on it);
- ``product``: ``webhook.server.WebhookServer``, what ``wukong-webhook serve`` runs;
- ``gunicorn-asgi-a2wsgi``: the product's front as it was: gunicorn's ``asgi`` worker on asyncio's loop, the
  body read whole, then a2wsgi's streaming bridge to the request threads;
- ``gunicorn-asgi-asyncio``, ``gunicorn-asgi-uvloop``: gunicorn's ``asgi`` worker on asyncio's or uvloop's loop,
  with the product's whole-request bridge (``webhook.server.WholeRequests``);
- ``uvicorn``: uvicorn with uvloop and httptools, the same ASGI application;
- ``hypercorn``: hypercorn with uvloop, the same ASGI application;
- ``granian-asgi``: granian (Rust I/O: hyper, rustls, tokio), the same ASGI application on its asyncio loop;
- ``granian-wsgi``: granian calling the WSGI application on its blocking threads: no body limit or deadline of
  ours in front (granian has neither), and a request thread reads the body as it arrives.

Every stack but granian's serves with ``webhook.server.ReloadingTLSContext`` (TLS 1.2 minimum, a replaced certificate
served from the next handshake); granian's TLS is rustls, given the files once (a new certificate needs a restart
of its worker), TLS 1.2 minimum too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from flask import Flask, Response, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest

from webhook.app import StaticFacts, WebhookConfig, create_app
from webhook.facts import ClusterFacts
from webhook.server import (
    Receive,
    ReloadingTLSContext,
    Scope,
    Send,
    ServeOptions,
    WebhookServer,
    WholeRequests,
    whole_requests,
)
from wukong.storageclass import StorageClass

ROOT = Path(__file__).resolve().parent.parent
CLASSES = ROOT / "deploy" / "storageclasses" / "devcluster.yaml"
STACKS = (
    "gthread",
    "product",
    "gunicorn-asgi-a2wsgi",
    "gunicorn-asgi-asyncio",
    "gunicorn-asgi-uvloop",
    "uvicorn",
    "hypercorn",
    "granian-asgi",
    "granian-wsgi",
)
KEEPALIVE_SECONDS = 5


def bare() -> Flask:
    """Decodes the review and allows it: what any webhook does at the least. Its time inside is in the product's
    histogram (``/metrics``), to be set beside ours."""
    app = Flask("bare")
    registry = CollectorRegistry()
    inside = Histogram("wukong_webhook_request_duration_seconds", "Time to answer.", ["endpoint"], registry=registry)

    def allow(endpoint: str) -> Response:
        started = time.perf_counter()
        review = json.loads(request.get_data(cache=False))
        answer = {"uid": review["request"]["uid"], "allowed": True}
        body = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": answer}
        answered = Response(json.dumps(body), mimetype="application/json")
        inside.labels(endpoint).observe(time.perf_counter() - started)
        return answered

    for path in ("bare", "mutate", "validate"):
        app.add_url_rule(f"/{path}", path, lambda path=path: allow(path), methods=["POST"])
    app.add_url_rule("/readyz", "readyz", lambda: "ok")
    app.add_url_rule("/healthz", "healthz", lambda: "ok")
    app.add_url_rule("/metrics", "metrics", lambda: Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST))
    return app


def ours() -> Flask:
    classes = [StorageClass.from_manifest(o) for o in yaml.safe_load_all(CLASSES.read_text())]
    return create_app(WebhookConfig(facts=StaticFacts(ClusterFacts.of(classes))))


APPS = {"bare": bare, "ours": ours}


def _asgi(app_name: str, threads: int) -> WholeRequests:
    return whole_requests(APPS[app_name](), ServeOptions(bind="", cert_file="", key_file="", threads=threads))


def bare_asgi() -> WholeRequests:  # granian's factories take no arguments: 8 threads, as every stack here
    return _asgi("bare", 8)


def ours_asgi() -> WholeRequests:
    return _asgi("ours", 8)


def bare_wsgi() -> Flask:
    return bare()


def ours_wsgi() -> Flask:
    return ours()


class A2WSGIRequests(WholeRequests):
    """The product's front before it collected whole answers: the body replayed into a2wsgi's middleware."""

    def __init__(self, app: Any, *args: Any) -> None:
        from a2wsgi import WSGIMiddleware

        super().__init__(app, *args)
        self.bridge = WSGIMiddleware(app, workers=self.threads._max_workers)

    async def _forward(self, scope: Scope, send: Send, body: bytes, receive: Receive | None = None) -> None:
        delivered = False

        async def replay() -> dict[str, Any]:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.Event().wait()  # only a disconnect is left to hear
            return {"type": "http.disconnect"}

        await self.bridge(scope, replay, send)


class Gunicorn(WebhookServer):
    def __init__(self, app_name: str, options: ServeOptions, worker: str, loop: str = "asyncio") -> None:
        self.app_name, self.worker, self.loop = app_name, worker, loop
        super().__init__(APPS[app_name], options)

    def load_config(self) -> None:
        super().load_config()
        self.cfg.set("asgi_loop", self.loop)
        if self.worker == "gthread":
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("threads", self.options.threads)

    def load(self) -> Any:
        if self.worker == "gthread":
            return APPS[self.app_name]()
        if self.worker == "a2wsgi":
            app = super().load()
            return A2WSGIRequests(app.app, self.options.threads, app.max_body_bytes, app.body_timeout, app.budget)
        return super().load()


def serve(stack: str, app_name: str, port: int, cert: str, key: str, threads: int) -> None:
    options = ServeOptions(bind=f"127.0.0.1:{port}", cert_file=cert, key_file=key, threads=threads)
    options.keepalive_seconds = KEEPALIVE_SECONDS
    if stack == "gthread":
        Gunicorn(app_name, options, "gthread").run()
    elif stack == "product":
        WebhookServer(APPS[app_name], options).run()
    elif stack == "gunicorn-asgi-a2wsgi":
        Gunicorn(app_name, options, "a2wsgi", "asyncio").run()
    elif stack in ("gunicorn-asgi-asyncio", "gunicorn-asgi-uvloop"):
        Gunicorn(app_name, options, "asgi", stack.rsplit("-", 1)[1]).run()
    elif stack == "uvicorn":
        _uvicorn(app_name, options)
    elif stack == "hypercorn":
        _hypercorn(app_name, options)
    elif stack.startswith("granian"):
        _granian(app_name, options, stack.split("-")[1])
    else:
        raise SystemExit(f"unknown stack {stack}; one of {', '.join(STACKS)}")


def _uvicorn(app_name: str, options: ServeOptions) -> None:
    import uvicorn

    tls = ReloadingTLSContext(options.cert_file, options.key_file)
    config = uvicorn.Config(
        _asgi(app_name, options.threads),
        host="127.0.0.1",
        port=int(options.bind.rsplit(":", 1)[1]),
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
        timeout_keep_alive=options.keepalive_seconds,
        ssl_context_factory=lambda _config, _default: tls.listener(),
    )
    uvicorn.Server(config).run()


def _hypercorn(app_name: str, options: ServeOptions) -> None:
    import ssl

    import uvloop
    from hypercorn.asyncio import serve as hypercorn_serve
    from hypercorn.config import Config

    tls = ReloadingTLSContext(options.cert_file, options.key_file)

    class TLSConfig(Config):
        @property
        def ssl_enabled(self) -> bool:
            return True

        def create_ssl_context(self) -> ssl.SSLContext:
            context = tls.listener()
            context.set_alpn_protocols(self.alpn_protocols)
            return context

    config = TLSConfig()
    config.bind = [options.bind]
    config.keep_alive_timeout = options.keepalive_seconds
    config.loglevel = "WARNING"
    uvloop.run(hypercorn_serve(_asgi(app_name, options.threads), config))  # type: ignore[arg-type]


def _granian(app_name: str, options: ServeOptions, interface: str) -> None:
    from granian.constants import Interfaces, SSLProtocols
    from granian.server import Server

    sys.path.insert(0, str(Path(__file__).parent))
    Server(
        f"serving:{app_name}_{interface}",
        address="127.0.0.1",
        port=int(options.bind.rsplit(":", 1)[1]),
        interface=Interfaces.ASGI if interface == "asgi" else Interfaces.WSGI,
        workers=1,
        blocking_threads=options.threads if interface == "wsgi" else 1,
        factory=True,
        ssl_cert=Path(options.cert_file),
        ssl_key=Path(options.key_file),
        ssl_protocol_min=SSLProtocols.tls12,
        working_dir=Path(__file__).parent,
        log_level="warning",  # type: ignore[arg-type]
    ).serve()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stack", choices=STACKS)
    parser.add_argument("app", choices=sorted(APPS))
    parser.add_argument("port", type=int)
    parser.add_argument("cert")
    parser.add_argument("key")
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    serve(args.stack, args.app, args.port, args.cert, args.key, args.threads)


if __name__ == "__main__":
    main()
