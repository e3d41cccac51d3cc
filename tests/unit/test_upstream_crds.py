from devcluster import crds


def test_strict_objects_lose_additional_properties_false_and_maps_keep_their_value_schema():
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "items": {
                "type": "array",
                "items": {"type": "object", "additionalProperties": False, "properties": {"name": {"type": "string"}}},
            },
        },
    }
    assert crds.structural(schema) == {
        "type": "object",
        "properties": {
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "items": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}},
        },
    }


def test_no_converted_upstream_schema_keeps_additional_properties_beside_properties():
    def offending(node, path="$"):
        if isinstance(node, dict):
            if "properties" in node and "additionalProperties" in node:
                yield path
            for key, value in node.items():
                yield from offending(value, f"{path}.{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                yield from offending(value, f"{path}[{index}]")

    for kind in crds.UPSTREAM_KINDS:
        converted = crds.crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        assert list(offending(converted)) == [], kind.kind
        assert list(offending(crds.strict_schema(kind))) != [], "the catalog schema is strict to begin with"


def test_the_snapshot_crds_are_upstreams_v1_kinds_labelled_as_devclusters():
    found = {c["spec"]["names"]["kind"]: c for c in crds.snapshot_crds()}
    assert set(found) == {"VolumeSnapshot", "VolumeSnapshotContent", "VolumeSnapshotClass"}
    for crd in found.values():
        assert crd["spec"]["group"] == "snapshot.storage.k8s.io"
        assert [v["name"] for v in crd["spec"]["versions"] if v["served"] and v["storage"]] == ["v1"]
        assert crd["metadata"]["labels"]["app.kubernetes.io/part-of"] == "wukong-devcluster"
