import base64
import json

import jsonpatch
import pytest

from tests.builders import disk, facts, wukong
from webhook.app import StaticFacts, WebhookConfig, create_app


class NotReady(StaticFacts):
    def ready(self) -> bool:
        return False


@pytest.fixture
def client():
    return create_app(WebhookConfig(facts=StaticFacts(facts()))).test_client()


def review(obj, old=None, operation="CREATE", uid="e911857d-c318-11e8-bbad-025000000001", kind=None):
    request = {
        "uid": uid,
        "kind": kind or {"group": "vm.novasphere.dev", "version": "v1alpha1", "kind": "Wukong"},
        "operation": operation,
        "object": obj,
    }
    if old is not None:
        request["oldObject"] = old
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


def answer(client, path, body):
    reply = client.post(path, json=body)
    assert reply.status_code == 200, reply.text
    return reply.get_json()["response"]


def test_mutate_echoes_the_uid_and_returns_a_patch_that_applies_cleanly(client):
    obj = wukong(disk("system", image="docker://x/y"), disk("data", "500Gi"))
    response = answer(client, "/mutate", review(obj, uid="abc-123"))
    assert response["uid"] == "abc-123"
    assert response["allowed"] is True
    assert response["patchType"] == "JSONPatch"
    patched = jsonpatch.apply_patch(obj, json.loads(base64.b64decode(response["patch"])))
    assert [(d["storageClassName"], d["boot"]) for d in patched["spec"]["disks"]] == [
        ("longhorn", True),
        ("longhorn", False),
    ]


def test_mutating_a_complete_object_sends_no_patch(client):
    obj = wukong(
        disk("system", storageClassName="longhorn", boot=True), volumeRetentionPolicy={"whenDeleted": "Retain"}
    )
    response = answer(client, "/mutate", review(obj))
    assert response == {"uid": response["uid"], "allowed": True}


def test_a_shrink_is_denied_as_invalid_with_the_field_path_as_a_cause(client):
    """422 Invalid with causes, as Kubernetes answers a PVC shrink: kubectl prints it in one line."""
    old = wukong(disk("system", "500Gi", storageClassName="longhorn", boot=True))
    new = wukong(disk("system", "400Gi", storageClassName="longhorn", boot=True))
    response = answer(client, "/validate", review(new, old, operation="UPDATE"))
    assert response["allowed"] is False
    assert response["status"] == {
        "code": 422,
        "reason": "Invalid",
        "message": 'spec.disks[0].size: Forbidden: disk "system" cannot shrink from 500Gi to 400Gi; '
        "disks can only grow",
        "details": {
            "name": "vm1",
            "group": "vm.novasphere.dev",
            "kind": "Wukong",
            "causes": [
                {
                    "reason": "FieldValueForbidden",
                    "message": 'Forbidden: disk "system" cannot shrink from 500Gi to 400Gi; disks can only grow',
                    "field": "spec.disks[0].size",
                }
            ],
        },
    }
    assert response["warnings"] == ["denied by the Wukong admission webhook: 1 field error"]


def test_an_invalid_object_is_denied_with_422(client):
    response = answer(client, "/validate", review(wukong(disk("system", "lots", storageClassName="x", boot=True))))
    assert response["status"]["code"] == 422
    assert response["warnings"] == [
        'spec.disks[0].storageClassName: StorageClass "x" does not exist; disk "system" stays Pending until it does',
        "denied by the Wukong admission webhook: 1 field error",
    ]


def test_another_kind_is_allowed_with_a_warning(client):
    kind = {"group": "apps", "version": "v1", "kind": "Deployment"}
    response = answer(client, "/validate", review({"kind": "Deployment"}, kind=kind))
    assert response["allowed"] is True
    assert "does not handle" in response["warnings"][0]


