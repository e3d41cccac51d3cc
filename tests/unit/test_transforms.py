"""Cache transforms: what an informer keeps of an object, and that its cache and handlers see only that."""

from __future__ import annotations

import json
import threading

from kubeclient.informer import Informer
from kubeclient.resources import PVCS
from kubeclient.transforms import LAST_APPLIED, SharedStrings, chain, keep_only, without_bookkeeping


def claim(name: str, version: str = "10") -> dict:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": name,
            "namespace": "ns",
            "resourceVersion": version,
            "uid": f"uid-of-{name}",
            "annotations": {LAST_APPLIED: '{"spec": {}}', "vm.novasphere.dev/wukong-uid": "u1"},
            "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {"f:resources": {}}}}],
        },
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}},
        "status": {"phase": "Bound", "capacity": {"storage": "10Gi"}},
    }


def test_bookkeeping_goes_and_everything_else_stays():
    kept = without_bookkeeping(claim("a"))
    expected = claim("a")
    del expected["metadata"]["managedFields"]
    del expected["metadata"]["annotations"][LAST_APPLIED]
    assert kept == expected


def test_an_object_without_bookkeeping_is_kept_as_it_is():
    bare = {"metadata": {"name": "a", "annotations": {"x": "y"}}, "spec": {}}
    assert without_bookkeeping(json.loads(json.dumps(bare))) == bare
    assert without_bookkeeping({"kind": "Status"}) == {"kind": "Status"}


def test_keep_only_keeps_the_named_fields_of_one_part_and_nothing_else_of_it():
    instance = {"spec": {"domain": {}}, "status": {"nodeName": "n1", "phase": "Running", "interfaces": [{}]}}
    kept = keep_only("status", ("nodeName", "reason"))(instance)
    assert kept == {"spec": {"domain": {}}, "status": {"nodeName": "n1"}}
    assert keep_only("status", ("nodeName",))({"spec": {}}) == {"spec": {}}


def test_equal_keys_and_short_values_of_separately_parsed_objects_become_one_string():
    shared = SharedStrings(max_length=16)
    first, second = (shared(json.loads(json.dumps(claim(n)))) for n in ("a", "b"))
    assert first == claim("a")
    key_first = next(k for k in first["metadata"] if k == "namespace")
    key_second = next(k for k in second["metadata"] if k == "namespace")
    assert key_first is key_second
    assert first["spec"]["accessModes"][0] is second["spec"]["accessModes"][0]
    assert first["status"]["phase"] is second["status"]["phase"]
    long_a, long_b = json.loads('"' + "x" * 17 + '"'), json.loads('"' + "x" * 17 + '"')
    assert shared({"v": long_a})["v"] is long_a and shared({"v": long_b})["v"] is long_b  # longer: left alone


def test_the_table_of_shared_strings_is_bounded_and_starts_afresh_when_full():
    shared = SharedStrings(capacity=8)
    for index in range(100):
        assert shared({"name": f"object-{index}"}) == {"name": f"object-{index}"}
        assert len(shared) <= 8


def test_transforms_chain_in_order():
    steps: list[str] = []
    first = chain(lambda o: steps.append("a") or o, lambda o: steps.append("b") or {**o, "seen": True})
    assert first({}) == {"seen": True} and steps == ["a", "b"]


class OneWatchKube:
    """Lists one claim, then watches one change to it and one new claim."""

    def __init__(self) -> None:
        self.done, self.never = threading.Event(), threading.Event()

    def list(self, resource, namespace=None, label_selector=None):
        return [claim("a", "10")], "10"

    def watch(self, resource, namespace, resource_version, label_selector=None, timeout_seconds=300):
        if self.done.is_set():
            self.never.wait(10)  # the next watch: nothing more happens
            return
        yield {"type": "MODIFIED", "object": claim("a", "11")}
        yield {"type": "ADDED", "object": claim("b", "12")}
        self.done.set()


def test_the_informer_caches_and_hands_out_only_the_transformed_object():
    kube = OneWatchKube()
    informer = Informer(kube, PVCS, transform=without_bookkeeping)  # type: ignore[arg-type]
    seen: list[tuple[str, dict]] = []
    informer.on_change(lambda event, obj: seen.append((event, obj)))
    informer.start()
    assert kube.done.wait(5)
    informer.stop()
    assert [(event, obj["metadata"]["resourceVersion"]) for event, obj in seen] == [
        ("ADDED", "10"),
        ("MODIFIED", "11"),
        ("ADDED", "12"),
    ]
    for _, obj in seen:
        assert "managedFields" not in obj["metadata"] and LAST_APPLIED not in obj["metadata"]["annotations"]
    for name in ("a", "b"):
        cached = informer.get("ns", name)
        assert cached is not None and "managedFields" not in cached["metadata"]
        assert cached["metadata"]["annotations"] == {"vm.novasphere.dev/wukong-uid": "u1"}
