"""The CRD's bounds hold before anything else looks at an object: one error per over-long list, map or string, at its
path, without walking what is beyond a bound; the object decided is the one the API server would keep."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonpatch
import jsonschema
import pytest
import yaml

from tests import bodies
from tests.builders import CLASSES, disk, facts, wukong
from webhook import admission, bounds, field
from webhook.admission import Endpoint
from webhook.app import MAX_BODY_BYTES, MAX_CONTAINERS
from webhook.defaulting import RETENTION
from webhook.facts import ClusterFacts
from webhook.field import MAX_ERRORS_KEPT, MAX_ERRORS_SHOWN, FieldErrors
from wukong import schema
from wukong.policy import Policy

ROOT = Path(__file__).resolve().parents[2]
CRDS = sorted((ROOT / "deploy" / "crd").glob("*.vm.novasphere.dev.yaml"))


def decide(new: dict[str, Any], old: dict[str, Any] | None = None) -> list[admission.Decision]:
    request: Any = bodies.review(new, old)["request"]
    return [admission.decide(request, endpoint, facts()) for endpoint in Endpoint]


def refused(new: dict[str, Any], old: dict[str, Any] | None = None) -> str:
    """The one message both endpoints answer with."""
    mutated, validated = decide(new, old)
    assert not mutated.allowed
    assert mutated.message == validated.message
    return mutated.message


def nested(levels: int, bracket: str = "{") -> Any:
    value: Any = "x"
    for _ in range(levels):
        value = {"a": value} if bracket == "{" else [value]
    return value


def sample() -> dict[str, Any]:
    """A Wukong both endpoints allow as it is."""
    return wukong(
        disk("system", storageClassName="longhorn", boot=True, image="docker://quay.io/containerdisks/fedora:40"),
        disk("data", "500Gi", storageClassName="longhorn", boot=False),
        volumeRetentionPolicy={"whenDeleted": "Retain"},
    )


# The CRDs -------------------------------------------------------------------------------------------------------
def unbounded(node: dict[str, Any], path: str = "") -> Iterator[str]:
    kind = node.get("type")
    if kind == "string" and "maxLength" not in node and "enum" not in node:
        yield f"{path}: a string without maxLength"
    if kind == "array" and "maxItems" not in node:
        yield f"{path}: a list without maxItems"
    if kind == "object" and isinstance(node.get("additionalProperties"), dict) and "maxProperties" not in node:
        yield f"{path}: a map without maxProperties"
    for name, child in (node.get("properties") or {}).items():
        yield from unbounded(child, f"{path}.{name}")
    for key, suffix in (("items", "[]"), ("additionalProperties", "{}")):
        if isinstance(node.get(key), dict):
            yield from unbounded(node[key], path + suffix)


@pytest.mark.parametrize("crd", CRDS, ids=[p.name for p in CRDS])
def test_every_list_map_and_string_of_both_crds_is_bounded(crd):
    for version in yaml.safe_load(crd.read_text())["spec"]["versions"]:
        assert list(unbounded(version["schema"]["openAPIV3Schema"])) == []


@pytest.mark.parametrize("crd", CRDS, ids=[p.name for p in CRDS])
def test_the_charts_crds_are_the_same_files(crd):
    assert (ROOT / "deploy" / "helm" / "wukong" / "crds" / crd.name).read_bytes() == crd.read_bytes()


# One error per bound, at its path ---------------------------------------------------------------------------------
def test_300000_disks_are_one_too_many_error_as_kubernetes_words_it():
    obj = sample()
    obj["spec"]["disks"] = [1] * 300_000
    assert refused(obj) == "spec.disks: Too many: 300000: must have at most 16 items"


def test_the_items_of_an_over_long_list_are_not_looked_at():
    obj = sample()
    obj["spec"]["disks"] = [nested(100_000)] * 17  # each item would be a type error, and is far too deep
    [mutated, _] = decide(obj)
    assert [str(e) for e in mutated.errors] == ["spec.disks: Too many: 17: must have at most 16 items"]


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (
            ("spec", "highAvailability", "nodeSelector"),
            {f"k{i}": "v" for i in range(200_000)},
            "spec.highAvailability.nodeSelector: Too many: 200000: must have at most 64 items",
        ),
        (
            ("spec", "highAvailability", "tolerations"),
            [{"key": "k", "operator": "Exists"}] * 65,
            "spec.highAvailability.tolerations: Too many: 65: must have at most 64 items",
        ),
        (
            ("status", "conditions"),
            [{"type": f"T{i}", "status": "True"} for i in range(9)],
            "status.conditions: Too many: 9: must have at most 8 items",
        ),
        (("status", "volumes"), [{"name": "x"}] * 17, "status.volumes: Too many: 17: must have at most 16 items"),
        (("spec", "memory"), "9" * (3 << 20), "spec.memory: Too long: may not be more than 64 characters"),
        (
            ("spec", "disks", 0, "image"),
            "x" * 2049,
            "spec.disks[0].image: Too long: may not be more than 2048 characters",
        ),
        (("status", "vmName"), "v" * 254, "status.vmName: Too long: may not be more than 253 characters"),
        (("metadata", "name"), "n" * 254, "metadata.name: Too long: may not be more than 253 characters"),
        (
            ("metadata", "annotations"),
            {"note": "x" * (3 << 20)},
            "metadata.annotations: Too long: may not be more than 262144 bytes",
        ),
        (
            ("metadata", "labels"),
            {"app": "v" * 64},
            "metadata.labels.app: Too long: may not be more than 63 characters",
        ),
    ],
    ids=[
        "200000-node-labels",
        "65-tolerations",
        "9-conditions",
        "17-volumes",
        "3-MiB-memory",
        "image-of-2049",
        "vm-name-of-254",
        "name-of-254",
        "3-MiB-annotation",
        "label-value-of-64",
    ],
)
def test_a_value_over_its_bound_is_one_error_at_its_path(path, value, expected):
    obj = sample()
    target = obj
    for step in path[:-1]:
        target = target[step] if isinstance(target, list) else target.setdefault(step, {})
    target[path[-1]] = value
    assert refused(obj) == expected


def test_annotations_may_fill_256_kib_counted_in_bytes_as_kubernetes_counts_them():
    at_limit = sample()
    at_limit["metadata"]["annotations"] = {"note": "x" * (256 * 1024 - len("note"))}
    assert all(d.allowed for d in decide(at_limit))
    two_bytes_each = sample()
    two_bytes_each["metadata"]["annotations"] = {"note": "é" * (128 * 1024)}  # fewer characters than the limit
    assert refused(two_bytes_each) == "metadata.annotations: Too long: may not be more than 262144 bytes"


def test_a_label_key_longer_than_a_qualified_name_is_refused_naming_the_key():
    obj = sample()
    key = "a" * 318
    obj["metadata"]["labels"] = {key: "v"}
    assert refused(obj) == (
        f'metadata.labels: Invalid value: "{key[:256]}"... (318 characters): a key may not be more than 317 characters'
    )


def test_an_enum_value_longer_than_every_allowed_one_is_refused_as_jsonschema_would_without_quoting_it_all():
    obj = sample()
    obj["spec"]["startStrategy"] = {"runStrategy": "x" * (3 << 20)}
    assert refused(obj) == (
        f'spec.startStrategy.runStrategy: Unsupported value: "{"x" * 256}"... ({3 << 20} characters): '
        'supported values: "Always", "RerunOnFailure", "Manual", "Halted", "Once"'
    )
    obj["spec"]["startStrategy"] = {"runStrategy": "Sometimes"}  # no longer than an allowed value: jsonschema says it
    assert refused(obj) == (
        'spec.startStrategy.runStrategy: Unsupported value: "Sometimes": '
        'supported values: "Always", "RerunOnFailure", "Manual", "Halted", "Once"'
    )


# What the API server prunes costs nothing ------------------------------------------------------------------------
def test_200000_unknown_keys_are_pruned_as_the_api_server_prunes_them_and_the_patch_still_applies():
    obj = sample()
    obj["spec"].update(dict.fromkeys((f"u{i}" for i in range(200_000)), 0), deep=nested(100_000, "["))
    obj["metadata"]["unknown"] = nested(100_000)
    del obj["spec"]["disks"][1]["storageClassName"]
    mutated, validated = decide(obj)
    assert mutated.allowed and validated.allowed
    assert mutated.object is not None and set(mutated.object["spec"]) == {"cpu", "memory", "disks", RETENTION}
    patched = jsonpatch.apply_patch(obj, mutated.patch, in_place=True)
    assert [d["storageClassName"] for d in patched["spec"]["disks"]] == ["longhorn", "longhorn"]


def test_a_value_nested_100000_levels_where_a_string_goes_is_a_type_error_at_its_path():
    obj = sample()
    obj["spec"]["disks"][0]["name"] = nested(100_000)
    assert refused(obj).startswith('[spec.disks[0].name: Invalid value: "dict": must be of type string')


def test_kept_metadata_nested_deeper_than_32_levels_is_one_error_at_the_first_value_too_deep():
    obj = sample()
    obj["metadata"]["managedFields"] = [{"manager": "x", "fieldsV1": nested(100_000)}]
    message = refused(obj)
    assert message.startswith("metadata.managedFields[0].fieldsV1" + ".a" * 29 + ': Invalid value: "dict": ')
    assert message.endswith("nested deeper than 32 levels; no Wukong field is")


def test_an_old_object_nested_too_deep_is_refused_and_one_over_a_newer_bound_is_not():
    old = sample()
    old["metadata"]["managedFields"] = [{"fieldsV1": nested(1000)}]
    assert "nested deeper than 32 levels" in refused(sample(), old)
    legacy = sample()
    legacy["spec"]["highAvailability"] = {"tolerations": [{"key": f"k{i}", "operator": "Exists"} for i in range(70)]}
    fixed = copy.deepcopy(legacy)
    fixed["spec"]["highAvailability"]["tolerations"] = fixed["spec"]["highAvailability"]["tolerations"][:10]
    assert all(d.allowed for d in decide(fixed, legacy))


# Errors are counted, not all kept --------------------------------------------------------------------------------
def test_hundreds_of_small_errors_are_20_listed_and_the_rest_counted_as_jsonschema_counts_them():
    obj = bodies.many_small_errors()
    found = len(list(jsonschema.Draft7Validator(schema.openapi_schema()).iter_errors(obj)))
    for decision in decide(obj):
        assert len(decision.errors) == MAX_ERRORS_KEPT
        assert field.count(decision.errors) == found > 300
        assert decision.message.endswith(f", and {found - MAX_ERRORS_SHOWN} more errors]")
        warnings = admission.response(bodies.review(obj)["request"], decision)["warnings"]
        assert warnings[-1] == f"{admission.DENIED_BY}: {found} field errors"


def test_field_errors_keep_the_first_and_count_the_rest():
    errors = FieldErrors(field.required(field.SPEC.child(f"f{i}"), "") for i in range(50))
    errors.append(field.required(field.SPEC, ""))
    errors += [field.required(field.SPEC, "")] * 9
    assert (len(errors), errors.omitted, field.count(errors)) == (MAX_ERRORS_KEPT, 60 - MAX_ERRORS_KEPT, 60)
    assert [str(e.path) for e in errors[:2]] == ["spec.f0", "spec.f1"]


# The largest real Wukong ------------------------------------------------------------------------------------------
def test_the_largest_wukong_the_bounds_allow_is_allowed_on_create_and_update():
    review = bodies.largest_update()
    new, old = review["request"]["object"], review["request"]["oldObject"]
    assert list(jsonschema.Draft7Validator(schema.openapi_schema()).iter_errors(new)) == []
    assert bounds.check(new).errors == []
    # Its networks attach to host interfaces: as on a real cluster, only where a WukongPolicy names them.
    named = [
        {"type": n["type"], "resourceName": n["resourceName"], "vlans": [str(n["vlanId"])]}
        for n in new["spec"]["networks"]
    ]
    allowing = Policy.from_object(
        {"metadata": {"name": "networks"}, "spec": {"namespaceSelector": {}, "networks": {"hostNetworks": named}}}
    )
    cluster = ClusterFacts.of(CLASSES, None, [allowing])
    for request in (bodies.review(new, old)["request"], bodies.review(new)["request"]):
        assert all(admission.decide(request, endpoint, cluster).allowed for endpoint in Endpoint)
    assert not any(d.allowed for d in decide(new)), "without the policy, its host networks are refused"


def test_the_largest_review_a_real_wukong_causes_fits_the_body_limit_twice_and_its_containers_twenty_times():
    body = bodies.encoded(bodies.largest_update())
    assert 2 * len(body) <= MAX_BODY_BYTES
    assert 20 * (body.count(b"{") + body.count(b"[")) <= MAX_CONTAINERS


def test_a_denial_names_the_cause_type_kubernetes_uses():
    obj = sample()
    obj["spec"]["disks"] = [1] * 17
    [mutated, _] = decide(obj)
    [cause] = admission.response(bodies.review(obj)["request"], mutated)["status"]["details"]["causes"]
    assert cause == {
        "reason": "FieldValueTooMany",
        "message": "Too many: 17: must have at most 16 items",
        "field": "spec.disks",
    }
