"""An API resource: its group, version, plural and kind, and the REST paths built from them (pure: no client)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote


def _segment(value: str, what: str) -> str:
    """One path segment: a name the API server would read as another path (``..``, ``a/b``) is refused, and the
    rest is percent-escaped, so no value -- whatever a Wukong says -- can make a request for another object."""
    if not value or value in (".", "..") or "/" in value:
        raise ValueError(f"{what} {value!r} cannot be used in an API path")
    return quote(value, safe="")


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None, subresource: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{_segment(namespace, 'namespace')}"
        base += f"/{self.plural}"
        if name:
            base += f"/{_segment(name, 'name')}"
        if subresource:
            base += f"/{_segment(subresource, 'subresource')}"
        return base
