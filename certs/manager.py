"""Keeping the webhook's certificate valid with no outage: the Secret renewed, the CA bundle injected.

One pass (``sync``) reads the Secret, plans its material (rotation.py), injects the bundle into the webhook
configurations *first* -- so the API server trusts a new CA before any webhook serves a certificate it signed --
then writes the Secret. A bundle someone overwrote is put back on the next pass. ``run`` repeats it, at least every
``interval`` seconds and when the next renewal is due, while holding the Lease when leader election is on (the
open-policy-agent/cert-controller pattern: one replica acts, any can take over).
"""

from __future__ import annotations

import datetime
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from certs.inject import inject_ca_bundle
from certs.rotation import Material, Settings, next_due, plan
from kubeclient.resources import SECRETS
from kubeclient.rest import AlreadyExists, ApiError, Kube, NotFound

log = logging.getLogger("wukong.certs")
Clock = Callable[[], datetime.datetime]


@dataclass
class CertificateManager:
    kube: Kube
    namespace: str
    secret: str
    settings: Settings
    mutating: list[str]
    validating: list[str]
    clock: Clock = lambda: datetime.datetime.now(datetime.UTC)

    def sync(self) -> Material:
        try:
            existing: dict | None = self.kube.get(SECRETS, self.namespace, self.secret)
        except NotFound:
            existing = None
        current = Material.from_secret_data((existing or {}).get("data"))
        material, reasons = plan(current, self.settings, self.clock())
        inject_ca_bundle(self.kube, material.bundle_pem, self.mutating, self.validating)
        if reasons:
            self._write(existing, material)
            log.info(
                "renewed the webhook certificate in Secret %s/%s: %s", self.namespace, self.secret, "; ".join(reasons)
            )
        return material

    def run(self, stop: threading.Event, interval: float = 30.0, may_act: Callable[[], bool] = lambda: True) -> None:
        while not stop.is_set():
            wait = interval
            if may_act():
                try:
                    material = self.sync()
                    due = (next_due(material) - self.clock()).total_seconds()
                    wait = max(1.0, min(interval, due))
                except ApiError as error:
                    log.warning("certificate pass failed (%s); retrying in 5s", error)
                    wait = 5.0
            stop.wait(wait)

    def _write(self, existing: dict | None, material: Material) -> None:
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/tls",
            "metadata": {"name": self.secret, "namespace": self.namespace},
            "data": material.secret_data(),
        }
        if existing is None:
            try:
                self.kube.create(SECRETS, secret)
                return
            except AlreadyExists:
                existing = self.kube.get(SECRETS, self.namespace, self.secret)
        metadata = existing["metadata"]
        secret["metadata"] = {**metadata, "resourceVersion": metadata["resourceVersion"]}
        secret["type"] = existing.get("type", secret["type"])
        self.kube.update(SECRETS, secret)
