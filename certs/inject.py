"""Injecting a CA bundle into webhook configurations: the certs tool's only contact with the API."""

from __future__ import annotations

import base64

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kubeclient import load_api_client

MUTATING, VALIDATING = "mutating", "validating"


def inject_ca_bundle(api: client.ApiClient, bundle_pem: bytes, mutating: list[str], validating: list[str]) -> int:
    """Set ``clientConfig.caBundle`` on every webhook of the named configurations; returns how many.

    A JSON Patch with a ``test`` of the resourceVersion makes each write conditional on what was read,
    so a concurrent edit of the configuration fails loudly instead of being overwritten.
    """
    registration = client.AdmissionregistrationV1Api(api)
    encoded = base64.b64encode(bundle_pem).decode()
    patched = 0
    targets = [(MUTATING, n) for n in mutating] + [(VALIDATING, n) for n in validating]
    for kind, name in targets:
        read, patch = (
            (registration.read_mutating_webhook_configuration, registration.patch_mutating_webhook_configuration)
            if kind == MUTATING
            else (
                registration.read_validating_webhook_configuration,
                registration.patch_validating_webhook_configuration,
            )
        )
        current = read(name)
        operations = [{"op": "test", "path": "/metadata/resourceVersion", "value": current.metadata.resource_version}]
        for index, _ in enumerate(current.webhooks or []):
            operations.append({"op": "add", "path": f"/webhooks/{index}/clientConfig/caBundle", "value": encoded})
        patch(name, operations)
        patched += len(current.webhooks or [])
    return patched


__all__ = ["ApiException", "inject_ca_bundle", "load_api_client"]
