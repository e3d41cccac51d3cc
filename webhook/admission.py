"""The AdmissionReview (admission.k8s.io/v1) wire format and the pure decisions built on it.

No HTTP here: ``parse_request(body)`` reads a decoded request body, ``decide(request, endpoint, facts)`` judges
it and ``review(request, decision)`` frames the response body, so the Flask shell and the offline checker run
exactly the same code. Requests that are not a usable AdmissionReview raise ``BadReview`` (HTTP 400 in the shell);
denials are ordinary responses.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal, NotRequired, TypedDict

from webhook import bounds, defaulting, validation
from webhook.facts import ClusterFacts
from webhook.field import FieldError, aggregate, causes, count, quoted
from wukong import api
from wukong.spec import Wukong

REVIEW_API_VERSION = "admission.k8s.io/v1"


class BadReview(ValueError):
    """The body is not an AdmissionReview we can answer; the message is the one-line reason."""


class Endpoint(Enum):
    MUTATE = "mutate"
    VALIDATE = "validate"


class GroupVersionKind(TypedDict):
    group: str
    version: str
    kind: str


class AdmissionRequest(TypedDict):
    uid: str
    kind: GroupVersionKind
    operation: Literal["CREATE", "UPDATE", "DELETE", "CONNECT"]
    namespace: NotRequired[str]
    object: NotRequired[dict[str, Any] | None]
    oldObject: NotRequired[dict[str, Any] | None]
    dryRun: NotRequired[bool]
    userInfo: NotRequired[dict[str, Any]]


class StatusDetails(TypedDict):
    name: str
    group: str
    kind: str
    causes: list[dict[str, str]]


class Status(TypedDict):
    code: int
    reason: str
    message: str
    details: NotRequired[StatusDetails]


class AdmissionResponse(TypedDict):
    uid: str
    allowed: bool
    status: NotRequired[Status]
    patchType: NotRequired[Literal["JSONPatch"]]
    patch: NotRequired[str]
    warnings: NotRequired[list[str]]


@dataclass
class Decision:
    """What admission decided, before it is framed as a response."""

    allowed: bool
    errors: list[FieldError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    patch: list[dict[str, Any]] = field(default_factory=list)
    object: dict[str, Any] | None = None

    @property
    def message(self) -> str:
        return aggregate(self.errors) if self.errors else ""

    @property
    def verdict(self) -> str:
        if not self.allowed:
            return "denied"
        return "patched" if self.patch else "allowed"


def parse_request(body: Any) -> AdmissionRequest:
    """The request inside an AdmissionReview, or BadReview saying what is wrong with the body."""
    if not isinstance(body, Mapping):
        raise BadReview(f"expected a JSON object (an AdmissionReview), got {type(body).__name__}")
    if body.get("kind") != "AdmissionReview" or body.get("apiVersion") != REVIEW_API_VERSION:
        raise BadReview(
            f"expected kind AdmissionReview, apiVersion {REVIEW_API_VERSION}; got kind {quoted(body.get('kind'))}, "
            f"apiVersion {quoted(body.get('apiVersion'))}"
        )
    request = body.get("request")
    if not isinstance(request, Mapping):
        raise BadReview("the AdmissionReview has no request")
    if not isinstance(request.get("uid"), str) or not request["uid"]:
        raise BadReview("request.uid is missing")
    if not isinstance(request.get("kind"), Mapping):
        raise BadReview("request.kind is missing")
    if request.get("operation") not in ("CREATE", "UPDATE", "DELETE", "CONNECT"):
        raise BadReview(
            f"request.operation {quoted(request.get('operation'))} is not CREATE, UPDATE, DELETE or CONNECT"
        )
    for key in ("object", "oldObject"):
        if request.get(key) is not None and not isinstance(request[key], Mapping):
            raise BadReview(f"request.{key} is not an object")
    return request  # type: ignore[return-value]


def decide(
    request: AdmissionRequest,
    endpoint: Endpoint,
    facts: ClusterFacts,
    readable_secrets: Mapping[str, bool] | None = None,
) -> Decision:
    """``readable_secrets``: what the API server said of the Secrets ``secret_to_authorize`` named (the shell
    asks it, for the validating endpoint)."""
    kind = request["kind"]
    if (kind.get("group"), kind.get("kind")) != (api.GROUP, api.KIND):
        return Decision(
            allowed=True,
            warnings=[
                f"the Wukong webhook does not handle {quoted(kind.get('kind'))} in group {quoted(kind.get('group'))}; "
                f"check the webhook configuration's rules"
            ],
        )
    new = request.get("object")
    if request["operation"] not in ("CREATE", "UPDATE") or new is None:
        return Decision(allowed=True)
    old = request.get("oldObject") if request["operation"] == "UPDATE" else None
    # Bounds first, on the objects as the API server keeps them: nothing below costs more than the CRD's bounds
    # allow. The old object is what the API server stored, perhaps before a bound was added: only pruned.
    checked = bounds.check(new)
    if checked.errors:
        return Decision(allowed=False, errors=checked.errors, object=new)
    new = checked.object
    if old is not None:
        stored = bounds.pruned(old)
        if stored.errors:
            return Decision(allowed=False, errors=stored.errors, object=new)
        old = stored.object
    facts = facts.in_namespace(namespace_of(request))
    if readable_secrets:
        facts = dataclasses.replace(facts, readable_secrets=readable_secrets)
    if endpoint is Endpoint.MUTATE:
        return _mutate(new, old, facts)
    errors, warnings = validation.validate(new, old, facts)
    return Decision(allowed=not errors, errors=errors, warnings=warnings, object=new)


def secret_to_authorize(request: AdmissionRequest) -> str | None:
    """The Secret a Wukong's create or update newly names in ``spec.sshKeySecret``: KubeVirt copies its values into
    the guest, so the user asking must be one who may read it (a SubjectAccessReview, made by the shell). None
    when there is nothing to ask: no such Secret, the same one as before, or a name the schema refuses anyway."""
    kind = request["kind"]
    if (kind.get("group"), kind.get("kind")) != (api.GROUP, api.KIND) or request["operation"] not in (
        "CREATE",
        "UPDATE",
    ):
        return None
    name = _ssh_key_secret(request.get("object"))
    if name is None or not 0 < len(name) <= MAX_SECRET_NAME:
        return None
    if request["operation"] == "UPDATE" and _ssh_key_secret(request.get("oldObject")) == name:
        return None
    return name


MAX_SECRET_NAME = 253  # a DNS subdomain, as the CRD says


def _ssh_key_secret(obj: Mapping[str, Any] | None) -> str | None:
    spec = obj.get("spec") if isinstance(obj, Mapping) else None
    name = spec.get("sshKeySecret") if isinstance(spec, Mapping) else None
    return name if isinstance(name, str) else None


def user_of(request: AdmissionRequest) -> Mapping[str, Any]:
    """The requesting user as the API server authenticated it (``userInfo``), or an empty one."""
    user = request.get("userInfo")
    return user if isinstance(user, Mapping) else {}


def namespace_of(request: AdmissionRequest) -> str:
    """The request's namespace (the API server fills the object's in before admission; either will do)."""
    given = request.get("namespace")
    if isinstance(given, str) and given:
        return given
    metadata = (request.get("object") or {}).get("metadata")
    found = metadata.get("namespace") if isinstance(metadata, Mapping) else None
    return found if isinstance(found, str) else ""


def _mutate(new: dict[str, Any], old: dict[str, Any] | None, facts: ClusterFacts) -> Decision:
    """Default, then refuse what validation would refuse.

    The API server checks the CRD schema and its CEL rules after mutating admission and before
    validating admission. Refusing here means users read this webhook's message (``disk "data" cannot
    shrink from 500Gi to 400Gi``) rather than the terser CEL safety net's. Warnings are left to the
    validating endpoint, so kubectl does not print them twice.
    """
    before = Wukong(old) if old is not None else None  # the stored object, read once for both
    defaulted, errors = defaulting.default(new, before, facts)
    if not errors:
        errors, _ = validation.validate(defaulted, before, facts)
    if errors:
        return Decision(allowed=False, errors=errors, object=new)
    warnings = [PASSWORD_HASHED] if _has_password(new) and not _has_password(defaulted) else []
    return Decision(allowed=True, patch=defaulting.patch(new, defaulted), object=defaulted, warnings=warnings)


PASSWORD_HASHED = (
    "spec.cloudInitUser.password is stored as its SHA-512 hash in spec.cloudInitUser.passwordHash; "
    "the plaintext is kept nowhere"
)


def _has_password(obj: Mapping[str, Any]) -> bool:
    user = obj.get("spec", {}).get("cloudInitUser") if isinstance(obj.get("spec"), Mapping) else None
    return isinstance(user, Mapping) and "password" in user


DENIED_BY = "denied by the Wukong admission webhook"


def response(request: AdmissionRequest, decision: Decision) -> AdmissionResponse:
    """A denial is ``422 Invalid`` with each field error as a cause, as Kubernetes answers its own validation
    errors: kubectl then prints ``The Wukong "x" is invalid: spec.disks[1].size: Forbidden: ...`` in one line
    (a list for several). A warning names this webhook, so an operator can tell which component refused."""
    framed: AdmissionResponse = {"uid": request["uid"], "allowed": decision.allowed}
    if not decision.allowed:
        metadata = (request.get("object") or request.get("oldObject") or {}).get("metadata")
        name = metadata.get("name") if isinstance(metadata, Mapping) else None
        framed["status"] = {
            "code": 422,
            "reason": "Invalid",
            "message": decision.message,
            "details": {
                "name": name if isinstance(name, str) else "",
                "group": api.GROUP,
                "kind": api.KIND,
                "causes": causes(decision.errors),
            },
        }
        found = count(decision.errors)
        framed["warnings"] = [*decision.warnings, f"{DENIED_BY}: {found} field error{'s' if found != 1 else ''}"]
    if decision.patch:
        framed["patchType"] = "JSONPatch"
        framed["patch"] = base64.b64encode(json.dumps(decision.patch).encode()).decode()
    if decision.warnings and decision.allowed:
        framed["warnings"] = decision.warnings
    return framed


def review(request: AdmissionRequest, decision: Decision) -> dict[str, Any]:
    """The AdmissionReview sent back: same apiVersion, the response echoing the request's uid."""
    return {"apiVersion": REVIEW_API_VERSION, "kind": "AdmissionReview", "response": response(request, decision)}


def unavailable(request: AdmissionRequest, message: str) -> dict[str, Any]:
    """A refusal for a request that cannot be judged yet (a fact could not be read): fail closed, and say to
    retry (503, as the API server says it of itself)."""
    return _refusal(request, 503, "ServiceUnavailable", message)


def internal_error(request: AdmissionRequest) -> dict[str, Any]:
    """A denial for a decision that failed unexpectedly: fail closed, inside the review, never an HTTP 500."""
    return _refusal(
        request, 500, "InternalError", "the Wukong webhook failed to evaluate this object; see the webhook's log"
    )


def _refusal(request: AdmissionRequest, code: int, reason: str, message: str) -> dict[str, Any]:
    response = {"uid": request["uid"], "allowed": False, "status": {"code": code, "reason": reason, "message": message}}
    return {"apiVersion": REVIEW_API_VERSION, "kind": "AdmissionReview", "response": response}
