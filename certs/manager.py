"""Keeping the webhook's certificate valid with no outage: the Secrets renewed, the CA bundle injected.

One pass (``sync``) reads the CA Secret and the serving Secret, plans their material (rotation.py), injects the bundle
into the webhook configurations *first* -- so the API server trusts a new CA before any webhook serves a certificate
it signed -- then writes the CA Secret, then the serving Secret, each only when what it should hold differs from what
it holds. A bundle someone overwrote is put back on the next pass. ``run`` repeats it, at least every ``interval``
seconds and when the next renewal is due, while holding the Lease when leader election is on (the
open-policy-agent/cert-controller pattern: one replica acts, any can take over).
"""

from __future__ import annotations

import datetime
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from certs.inject import inject_ca_bundle
from certs.rotation import Material, Settings, next_due, plan
from kubeclient.resources import SECRETS
from kubeclient.rest import AlreadyExists, ApiError, Kube, NotFound

log = logging.getLogger("wukong.certs")
Clock = Callable[[], datetime.datetime]
TLS_TYPE = "kubernetes.io/tls"


@dataclass
class CertificateManager:
    """``secret``: what the webhook serves from (and may read); ``ca_secret``: the CA and its key, which only this
    manager reads."""

    kube: Kube
    namespace: str
    secret: str
    ca_secret: str
    settings: Settings
    mutating: list[str]
    validating: list[str]
    clock: Clock = lambda: datetime.datetime.now(datetime.UTC)

    def sync(self) -> Material:
        ca_existing, serving_existing = self._get(self.ca_secret), self._get(self.secret)
        current = Material.from_secrets(_data(ca_existing), _data(serving_existing))
        material, reasons = plan(current, self.settings, self.clock())
        inject_ca_bundle(self.kube, material.bundle_pem, self.mutating, self.validating)
        wrote_ca = self._write(self.ca_secret, ca_existing, material.ca_secret_data())
        wrote_serving = self._write(self.secret, serving_existing, material.serving_secret_data())
        if reasons:
            log.info(
                "renewed the webhook certificate in Secrets %s/%s and %s: %s",
                self.namespace,
                self.ca_secret,
                self.secret,
                "; ".join(reasons),
            )
        elif wrote_ca or wrote_serving:
            log.info(
                "wrote Secrets %s/%s (the CA) and %s (the serving pair) from the material they held",
                self.namespace,
                self.ca_secret,
                self.secret,
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

    def _get(self, name: str) -> dict[str, Any] | None:
        try:
            return self.kube.get(SECRETS, self.namespace, name)
        except NotFound:
            return None

    def _write(self, name: str, existing: dict[str, Any] | None, data: dict[str, str]) -> bool:
        """Create the Secret or replace its data (a conditional update: a concurrent writer gets a Conflict);
        nothing is sent when it already holds ``data``. Whether it wrote."""
        if existing is not None and _data(existing) == data:
            return False
        secret: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": TLS_TYPE,
            "metadata": {"name": name, "namespace": self.namespace},
            "data": data,
        }
        if existing is None:
            try:
                self.kube.create(SECRETS, secret)
                return True
            except AlreadyExists:
                existing = self.kube.get(SECRETS, self.namespace, name)
        metadata = existing["metadata"]
        secret["metadata"] = {**metadata, "resourceVersion": metadata["resourceVersion"]}
        secret["type"] = existing.get("type", TLS_TYPE)
        self.kube.update(SECRETS, secret)
        return True


def _data(secret: dict[str, Any] | None) -> dict[str, str]:
    return dict((secret or {}).get("data") or {})
