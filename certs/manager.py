"""Keeping the webhook's certificate valid with no outage: the Secret renewed, the CA bundle injected.

One pass (``sync``) reads the Secret, plans its material (rotation.py), injects the bundle into the webhook
configurations *first* -- so the API server trusts a new CA before any webhook serves a certificate it signed --
then writes the Secret. A bundle someone overwrote is put back on the next pass. ``run`` repeats it, at least every
``interval`` seconds and when the next renewal is due, while holding the Lease when leader election is on (the
open-policy-agent/cert-controller pattern: one replica acts, any can take over).
"""

from __future__ import annotations

import base64
import datetime
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from certs.rotation import Material, Settings, next_due, plan
from kubeclient.resources import MUTATING_WEBHOOK_CONFIGURATIONS, SECRETS, VALIDATING_WEBHOOK_CONFIGURATIONS
from kubeclient.rest import JSON_PATCH, AlreadyExists, ApiError, Kube, NotFound

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
        self._inject(material.bundle_pem)
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

    def _inject(self, bundle: bytes) -> None:
        """Set the bundle on every webhook whose caBundle differs, each write conditional on what was read."""
        encoded = base64.b64encode(bundle).decode()
        targets = [(MUTATING_WEBHOOK_CONFIGURATIONS, n) for n in self.mutating]
        targets += [(VALIDATING_WEBHOOK_CONFIGURATIONS, n) for n in self.validating]
        for resource, name in targets:
            current = self.kube.get(resource, None, name)
            webhooks = current.get("webhooks") or []
            stale = [i for i, w in enumerate(webhooks) if (w.get("clientConfig") or {}).get("caBundle") != encoded]
            if not stale:
                continue
            operations = [
                {"op": "test", "path": "/metadata/resourceVersion", "value": current["metadata"]["resourceVersion"]}
            ]
            operations += [
                {"op": "add", "path": f"/webhooks/{i}/clientConfig/caBundle", "value": encoded} for i in stale
            ]
            self.kube.patch(resource, None, name, operations, content_type=JSON_PATCH)
            log.info("injected the CA bundle into %s %s (%d webhooks)", resource.kind, name, len(stale))

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
