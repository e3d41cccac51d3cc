"""StorageClass facts the webhook and the reconciler act on, and the cluster-default rule."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from wukong.api import DEFAULT_CLASS_ANNOTATIONS

WAIT_FOR_FIRST_CONSUMER = "WaitForFirstConsumer"
_EPOCH = datetime.fromtimestamp(0, UTC)


@dataclass(frozen=True)
class StorageClass:
    name: str
    provisioner: str = ""
    allow_volume_expansion: bool = False
    is_default: bool = False
    created: datetime = _EPOCH
    volume_binding_mode: str = "Immediate"

    @classmethod
    def from_manifest(cls, obj: Mapping[str, Any]) -> StorageClass:
        metadata = obj.get("metadata") or {}
        annotations = metadata.get("annotations") or {}
        return cls(
            name=metadata.get("name", ""),
            provisioner=obj.get("provisioner", ""),
            allow_volume_expansion=obj.get("allowVolumeExpansion") is True,
            is_default=any(annotations.get(key) == "true" for key in DEFAULT_CLASS_ANNOTATIONS),
            created=_timestamp(metadata.get("creationTimestamp")),
            volume_binding_mode=obj.get("volumeBindingMode") or "Immediate",
        )

    @property
    def waits_for_first_consumer(self) -> bool:
        return self.volume_binding_mode == WAIT_FOR_FIRST_CONSUMER


def cluster_default(classes: Iterable[StorageClass]) -> StorageClass | None:
    """The default as Kubernetes' DefaultStorageClass admission picks it: newest first, ties by name."""
    defaults = sorted((c for c in classes if c.is_default), key=lambda c: c.name)
    defaults.sort(key=lambda c: c.created, reverse=True)  # stable: equal times stay in name order
    return defaults[0] if defaults else None


def _timestamp(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return _EPOCH
    return _EPOCH