def test_delete_is_allowed(client):
    response = answer(client, "/validate", review(None, wukong(disk("a")), operation="DELETE"))
    assert response["allowed"] is True


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"{not json", "the request body is not valid JSON"),
        (b"", "the request body is empty"),
        (b"[1, 2]", "expected a JSON object (an AdmissionReview), got list"),
        (
            json.dumps({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview"}).encode(),
            'apiVersion "admission.k8s.io/v1beta1"',
        ),
        (
            json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}).encode(),
            "the AdmissionReview has no request",
        ),
        (json.dumps(review(wukong(), uid="")).encode(), "request.uid is missing"),
        (json.dumps(review(wukong(), operation="PATCH")).encode(), 'request.operation "PATCH" is not'),
        (json.dumps(review("a string")).encode(), "request.object is not an object"),
        (b"[" * 5000 + b"]" * 5000, "the request body is nested too deeply to decode"),
        (b"[" + b"[]," * 50000 + b"[]]", "the request body holds 50002 JSON objects and arrays"),
    ],
    ids=[
        "malformed-json",
        "empty",
        "not-an-object",
        "wrong-version",
        "no-request",
        "no-uid",
        "bad-operation",
        "object-not-a-dict",
        "deeply-nested",
        "too-many-containers",
    ],
)
@pytest.mark.parametrize("path", ["/mutate", "/validate"])
def test_bad_bodies_get_400_with_a_one_line_reason(client, path, data, reason):
    reply = client.post(path, data=data, content_type="application/json")
    assert reply.status_code == 400
    assert reason in reply.text
    assert reply.text.count("\n") == 1
    assert "Traceback" not in reply.text


def test_a_body_over_3_mib_gets_413(client):
    reply = client.post("/validate", data=b" " * (3 * 1024 * 1024 + 1), content_type="application/json")
    assert reply.status_code == 413
    assert reply.text == "request body is larger than 3145728 bytes\n"


def test_a_failing_decision_is_denied_inside_the_review_never_a_500(client, monkeypatch):
    def explode(*_args):
        raise RuntimeError("boom")

    monkeypatch.setattr("webhook.validation.validate", explode)
    response = answer(client, "/validate", review(wukong(disk("a"))))
    assert response["allowed"] is False
    assert response["status"]["code"] == 500
    assert "boom" not in response["status"]["message"]


def test_get_on_an_admission_path_is_405(client):
    assert client.get("/mutate").status_code == 405


def test_health_and_readiness(client):
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    not_ready = create_app(WebhookConfig(facts=NotReady())).test_client()
    assert not_ready.get("/readyz").status_code == 503


def test_metrics_count_requests_by_endpoint_operation_and_verdict(client):
    client.post("/mutate", json=review(wukong(disk("a"))))
    client.post("/validate", data=b"nope")
    text = client.get("/metrics").text
    assert 'wukong_webhook_requests_total{endpoint="mutate",operation="CREATE",verdict="patched"} 1.0' in text
    assert 'wukong_webhook_requests_total{endpoint="validate",operation="",verdict="bad_request"} 1.0' in text
    assert 'wukong_webhook_request_duration_seconds_count{endpoint="mutate"} 1.0' in text


def test_the_mutating_endpoint_refuses_a_shrink_before_the_crd_rules_run(client):
    """The API server runs CEL between mutating and validating admission: refusing here shows our message."""
    old = wukong(disk("system", "500Gi", storageClassName="longhorn", boot=True))
    new = wukong(disk("system", "400Gi"))
    response = answer(client, "/mutate", review(new, old, operation="UPDATE"))
    assert response["allowed"] is False
    assert response["status"]["message"].startswith('spec.disks[0].size: Forbidden: disk "system" cannot shrink')
    assert "patch" not in response


FIRST_REQUESTS = """
import json, sys
import fastjsonschema, jsonschema
from tests.builders import disk, facts, wukong
from tests.unit.test_http import review
from webhook.app import StaticFacts, WebhookConfig, create_app
from wukong import manifests

client = create_app(WebhookConfig(facts=StaticFacts(facts()))).test_client()


def compiled(*_args, **_kwargs):
    raise AssertionError("a request read or compiled a schema")


fastjsonschema.compile = manifests.load_objects = jsonschema.Draft7Validator = compiled
created = wukong(disk("system", image="docker://x/y"), disk("data", "500Gi"), name="first")
grown = wukong(disk("system", storageClassName="longhorn", boot=True), disk("data", "600Gi"), name="first")
refused = wukong(disk("system"), cpu="two", name="first")
answers = [
    client.post("/mutate", json=review(created)).get_json()["response"]["allowed"],
    client.post("/validate", json=review(grown, old=created, operation="UPDATE")).get_json()["response"]["allowed"],
    client.post("/validate", json=review(refused)).get_json()["response"]["allowed"],
]
print(json.dumps(answers))
"""


def test_the_first_requests_of_a_process_find_the_schemas_read_and_compiled():
    """In a fresh interpreter: once the application exists, reading the CRD or compiling a schema fails loudly."""
    import subprocess
    import sys
    from pathlib import Path

    done = subprocess.run(
        [sys.executable, "-c", FIRST_REQUESTS],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [True, True, False]
