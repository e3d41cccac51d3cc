"""Small builders for Wukong manifests and StorageClass facts used across the tests."""

from __future__ import annotations

import copy
from typing import Any

from webhook.facts import ClusterFacts
from wukong.storageclass import StorageClass


def disk(name: str, size: str = "10Gi", **fields: Any) -> dict[str, Any]:
    return {"name": name, "size": size, **fields}


def wukong(
    *disks: dict[str, Any], name: str = "vm1", annotations: dict[str, str] | None = None, **spec: Any
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": "default"}
    if annotations:
        metadata["annotations"] = annotations
    return {
        "apiVersion": "vm.novasphere.dev/v1alpha1",
        "kind": "Wukong",
        "metadata": metadata,
        "spec": {"cpu": 2, "memory": "4Gi", "disks": [copy.deepcopy(d) for d in disks], **spec},
    }


CLASSES = [
    StorageClass("longhorn", "driver.longhorn.io", allow_volume_expansion=True, is_default=True),
    StorageClass("longhorn-ssd", "driver.longhorn.io", allow_volume_expansion=True),
    StorageClass("longhorn-hdd", "driver.longhorn.io", allow_volume_expansion=True),
    StorageClass("local-path", "rancher.io/local-path", volume_binding_mode="WaitForFirstConsumer"),
]


def facts(classes: list[StorageClass] | None = CLASSES, default: str | None = None) -> ClusterFacts:
    return ClusterFacts.of(classes, default)
