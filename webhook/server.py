"""Serving the Flask app with gunicorn over TLS, with the certificate re-read when its files change.

gunicorn wraps every accepted connection with the context its ``ssl_context`` hook returns. The hook
here keeps one context and builds a new one only when the certificate or key file changed on disk
(Secret volumes are updated in place by an atomic symlink swap), so a rotated certificate is served
from the next connection on, with no restart and no failed request. A half-written pair that does not
load keeps the previous context until the files are consistent again.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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


@dataclass
class ServeOptions:
    bind: str
    cert_file: str
    key_file: str
    threads: int = 8
    keepalive_seconds: int = 30
    graceful_timeout_seconds: int = 20


class WebhookServer(BaseApplication):
    """One gunicorn worker with threads: the cache and the metrics live in a single process."""

    def __init__(self, app_factory: Callable[[], Flask], options: ServeOptions) -> None:
        self.app_factory, self.options = app_factory, options
        super().__init__()

    def load_config(self) -> None:
        tls = ReloadingTLSContext(self.options.cert_file, self.options.key_file)  # fails early on bad files
        settings = {
            "bind": [self.options.bind],
            "workers": 1,
            "worker_class": "gthread",
            "threads": self.options.threads,
            "keepalive": self.options.keepalive_seconds,
            "graceful_timeout": self.options.graceful_timeout_seconds,
            "certfile": self.options.cert_file,
            "keyfile": self.options.key_file,
            "ssl_context": lambda _conf, _factory: tls.get(),
            "accesslog": None,
            "errorlog": "-",
            "loglevel": "info",
            "proc_name": "wukong-webhook",
        }
        for key, value in settings.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        return self.app_factory()
