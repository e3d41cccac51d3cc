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
from webhook.field import FieldError, kubectl_message, quoted
from wukong import api, labels


@dataclass
class CheckResult:
    allowed: bool
    object: dict[str, Any]
    patch: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""
    warnings: list[str] = field(default_factory=list)
    errors: list[FieldError] = field(default_factory=list)
    undecided: list[str] = field(default_factory=list)  # why the verdict may not be the cluster's

    def as_dict(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed,
            "object": self.object,
            "patch": self.patch,
            "message": self.message,
            "warnings": self.warnings,
            "undecided": self.undecided,
        }

    def kubectl_message(self) -> str:
        """The denial as ``kubectl apply`` prints it: one line, or kubectl's ``*`` list."""
        metadata = self.object.get("metadata")
        name = metadata.get("name") if isinstance(metadata, dict) else None
        return kubectl_message(api.KIND, name if isinstance(name, str) else "", self.errors)


def check(
    new: dict[str, Any], old: dict[str, Any] | None, facts: ClusterFacts, labels_from: str = "no cluster"
) -> CheckResult:
    """``labels_from`` names what else than the manifests could have given a namespace's labels (``the cluster``),
    for the message saying they are unknown."""
    request = _request(new, old)
    undecided = unknown_labels(facts, admission.namespace_of(request), labels_from)
    mutated = admission.decide(request, Endpoint.MUTATE, facts)
    if not mutated.allowed:
        return CheckResult(
            False, new, message=mutated.message, warnings=mutated.warnings, errors=mutated.errors, undecided=undecided
        )
    defaulted = mutated.object if mutated.object is not None else new
    validated = admission.decide(_request(defaulted, old), Endpoint.VALIDATE, facts)
    return CheckResult(
        allowed=validated.allowed,
        object=defaulted,
        patch=mutated.patch,
        message=validated.message,
        warnings=mutated.warnings + validated.warnings,
        errors=validated.errors,
        undecided=undecided,
    )


def unknown_labels(facts: ClusterFacts, namespace: str, labels_from: str) -> list[str]:
    """Why a verdict in ``namespace`` may differ from the cluster's: policies that select namespaces by labels the
    check does not know. The webhook always knows them (its cache, or one GET); offline, a namespace that neither a
    Namespace document, the cluster nor --assume-namespace-labels describes has only its name label, and judging
    it as if it had no other label would pass what such a policy refuses."""
    if namespace in facts.namespace_labels:
        return []
    partial = labels.of_namespace(namespace, {})
    found = []
    for policy in sorted(facts.policies, key=lambda p: p.name):
        if keys := policy.selector.unsettled_keys(partial):
            found.append(
                f"WukongPolicy {quoted(policy.name)} selects namespaces by label {', '.join(keys)} and the labels "
                f"of namespace {quoted(namespace)} are unknown (no Namespace document among the manifests, "
                f"{labels_from}); add the Namespace to the input, or state them with --assume-namespace-labels "
                f"{namespace}:KEY=VALUE,... (nothing after the colon: it has none)"
            )
    return found


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
