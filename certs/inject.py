"""Injecting a CA bundle into webhook configurations: the certs tool's only contact with the API."""

from __future__ import annotations

import base64
import logging

from kubeclient.resources import MUTATING_WEBHOOK_CONFIGURATIONS, VALIDATING_WEBHOOK_CONFIGURATIONS
from kubeclient.rest import JSON_PATCH, Kube

log = logging.getLogger("wukong.certs")


def inject_ca_bundle(kube: Kube, bundle_pem: bytes, mutating: list[str], validating: list[str]) -> int:
    """Set ``clientConfig.caBundle`` on every webhook of the named configurations; returns how many now hold it.

    Only webhooks whose bundle differs are written (none: no request), and a JSON Patch with a ``test`` of the
    resourceVersion makes each write conditional on what was read, so a concurrent edit of the configuration
    fails loudly instead of being overwritten.
    """
    encoded = base64.b64encode(bundle_pem).decode()
    patched = 0
    targets = [(MUTATING_WEBHOOK_CONFIGURATIONS, n) for n in mutating]
    targets += [(VALIDATING_WEBHOOK_CONFIGURATIONS, n) for n in validating]
    for resource, name in targets:
        current = kube.get(resource, None, name)
        webhooks = current.get("webhooks") or []
        patched += len(webhooks)
        stale = [i for i, hook in enumerate(webhooks) if (hook.get("clientConfig") or {}).get("caBundle") != encoded]
        if not stale:
            continue
        operations = [
            {"op": "test", "path": "/metadata/resourceVersion", "value": current["metadata"]["resourceVersion"]}
        ]
        for index in stale:
            operations.append({"op": "add", "path": f"/webhooks/{index}/clientConfig/caBundle", "value": encoded})
        kube.patch(resource, None, name, operations, content_type=JSON_PATCH)
        log.info("injected the CA bundle into %s %s (%d webhooks)", resource.kind, name, len(stale))
    return patched
