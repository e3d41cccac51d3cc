"""What a decision reads or compiles once, done before the server serves: no request waits on it.

The first decision of a process reads the CRD (YAML, ~150 ms), compiles its schema to Python (fastjsonschema,
~60 ms) and fills the small caches of every rule; a refused object builds jsonschema's validator too. Left to the
first requests, that time lands on all the request threads at once (the caches are not locked, so each thread
that gets there first compiles its own copy): the first second after a start answered in up to 0.7 s, against a
few milliseconds afterwards. ``warm()`` runs both endpoints' decisions on a sample Wukong -- a CREATE, an UPDATE
that grows a disk, and a CREATE that is refused -- before the application is handed to the server.
"""

from __future__ import annotations

import copy
from typing import Any

from webhook import admission
from webhook.admission import Endpoint
from webhook.facts import ClusterFacts
from wukong import api
from wukong.storageclass import StorageClass

_CLASS = StorageClass("warm-up", "warm-up.example", allow_volume_expansion=True, is_default=True)
_SAMPLE: dict[str, Any] = {
    "apiVersion": api.API_VERSION,
    "kind": api.KIND,
    "metadata": {"name": "warm-up", "namespace": "warm-up"},
    "spec": {
        "cpu": 2,
        "memory": "4Gi",
        "disks": [
            {"name": "system", "size": "20Gi", "image": "docker://quay.io/containerdisks/fedora:40"},
            {"name": "data", "size": "100Gi"},
        ],
    },
}


def warm() -> None:
    """Decide a CREATE, an UPDATE and a refused CREATE on both endpoints, and frame each answer; raises if any
    decision is not the one expected (the sample, or a rule, changed: warming must still reach every path)."""
    facts = ClusterFacts.of([_CLASS])
    created = _decide("CREATE", _SAMPLE, None, Endpoint.MUTATE, facts)
    _decide("CREATE", created, None, Endpoint.VALIDATE, facts)
    grown = copy.deepcopy(created)
    grown["spec"]["disks"][1]["size"] = "200Gi"
    _decide("UPDATE", grown, created, Endpoint.MUTATE, facts)
    _decide("UPDATE", grown, created, Endpoint.VALIDATE, facts)
    refused = copy.deepcopy(created)
    refused["spec"]["cpu"] = "two"
    _decide("CREATE", refused, None, Endpoint.VALIDATE, facts, allowed=False)


def _decide(
    operation: str,
    new: dict[str, Any],
    old: dict[str, Any] | None,
    endpoint: Endpoint,
    facts: ClusterFacts,
    allowed: bool = True,
) -> dict[str, Any]:
    request: dict[str, Any] = {
        "uid": "warm-up",
        "kind": {"group": api.GROUP, "version": api.VERSION, "kind": api.KIND},
        "operation": operation,
        "namespace": "warm-up",
        "object": copy.deepcopy(new),
    }
    if old is not None:
        request["oldObject"] = copy.deepcopy(old)
    parsed = admission.parse_request(
        {"apiVersion": admission.REVIEW_API_VERSION, "kind": "AdmissionReview", "request": request}
    )
    decision = admission.decide(parsed, endpoint, facts)
    admission.review(parsed, decision)
    if decision.allowed is not allowed or decision.object is None:
        raise RuntimeError(f"warming up: {endpoint.value} {operation} was not decided as expected: {decision.message}")
    return decision.object
