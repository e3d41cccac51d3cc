"""The offline checker: one object run through mutation then validation, as the API server would.

It builds the same AdmissionRequests the API server sends and passes them to the same decision code
the server runs, so a verdict in a user's CI pipeline is the verdict ``kubectl apply`` will meet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from webhook import admission
from webhook.admission import AdmissionRequest, Endpoint
from webhook.facts import ClusterFacts


@dataclass
class CheckResult:
    allowed: bool
    object: dict[str, Any]
    patch: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed,
            "object": self.object,
            "patch": self.patch,
            "message": self.message,
            "warnings": self.warnings,
        }


def check(new: dict[str, Any], old: dict[str, Any] | None, facts: ClusterFacts) -> CheckResult:
    mutated = admission.decide(_request(new, old), Endpoint.MUTATE, facts)
    if not mutated.allowed:
        return CheckResult(False, new, message=mutated.message, warnings=mutated.warnings)
    defaulted = mutated.object if mutated.object is not None else new
    validated = admission.decide(_request(defaulted, old), Endpoint.VALIDATE, facts)
    return CheckResult(
        allowed=validated.allowed,
        object=defaulted,
        patch=mutated.patch,
        message=validated.message,
        warnings=mutated.warnings + validated.warnings,
    )


def _request(new: dict[str, Any], old: dict[str, Any] | None) -> AdmissionRequest:
    group, _, version = str(new.get("apiVersion", "")).rpartition("/")
    request: AdmissionRequest = {
        "uid": "offline-check",
        "kind": {"group": group, "version": version, "kind": str(new.get("kind", ""))},
        "operation": "UPDATE" if old is not None else "CREATE",
        "object": new,
    }
    if old is not None:
        request["oldObject"] = old
    return request
