"""The Flask shell around admission: framing, status codes, health and metrics. No decisions here."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from flask import Flask, Response, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from werkzeug.exceptions import HTTPException

from webhook import admission, bounds, warmup
from webhook.admission import BadReview, Endpoint
from webhook.certmetrics import CertificateValidity
from webhook.facts import ClusterFacts, FactsUnavailable

# The largest review a real Wukong can cause is an update (object and oldObject) of a Wukong at every bound of the
# CRD: each with 256 KiB of annotations (Kubernetes' limit for all of them together), 64 labels, managedFields, a
# spec of 115 kB and a status of 284 kB (eight conditions with 32 KiB messages): 1.43 MiB in all (tests/bodies.py
# builds it; tests/unit/test_bounds.py holds it under half this limit). 3 MiB, the API server's own limit for a
# request body, leaves twice that; and etcd keeps no object over 1.5 MiB, so no stored Wukong comes near.
MAX_BODY_BYTES = 3 * 1024 * 1024
# json.loads makes up to 45 bytes of Python objects of each byte of short lists nested in lists, and at most 13 of
# each byte of anything else. The review above holds 2,370 JSON objects and arrays, counting the brackets in strings
# (annotations) too, as the cheap count below does; a body with twenty times that many is not decoded.
MAX_CONTAINERS = 50_000
log = logging.getLogger("wukong.webhook")


class FactsSource(Protocol):
    """Where cluster facts come from: a file, or a watch-backed cache of the API. ``facts(namespace)`` raises
    FactsUnavailable when what that namespace's requests are judged by cannot be had; ``may_read_secret`` asks the
    API server whether a user may read a Secret (None: there is no API server to ask), and raises
    FactsUnavailable when it cannot be asked."""

    def facts(self, namespace: str | None = None) -> ClusterFacts: ...

    def ready(self) -> bool: ...

    def may_read_secret(self, user: Mapping[str, Any], namespace: str, name: str) -> bool | None: ...


@dataclass
class StaticFacts:
    """Facts from files, with no API server: who may read which Secret is not known, and not judged."""

    value: ClusterFacts = field(default_factory=ClusterFacts)

    def facts(self, namespace: str | None = None) -> ClusterFacts:
        return self.value

    def ready(self) -> bool:
        return True

    def may_read_secret(self, user: Mapping[str, Any], namespace: str, name: str) -> bool | None:
        return None


@dataclass
class WebhookConfig:
    facts: FactsSource = field(default_factory=StaticFacts)
    max_body_bytes: int = MAX_BODY_BYTES
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    certificate_file: str | None = None  # the serving certificate, whose validity /metrics reports


class Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "wukong_webhook_requests",
            "Admission requests by endpoint, operation and verdict.",
            ["endpoint", "operation", "verdict"],
            registry=registry,
        )
        self.latency = Histogram(
            "wukong_webhook_request_duration_seconds",
            "Time to answer an admission request.",
            ["endpoint"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=registry,
        )


def create_app(config: WebhookConfig | None = None) -> Flask:
    """The application, its decisions warmed up (webhook.warmup): it is made before the server listens, so no
    request waits on what the first decision compiles."""
    config = config or WebhookConfig()
    warmup.warm()
    app = Flask("wukong-webhook")
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    metrics = Metrics(config.registry)
    if config.certificate_file:
        config.registry.register(CertificateValidity(config.certificate_file))

    def admit(endpoint: Endpoint) -> Response:
        started = time.perf_counter()
        operation, verdict = "", "bad_request"
        try:
            body = _decode(request.get_data(cache=False))
            review_request = admission.parse_request(body)
            operation = review_request["operation"]
            try:
                namespace = admission.namespace_of(review_request)
                facts = config.facts.facts(namespace)
                decision = admission.decide(
                    review_request, endpoint, facts, _readable_secrets(config.facts, endpoint, review_request)
                )
                verdict, answer = decision.verdict, admission.review(review_request, decision)
                _log_decision(endpoint, review_request, decision)
            except FactsUnavailable as error:
                log.warning("admission %s refused for uid %s: %s", endpoint.value, review_request["uid"], error)
                verdict, answer = "unavailable", admission.unavailable(review_request, str(error))
            except Exception:
                log.exception("admission %s failed for uid %s", endpoint.value, review_request["uid"])
                verdict, answer = "error", admission.internal_error(review_request)
            return _json(answer)
        except BadReview as error:
            return _plain(400, f"bad request: {error}")
        finally:
            metrics.requests.labels(endpoint.value, operation, verdict).inc()
            metrics.latency.labels(endpoint.value).observe(time.perf_counter() - started)

    app.add_url_rule("/mutate", "mutate", lambda: admit(Endpoint.MUTATE), methods=["POST"])
    app.add_url_rule("/validate", "validate", lambda: admit(Endpoint.VALIDATE), methods=["POST"])

    @app.get("/healthz")
    def healthz() -> Response:
        return _plain(200, "ok")

    @app.get("/readyz")
    def readyz() -> Response:
        if config.facts.ready():
            return _plain(200, "ok")
        return _plain(503, "not ready: StorageClass cache not synced yet")

    @app.get("/metrics")
    def metrics_endpoint() -> Response:
        return Response(generate_latest(metrics.registry), mimetype=CONTENT_TYPE_LATEST)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        if error.code == 413:
            return _plain(413, f"request body is larger than {config.max_body_bytes} bytes")
        return _plain(error.code or 400, f"{error.name.lower()}: {request.method} {request.path}")

    return app


def _readable_secrets(
    source: FactsSource, endpoint: Endpoint, review_request: admission.AdmissionRequest
) -> dict[str, bool]:
    """The one API call a decision may need: for a Wukong newly naming a Secret, whether its author may read it
    (on the validating endpoint only, so a request asks once). Raises FactsUnavailable when it cannot be asked."""
    name = admission.secret_to_authorize(review_request) if endpoint is Endpoint.VALIDATE else None
    if name is None:
        return {}
    namespace = admission.namespace_of(review_request)
    allowed = source.may_read_secret(admission.user_of(review_request), namespace, name)
    return {} if allowed is None else {name: allowed}


def _decode(data: bytes) -> object:
    if not data:
        raise BadReview("the request body is empty; expected an AdmissionReview")
    if (containers := data.count(b"{") + data.count(b"[")) > MAX_CONTAINERS:
        raise BadReview(
            f"the request body holds {containers} JSON objects and arrays (counting brackets, in strings too); "
            f"a Wukong's review holds a few thousand, and at most {MAX_CONTAINERS} are decoded"
        )
    try:
        return json.loads(data)
    except ValueError as error:
        raise BadReview(f"the request body is not valid JSON: {error}") from None
    except RecursionError:
        # The decoder stops, cheaply, after about a thousand levels; Kubernetes' own decoder after 10,000.
        raise BadReview(
            f"the request body is nested too deeply to decode; no Wukong field is deeper than {bounds.MAX_DEPTH} levels"
        ) from None


def _json(body: object) -> Response:
    return Response(json.dumps(body), mimetype="application/json")


def _plain(status: int, text: str) -> Response:
    return Response(text + "\n", status=status, mimetype="text/plain")


def _log_decision(endpoint: Endpoint, req: admission.AdmissionRequest, decision: admission.Decision) -> None:
    """One line per decision: who and what, never the object itself (it may carry passwords). Denials at INFO;
    allowed requests, the hot path, at DEBUG."""
    level = logging.INFO if decision.errors else logging.DEBUG
    if not log.isEnabledFor(level):
        return
    obj = req.get("object") or req.get("oldObject") or {}
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    log.log(
        level,
        "%s %s %s/%s uid=%s verdict=%s%s",
        endpoint.value,
        req["operation"],
        str(meta.get("namespace", ""))[:253],
        str(meta.get("name", ""))[:253],
        req["uid"],
        decision.verdict,
        f" reason={decision.message!r}" if decision.errors else "",
    )
