"""Serving from the certificate Secret itself: its tls.crt and tls.key copied to the files the server reads.

With ``serve --tls-secret NAMESPACE/NAME`` the webhook needs no Secret volume: it reads the Secret that
``wukong-certs manage`` keeps (a GET of that one name every few seconds, which RBAC can grant by resourceName) and
writes the pair whenever it changes, key first; the server takes it up from the next TLS handshake. A renewed
certificate is served within seconds, not after the kubelet's volume sync.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from certs.files import write_file
from kubeclient.resources import SECRETS
from kubeclient.rest import ApiError, Kube

log = logging.getLogger("wukong.webhook.tls")


@dataclass
class SecretFiles:
    kube: Kube
    namespace: str
    name: str
    cert_file: Path
    key_file: Path
    poll_seconds: float = 2.0
    _written: tuple[str, str] | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def wait_for_first(self, timeout: float = 300.0) -> None:
        """Block until the Secret holds a pair and it is on disk, saying what it waits for every few seconds."""
        deadline, said = time.monotonic() + timeout, 0.0
        while not self.sync():
            if time.monotonic() > deadline:
                raise TimeoutError(f"Secret {self.namespace}/{self.name} held no tls.crt/tls.key after {timeout:.0f}s")
            if time.monotonic() - said > 5:
                log.info("waiting for Secret %s/%s (kept by wukong-certs manage)", self.namespace, self.name)
                said = time.monotonic()
            self._stop.wait(0.5)

    def start(self) -> SecretFiles:
        threading.Thread(target=self._follow, name="tls-secret", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def sync(self) -> bool:
        """Copy the pair if it changed; whether there is one on disk."""
        try:
            data = self.kube.get(SECRETS, self.namespace, self.name).get("data") or {}
        except ApiError as error:
            log.warning("cannot read Secret %s/%s: %s", self.namespace, self.name, error)
            return self._written is not None
        pair = (data.get("tls.crt") or "", data.get("tls.key") or "")
        if not all(pair):
            return self._written is not None
        if pair != self._written:
            write_file(self.key_file, base64.b64decode(pair[1]), 0o600)
            write_file(self.cert_file, base64.b64decode(pair[0]), 0o644)
            self._written = pair
            log.info("wrote the serving certificate from Secret %s/%s", self.namespace, self.name)
        return True

    def _follow(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            self.sync()
