"""Cluster facts that admission decisions depend on: the StorageClasses, and the configured default."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from wukong.storageclass import StorageClass, cluster_default


@dataclass(frozen=True)
class ClusterFacts:
    """``storage_classes`` is None when the classes are unknown (an offline check given no file):
    then rules that need them (V9, W1) are not judged, rather than judged wrongly."""

    storage_classes: Mapping[str, StorageClass] | None = None
    configured_default: str | None = None
    _default: str | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        chosen = self.configured_default
        if chosen is None and self.storage_classes:
            found = cluster_default(self.storage_classes.values())
            chosen = found.name if found else None
        object.__setattr__(self, "_default", chosen)

    @classmethod
    def of(cls, classes: Iterable[StorageClass] | None, configured_default: str | None = None) -> ClusterFacts:
        known = None if classes is None else {c.name: c for c in classes}
        return cls(storage_classes=known, configured_default=configured_default)

    @property
    def default_storage_class(self) -> str | None:
        """The configured default wins over the cluster's default StorageClass."""
        return self._default

    @property
    def knows_storage_classes(self) -> bool:
        return self.storage_classes is not None

    def storage_class(self, name: str) -> StorageClass | None:
        return (self.storage_classes or {}).get(name)
