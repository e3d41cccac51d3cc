"""M6: a plaintext password never rests in a Wukong: the mutating webhook stores its hash and scrubs the
last-applied annotation; no message ever shows a password's value."""

from __future__ import annotations

import copy
import json

import jsonpatch
import pytest

from tests.builders import disk, facts, wukong
from webhook import validation
from webhook.admission import PASSWORD_HASHED, Endpoint, decide
from webhook.defaulting import LAST_APPLIED, default, patch
from wukong.cloudinit import hash_password, password_matches

SECRET = "s3cret-Pass-7f2c"


def with_user(**user) -> dict:
    return wukong(disk("system", storageClassName="longhorn", boot=True), cloudInitUser={"name": "fedora", **user})


def applied_with_kubectl(obj: dict) -> dict:
    """As kubectl apply sends it: the manifest itself in the last-applied annotation."""
    sent = copy.deepcopy(obj)
    sent["metadata"]["annotations"] = {LAST_APPLIED: json.dumps(obj) + "\n"}
    return sent


def request(new: dict, old: dict | None = None) -> dict:
    kind = {"group": "vm.novasphere.dev", "version": "v1alpha1", "kind": "Wukong"}
    operation = "UPDATE" if old is not None else "CREATE"
    return {"uid": "u", "kind": kind, "operation": operation, "namespace": "default", "object": new, "oldObject": old}


def test_a_password_is_stored_as_its_hash_and_nowhere_in_clear():
    sent = applied_with_kubectl(with_user(password=SECRET))
    decision = decide(request(sent), Endpoint.MUTATE, facts())
    assert decision.allowed and decision.warnings == [PASSWORD_HASHED]
    stored = jsonpatch.apply_patch(sent, decision.patch)
    assert SECRET not in json.dumps(stored)
    user = stored["spec"]["cloudInitUser"]
    assert "password" not in user and password_matches(SECRET, user["passwordHash"])
    last_applied = json.loads(stored["metadata"]["annotations"][LAST_APPLIED])
    assert last_applied["spec"]["cloudInitUser"] == {"name": "fedora", "passwordHash": user["passwordHash"]}


def test_re_applying_the_same_password_keeps_the_stored_hash():
    stored, _ = default(with_user(password=SECRET), None, facts())
    again, errors = default(with_user(password=SECRET), stored, facts())
    assert errors == []
    assert again["spec"]["cloudInitUser"] == stored["spec"]["cloudInitUser"], "a new salt would restart the VM"


def test_server_side_apply_merging_the_password_beside_its_hash_keeps_the_hash():
    stored, _ = default(with_user(password=SECRET), None, facts())
    merged = copy.deepcopy(stored)
    merged["spec"]["cloudInitUser"]["password"] = SECRET
    again, errors = default(merged, stored, facts())
    assert errors == [] and again["spec"]["cloudInitUser"] == stored["spec"]["cloudInitUser"]


def test_a_changed_password_gets_a_new_hash():
    stored, _ = default(with_user(password=SECRET), None, facts())
    merged = copy.deepcopy(stored)
    merged["spec"]["cloudInitUser"]["password"] = "another-one"
    changed, errors = default(merged, stored, facts())
    assert errors == []
    assert password_matches("another-one", changed["spec"]["cloudInitUser"]["passwordHash"])


def test_a_password_beside_a_hash_of_something_else_is_refused_without_showing_either():
    obj = with_user(password=SECRET, passwordHash=hash_password("other"))
    _, errors = default(obj, None, facts())
    assert [str(e) for e in errors] == [
        "spec.cloudInitUser.passwordHash: Forbidden: set password or passwordHash, not both"
    ]


def test_a_last_applied_annotation_that_is_not_json_is_dropped_when_it_may_hold_the_password():
    sent = with_user(password=SECRET)
    sent["metadata"]["annotations"] = {LAST_APPLIED: f"password: {SECRET}", "team": "a"}
    stored, _ = default(sent, None, facts())
    assert stored["metadata"]["annotations"] == {"team": "a"}
    assert jsonpatch.apply_patch(sent, patch(sent, stored)) == stored


def test_a_wukong_without_a_password_is_left_alone():
    obj = applied_with_kubectl(with_user(passwordHash=hash_password(SECRET)))
    stored, _ = default(obj, None, facts())
    assert stored["metadata"] == obj["metadata"] and stored["spec"]["cloudInitUser"] == obj["spec"]["cloudInitUser"]


@pytest.mark.parametrize(
    "password",
    [12345, ["s3cret"], {"s3cret": 1}, "x" * 300, "nul\x00inside"],
    ids=["a-number", "a-list", "an-object", "too-long", "with-nul"],
)
def test_a_password_that_cannot_be_stored_is_refused_without_echoing_it(password):
    decision = decide(request(with_user(password=password)), Endpoint.MUTATE, facts())
    assert not decision.allowed
    assert any("spec.cloudInitUser.password" in str(e) for e in decision.errors)
    for shown in ("s3cret", "xxxxxxxxxx", "nul", "12345"):
        assert shown not in decision.message


def test_a_hash_that_is_not_a_crypt_hash_is_refused_without_showing_it():
    errors, _ = validation.validate(with_user(passwordHash=SECRET), None, facts())
    assert [e.type.value for e in errors] == ["Invalid value"]
    assert SECRET not in str(errors[0]) and "(redacted)" in str(errors[0])
