"""Any field may arrive as any JSON type: the answer is a field error, never a crash (sizes and depths: test_bounds)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.builders import disk, facts, wukong
from webhook import admission
from webhook.admission import Endpoint
from webhook.app import create_app

VALUES: list[Any] = [None, True, 0, -1, 1.5, "", "x", [], ["x"], {}, {"a": 1}, "9" * 5000, [[[[]]]]]


def sample() -> dict[str, Any]:
    obj = wukong(
        disk("system", storageClassName="longhorn", boot=True, image="docker://a/b:1"),
        disk("data", storageClassName="longhorn"),
    )
    obj["spec"].update(startStrategy={"autoStart": True}, volumeRetentionPolicy={"whenDeleted": "Retain"})
    return obj


def paths(obj: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for key, value in items:
        yield from paths(value, (*prefix, key))


def replaced(obj: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    target = obj
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = copy.deepcopy(value)
    return obj


def shown(path: tuple[Any, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def request(operation: str, new: Any, old: Any = None) -> admission.AdmissionRequest:
    kind = {"group": "vm.novasphere.dev", "version": "v1alpha1", "kind": "Wukong"}
    return {"uid": "u", "kind": kind, "operation": operation, "object": new, "oldObject": old}  # type: ignore[typeddict-item]


def kind_of(value: Any) -> str:
    return "number" if isinstance(value, (int, float)) and not isinstance(value, bool) else type(value).__name__


CASES = [(p, v) for p in paths(sample()) if p and p[0] == "spec" for v in VALUES]


@pytest.mark.parametrize("endpoint", list(Endpoint))
def test_every_spec_field_as_every_json_type_is_answered_with_field_errors(endpoint):
    base, crashes, silent = sample(), [], []
    for path, value in CASES:
        new = replaced(base, path, value)
        for operation, old in (("CREATE", None), ("UPDATE", base), ("UPDATE", new)):
            try:
                decision = admission.decide(request(operation, new if old is not new else base, old), endpoint, facts())
                admission.review(request(operation, new), decision)
            except Exception as error:  # what this test looks for
                crashes.append(f"{shown(path)}={value!r:.20}: {type(error).__name__}: {error}")
                continue
            original = base
            for step in path:
                original = original[step]
            # null is how a manifest leaves a field unset (the API server prunes it): defaulting may fill it.
            wrong_type = operation == "CREATE" and value is not None and kind_of(value) != kind_of(original)
            if wrong_type and (decision.allowed or shown(path) not in decision.message):
                silent.append(f"{shown(path)}={value!r:.20} -> {decision.message[:120]!r}")
    assert crashes == []
    assert silent == [], "\n".join(["a value of the wrong type was not refused at its path:", *silent])
    print(f"\n{len(CASES) * 3} hostile reviews on /{endpoint.value}: 0 crashes, every type error named its path")


@pytest.mark.parametrize("metadata", [None, "x", 5, ["a"], {"name": ["x"], "namespace": {"a": 1}}])
def test_a_metadata_that_is_not_an_object_is_answered_not_an_internal_error(metadata):
    obj = sample()
    obj["metadata"] = metadata
    body = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request("CREATE", obj)}
    reply = create_app().test_client().post("/validate", data=json.dumps(body))
    assert reply.status_code == 200
    assert reply.get_json()["response"].get("status", {}).get("reason") != "InternalError"


def test_the_patch_built_from_defaulting_always_yields_the_defaulted_object():
    """defaulting.patch compares only where defaulting writes; applied to the request it must give the copy."""
    import jsonpatch

    from webhook import defaulting

    base = sample()
    bare = wukong(disk("a"), disk("b", image="docker://x/y:1"), disk("c", boot=False))
    objects = [base, bare, *(replaced(base, path, value) for path, value in CASES)]
    objects.append(replaced(bare, ("spec", "volumeRetentionPolicy"), {}))
    objects.append(replaced(bare, ("spec", "disks", 0, "odd/key~"), None))
    for new in objects:
        for old in (None, base):
            untouched = copy.deepcopy(new)
            defaulted, _ = defaulting.default(new, old, facts())
            assert new == untouched, "defaulting wrote into the request"
            patch = defaulting.patch(new, defaulted)
            assert jsonpatch.apply_patch(new, patch) == defaulted, (new, patch)


def test_nothing_passes_the_fast_schema_check_that_jsonschema_refuses():
    from webhook import validation

    for path, value in CASES:
        obj = replaced(sample(), path, value)
        try:
            validation._fast_check()(obj)
        except Exception:
            continue
        assert list(validation._validator().iter_errors(obj)) == [], f"{shown(path)}={value!r:.30}"
