"""AdmissionReview bodies for the cost tests and ``bench/hostile.py``: hostile shapes filled to any size, and the
largest Wukong the bounds admit.

A shape is the spot in an ordinary Wukong where it puts its payload and how the payload grows: a list of a million
items, a map of 200,000 keys, a string of megabytes, nesting as deep as the size allows. ``body(size)`` is the whole
review as bytes, exactly ``size`` long (JSON whitespace pads the rest); ``decoded(size)`` is the request inside it,
built directly for the shapes too deep for ``json.loads``.
"""

from __future__ import annotations

import copy
import json
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.builders import disk, wukong

UID = "hostile"
_HOLE = "@@payload@@"


def review(new: dict[str, Any], old: dict[str, Any] | None = None, uid: str = UID) -> dict[str, Any]:
    request: dict[str, Any] = {
        "uid": uid,
        "kind": {"group": "vm.novasphere.dev", "version": "v1alpha1", "kind": "Wukong"},
        "resource": {"group": "vm.novasphere.dev", "version": "v1alpha1", "resource": "wukongs"},
        "operation": "UPDATE" if old is not None else "CREATE",
        "namespace": new["metadata"].get("namespace", "default"),
        "name": new["metadata"].get("name", ""),
        "userInfo": {"username": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"]},
        "object": new,
        "oldObject": old,
        "dryRun": False,
    }
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


def encoded(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def base() -> dict[str, Any]:
    obj = wukong(disk("system", image="docker://quay.io/containerdisks/fedora:40"), disk("data", size="500Gi"))
    obj["metadata"]["annotations"] = {}
    obj["spec"]["highAvailability"] = {}
    return obj


Fill = Callable[[int], str]  # JSON text of exactly the given length


@dataclass(frozen=True)
class Shape:
    name: str
    path: tuple[str, ...]  # where the payload goes in the Wukong
    fill: Fill
    nested: tuple[str, int] | None = None  # a deep shape: ("[" or "{", bytes per level)

    def body(self, size: int) -> bytes:
        obj = base()
        _put(obj, self.path, _HOLE)
        before, after = encoded(review(obj)).split(json.dumps(_HOLE).encode())
        room = size - len(before) - len(after)
        return before + self.fill(room).encode() + after

    def decoded(self, size: int) -> dict[str, Any]:
        """The request, as the server would hold it were it able to decode the body."""
        if self.nested is None:
            request: dict[str, Any] = json.loads(self.body(size))["request"]
            return request
        bracket, per_level = self.nested
        obj = base()
        _put(obj, self.path, _deep(bracket, (size - len(encoded(review(base())))) // per_level))
        made: dict[str, Any] = review(obj)["request"]
        return made


def _put(obj: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for step in path[:-1]:
        obj = obj.setdefault(step, {})
    obj[path[-1]] = value


def _deep(bracket: str, levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value] if bracket == "[" else {"a": value}
    return value


def _padded(text: str, room: int) -> str:
    if len(text) > room:
        raise ValueError(f"{room} bytes are too few for this shape")
    return text[:-1] + " " * (room - len(text)) + text[-1]


def items(item: str) -> Fill:
    """A list of ``item`` repeated until the room is full."""
    return lambda room: _padded("[" + ",".join([item] * max(1, (room - 1) // (len(item) + 1))) + "]", room)


def keys(value: str, prefix: str = "k") -> Fill:
    """A map of distinct keys (``k0``, ``k1``, ...) until the room is full."""

    def fill(room: int) -> str:
        parts, used = [], 2
        while True:
            part = f'"{prefix}{len(parts)}":{value}'
            if used + len(part) + 1 > room:
                break
            parts.append(part)
            used += len(part) + 1
        return _padded("{" + ",".join(parts) + "}", room)

    return fill


def long_string(char: str = "x") -> Fill:
    return lambda room: '"' + char * (room - 2) + '"'


def nested(bracket: str) -> Fill:
    opening, closing, leaf = ("[", "]", "") if bracket == "[" else ('{"a":', "}", "1")
    return lambda room: _padded(
        opening * ((room - len(leaf)) // (len(opening) + 1))
        + leaf
        + closing * ((room - len(leaf)) // (len(opening) + 1)),
        room,
    )


SHAPES = [
    Shape("spec.disks: numbers", ("spec", "disks"), items("1")),
    Shape("spec.disks: short strings", ("spec", "disks"), items('"ab"')),
    Shape("spec.disks: empty objects", ("spec", "disks"), items("{}")),
    Shape("nodeSelector: keys", ("spec", "highAvailability", "nodeSelector"), keys('"v"')),
    Shape("unknown spec.extra: keys", ("spec", "extra"), keys("0", prefix="u")),
    Shape("unknown spec.extra: lists 28 deep", ("spec", "extra"), items("[" * 28 + "]" * 28)),
    Shape("metadata.labels: labels", ("metadata", "labels"), keys('"v"')),
    Shape("spec.memory: one long string", ("spec", "memory"), long_string("9")),
    Shape("an annotation: one long string", ("metadata", "annotations", "note"), long_string()),
    Shape("spec.disks: [[[... nested", ("spec", "disks"), nested("["), nested=("[", 2)),
    Shape('spec.disks: {"a":{"a":... nested', ("spec", "disks"), nested("{"), nested=("{", 6)),
]


def many_small_errors() -> dict[str, Any]:
    """16 disks and 64 tolerations, each wrong in several ways, 64 node labels of the wrong type, all within the
    bounds: hundreds of errors, more than an answer lists, in a small body."""
    obj = base()
    obj["spec"]["cpu"] = "many"
    obj["spec"]["disks"] = [
        {"name": f"d{i}", "size": i, "storageClassName": i, "image": i, "boot": i == 0} for i in range(16)
    ]
    obj["spec"]["highAvailability"] = {
        "nodeSelector": {f"k{i}": i for i in range(64)},
        "tolerations": [{"key": i, "operator": "Never", "effect": i} for i in range(64)],
    }
    return obj


# The largest Wukong: every field at its bound -------------------------------------------------------------------
def _name(length: int, index: int = 0, alphabet: str = string.ascii_lowercase) -> str:
    """A DNS-1123 label of exactly ``length`` characters, distinct for each index."""
    text = (f"n{index}-" + alphabet * (length // len(alphabet) + 1))[:length]
    return text[:-1] + "a" if text.endswith("-") else text


def _subdomain(length: int, index: int = 0) -> str:
    """A DNS subdomain of exactly ``length`` characters: labels of at most 63, joined by dots."""
    text = ""
    while length - len(text) > 63:
        text += _name(min(63, length - len(text) - 2), index) + "."
    return text + _name(length - len(text), index)


def _quantity(length: int) -> str:
    """1Gi written in ``length`` characters: 1.000...0Gi."""
    return "1." + "0" * (length - 4) + "Gi"


def _label_key(index: int) -> str:
    return f"{_subdomain(253, index)}/{_name(63, index)}"


def _fields(obj: Any) -> dict[str, Any]:
    """managedFields' fieldsV1 for ``obj``: what a manager owns, a map per field and a key per list entry."""
    if isinstance(obj, dict):
        return {f"f:{key}": _fields(value) for key, value in obj.items()}
    if isinstance(obj, list) and obj and all(isinstance(i, dict) and ("name" in i or "type" in i) for i in obj):
        key = "name" if "name" in obj[0] else "type"
        return {f"k:{json.dumps({key: i[key]})}": {".": {}, **_fields(i)} for i in obj}
    return {}


def largest_wukong() -> dict[str, Any]:
    """A Wukong with every list and map at its CRD bound and every string at its maximum length, 64 labels with
    the longest keys and values, annotations of exactly 256 KiB (a client-side apply's last-applied-configuration
    and JSON notes), the managedFields of kubectl and of the reconciler, and a status at its bounds (eight
    conditions with 32 KiB messages). Nothing a real Wukong comes near; the admission webhook allows it."""
    image = "https://images.example.com/" + "i" * (2048 - len("https://images.example.com/"))
    disks = [
        {
            "name": _name(63, i),
            "size": _quantity(64),
            "storageClassName": _subdomain(253, i),
            "boot": i == 0,
            "image": image,
        }
        for i in range(16)
    ]
    networks = [
        {
            "name": _name(63, i),
            "type": "sriov",
            "resourceName": f"{_subdomain(200, i)}/{_name(52, i)}",
            "vlanId": 4094,
            "ipConfig": {
                "mode": "static",
                "address": f"fd00:1234:5678:9abc:def0:1234:5678:{i + 1:04x}/64",
                "gateway": "fd00:1234:5678:9abc:def0:1234:5678:ffff",
                "dnsServers": [f"fd00:1234:5678:9abc:def0:1234:5678:{j + 0xFF00:04x}" for j in range(8)],
                "routes": [f"fd{j + 1:02x}:1234:5678:9abc:def0:1234:5678:0000/128" for j in range(32)],
            },
        }
        for i in range(16)
    ]
    spec = {
        "cpu": 64,
        "memory": _quantity(64),
        "disks": disks,
        "startStrategy": {"autoStart": True, "runStrategy": "Always"},
        "volumeRetentionPolicy": {"whenDeleted": "Retain"},
        "osImage": image,
        "sshKeySecret": _subdomain(253),
        "cloudInitUser": {
            "name": "u" + "x" * 31,
            "groups": [_name(32, i).replace("-", "_") for i in range(32)],
            "lockPasswd": False,
            "sshPasswordAuth": True,
            "passwordHash": "$6$" + "h" * 509,  # no password: the webhook stores it as this hash (M6)
            "shell": "/" + "s" * 255,
            "sudo": "ALL=(ALL) NOPASSWD:ALL " + "#" * (1024 - 23),
        },
        "networks": networks,
        "highAvailability": {
            "antiAffinity": True,
            "nodeSelector": {_label_key(i): _name(63, i) for i in range(64)},
            "restartPolicy": "Always",
            "tolerations": [
                {
                    "key": _label_key(i),
                    "operator": "Equal",
                    "value": _name(63, i),
                    "effect": "PreferNoSchedule",
                    "tolerationSeconds": 3600,
                }
                for i in range(64)
            ],
        },
    }
    status = {
        "phase": "Running",
        "vmName": _subdomain(253),
        "diskCount": 16,
        "totalSize": _quantity(64),
        "vmStatus": "R" * 128,
        "nodeName": _subdomain(253, 1),
        "observedGeneration": 2**62,
        "volumes": [
            {
                "name": d["name"],
                "pvcName": _subdomain(253, i),
                "bound": True,
                "everBound": True,
                "size": _quantity(64),
                "capacity": _quantity(64),
                "source": "dataVolume",
            }
            for i, d in enumerate(disks)
        ],
        "conditions": [
            {
                "type": _name(316, i),
                "status": "True",
                "observedGeneration": 2**62,
                "lastTransitionTime": "2026-01-01T00:00:00Z",  # as metav1.Time writes it
                "reason": "R" * 1024,
                "message": "m" * 32768,
            }
            for i in range(8)
        ],
    }
    name, namespace = _name(60), _name(63)
    manifest = {"apiVersion": "vm.novasphere.dev/v1alpha1", "kind": "Wukong", "metadata": {}, "spec": spec}
    manifest["metadata"] = {"name": name, "namespace": namespace}
    annotations = {"kubectl.kubernetes.io/last-applied-configuration": json.dumps(manifest) + "\n"}
    notes = json.dumps({"notes": [spec["highAvailability"], spec["cloudInitUser"]] * 200})
    used = sum(len(k) + len(v) for k, v in annotations.items()) + len("example.com/notes")
    annotations["example.com/notes"] = notes[: 256 * 1024 - used]
    labels = {_label_key(i): _name(63, i) for i in range(64)}
    metadata = {
        "name": name,
        "namespace": namespace,
        "uid": "3f0e8a52-0b6c-4a43-9f0e-1f7f0d6c9a11",
        "resourceVersion": "18446744073709551615",
        "generation": 2**62,
        "creationTimestamp": "2026-01-01T00:00:00Z",
        "labels": labels,
        "annotations": annotations,
    }
    owned = {"metadata": {"annotations": annotations, "labels": labels}, "spec": spec}
    metadata["managedFields"] = [
        {
            "manager": "kubectl-client-side-apply",
            "operation": "Update",
            "apiVersion": "vm.novasphere.dev/v1alpha1",
            "time": "2026-01-01T00:00:00Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": _fields(owned),
        },
        {
            "manager": "wukong-reconciler",
            "operation": "Update",
            "apiVersion": "vm.novasphere.dev/v1alpha1",
            "time": "2026-01-01T00:00:00Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": _fields({"status": status}),
            "subresource": "status",
        },
    ]
    return {
        "apiVersion": "vm.novasphere.dev/v1alpha1",
        "kind": "Wukong",
        "metadata": metadata,
        "spec": spec,
        "status": status,
    }


def largest_update() -> dict[str, Any]:
    """The largest review a real Wukong could cause: an update, with the object twice (object and oldObject)."""
    new = largest_wukong()
    old = copy.deepcopy(new)
    new["metadata"]["generation"] = old["metadata"]["generation"] + 1
    return review(new, old)
