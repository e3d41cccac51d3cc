"""An in-memory ``Kube``: the adapter's verbs over a dict of objects, for unit tests of whole passes.

A fake of the project's own wrapper (kubeclient.rest.Kube), never of HTTP: the verbs the reconciler calls (get,
create with dry run, merge patch with subresources, server-side apply, update, delete, discovery) keep their typed
errors (NotFound, AlreadyExists, Conflict on a stale resourceVersion). Every request is recorded as
``(verb, resource, name)`` -- ``resource`` with its subresource (``wukongs/status``), a dry run as ``DRYRUN``, and an
Event by its reason (its name is random) -- so a test says "this pass writes exactly these requests". ``store``
gives the cache view a pass reads (what an informer would hold), always current.
"""

from __future__ import annotations

import copy
import itertools
from typing import Any

from kubeclient.resources import EVENTS
from kubeclient.rest import AlreadyExists, ApiError, Conflict, NotFound
from wukong import api
from wukong.resource import Resource

Request = tuple[str, str, str]


class FakeKube:
    def __init__(self, served: tuple[str, ...] = ()) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}  # (plural, namespace, name) -> object
        self.requests: list[Request] = []
        self.served = set(served)  # group/version discovery answers for
        self._versions = itertools.count(100)
        self._uids = itertools.count(1)
        self._failures: list[tuple[str, str, ApiError]] = []

    # -- test controls -----------------------------------------------------------------------------------
    def put(self, resource: Resource, obj: dict[str, Any]) -> dict[str, Any]:
        """Store an object as another client would (not recorded): uid, resourceVersion, generation filled in."""
        obj = copy.deepcopy(obj)
        metadata = obj.setdefault("metadata", {})
        metadata.setdefault("namespace", "default" if resource.namespaced else None)
        metadata.setdefault("uid", f"uid-{next(self._uids)}")
        metadata.setdefault("generation", 1)
        metadata["resourceVersion"] = str(next(self._versions))
        obj.setdefault("apiVersion", resource.api_version)
        obj.setdefault("kind", resource.kind)
        self.objects[(resource.plural, metadata.get("namespace") or "", metadata["name"])] = obj
        return copy.deepcopy(obj)

    def edit(self, resource: Resource, namespace: str, name: str, change: dict[str, Any]) -> dict[str, Any]:
        """Another client's merge patch (not recorded); a spec change moves the generation, as the API server does."""
        key = (resource.plural, namespace, name)
        before = self.objects[key]
        after = merge(before, change)
        if after.get("spec") != before.get("spec"):
            after["metadata"]["generation"] = before["metadata"].get("generation", 1) + 1
        after["metadata"]["resourceVersion"] = str(next(self._versions))
        self.objects[key] = after
        return copy.deepcopy(after)

    def fail_next(self, verb: str, plural: str, error: ApiError) -> None:
        """The next ``verb`` request on ``plural`` gets ``error`` (recorded, nothing stored)."""
        self._failures.append((verb, plural, error))

    def store(self, resource: Resource, label: str | None = None, value: str | None = None) -> Store:
        """The cache of an informer of ``resource``, selecting by ``label`` (and its ``value``) when given."""
        return Store(self, resource, label, value)

    def take_requests(self) -> list[Request]:
        taken, self.requests = self.requests, []
        return taken

    # -- the adapter's verbs -----------------------------------------------------------------------------
    def get(self, resource: Resource, namespace: str | None, name: str) -> dict[str, Any]:
        self._record("GET", resource.plural, name)
        return copy.deepcopy(self._existing(resource, namespace, name))

    def list(
        self, resource: Resource, namespace: str | None = None, label_selector: str | None = None
    ) -> tuple[list[dict[str, Any]], str]:
        """Objects of ``resource`` (in ``namespace``, matching one ``key=value`` selector); NotFound when its
        group/version is not in ``served`` -- an API the cluster does not serve -- for resources outside the
        core, the reconciler's informer-fed kinds and the snapshot ones given there."""
        self._record("LIST", resource.plural, namespace or "")
        if resource.group == "snapshot.storage.k8s.io" and f"{resource.group}/{resource.version}" not in self.served:
            raise NotFound(404, "NotFound", f"the server could not find the requested resource ({resource.plural})")
        key, _, value = (label_selector or "").partition("=")
        found = [
            copy.deepcopy(o)
            for (plural, ns, _), o in self.objects.items()
            if plural == resource.plural
            and (namespace is None or ns == namespace)
            and (not key or (o["metadata"].get("labels") or {}).get(key) == value)
        ]
        return found, str(next(self._versions))

    def serves(self, group: str, version: str) -> bool:
        self._record("GET", "discovery", f"{group}/{version}")
        return f"{group}/{version}" in self.served

    def create(self, resource: Resource, obj: dict[str, Any], dry_run: bool = False) -> dict[str, Any]:
        metadata = obj["metadata"]
        name = obj.get("reason") if resource is EVENTS else metadata["name"]
        self._record("DRYRUN" if dry_run else "POST", resource.plural, name)
        if (resource.plural, metadata.get("namespace") or "", metadata["name"]) in self.objects:
            raise AlreadyExists(409, "AlreadyExists", f"{resource.plural} {metadata['name']} already exists")
        if dry_run:
            return copy.deepcopy(obj)
        return self.put(resource, obj)

    def patch(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        patch: Any,
        content_type: str = "",
        subresource: str | None = None,
    ) -> dict[str, Any]:
        plural = resource.plural + (f"/{subresource}" if subresource else "")
        shown = self.objects.get((resource.plural, namespace or "", name), {}).get("reason") or name
        self._record("PATCH", plural, shown if resource is EVENTS else name)
        current = self._existing(resource, namespace, name)
        wanted = ((patch or {}).get("metadata") or {}).get("resourceVersion")
        if wanted and wanted != current["metadata"]["resourceVersion"]:
            raise Conflict(409, "Conflict", f"{plural} {name}: the object has been modified")
        if subresource == "status":
            after = copy.deepcopy(current)
            after["status"] = merge(current.get("status") or {}, patch.get("status") or {})
        else:
            after = merge(current, {k: v for k, v in patch.items() if k != "status"})
            if after.get("spec") != current.get("spec"):
                after["metadata"]["generation"] = current["metadata"].get("generation", 1) + 1
        after["metadata"]["resourceVersion"] = str(next(self._versions))
        self.objects[(resource.plural, namespace or "", name)] = after
        return copy.deepcopy(after)

    def apply(self, resource: Resource, obj: dict[str, Any], force: bool = False) -> dict[str, Any]:
        metadata = obj["metadata"]
        self._record("APPLY", resource.plural, metadata["name"])
        return self.put(resource, obj)

    def update(self, resource: Resource, obj: dict[str, Any]) -> dict[str, Any]:
        metadata = obj["metadata"]
        self._record("PUT", resource.plural, metadata["name"])
        current = self._existing(resource, metadata.get("namespace"), metadata["name"])
        if metadata.get("resourceVersion") != current["metadata"]["resourceVersion"]:
            raise Conflict(409, "Conflict", f"{resource.plural} {metadata['name']}: the object has been modified")
        return self.put(resource, obj)

    def delete(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        uid: str | None = None,
        resource_version: str | None = None,
        propagation: str | None = None,
    ) -> None:
        self._record("DELETE", resource.plural, name)
        current = self._existing(resource, namespace, name)
        if (uid and uid != current["metadata"]["uid"]) or (
            resource_version and resource_version != current["metadata"]["resourceVersion"]
        ):
            raise Conflict(409, "Conflict", f"{resource.plural} {name}: precondition failed")
        del self.objects[(resource.plural, namespace or "", name)]

    # -- inside --------------------------------------------------------------------------------------------
    def _record(self, verb: str, plural: str, name: str) -> None:
        self.requests.append((verb, plural, name))
        for index, (failing_verb, failing_plural, error) in enumerate(self._failures):
            if (failing_verb, failing_plural) == (verb, plural):
                del self._failures[index]
                raise error

    def _existing(self, resource: Resource, namespace: str | None, name: str) -> dict[str, Any]:
        found = self.objects.get((resource.plural, namespace or "", name))
        if found is None:
            raise NotFound(404, "NotFound", f"{resource.plural} {name} not found")
        return found


class Store:
    """The informer's view of one resource, as its label selector lets it see: get, by the Wukong label, all."""

    def __init__(self, kube: FakeKube, resource: Resource, label: str | None, value: str | None) -> None:
        self.kube, self.resource, self.label, self.value = kube, resource, label, value

    def _selected(self, obj: dict[str, Any]) -> bool:
        labels = obj["metadata"].get("labels") or {}
        return self.label is None or (self.label in labels and self.value in (None, labels[self.label]))

    def _mine(self) -> list[dict[str, Any]]:
        return [
            copy.deepcopy(o)
            for (plural, _, _), o in self.kube.objects.items()
            if plural == self.resource.plural and self._selected(o)
        ]

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        found = self.kube.objects.get((self.resource.plural, namespace, name))
        return copy.deepcopy(found) if found is not None and self._selected(found) else None

    def by_label(self, namespace: str, value: str, label: str | None = None) -> list[dict[str, Any]]:
        return [
            o
            for o in self._mine()
            if o["metadata"].get("namespace") == namespace
            and (o["metadata"].get("labels") or {}).get(label or api.WUKONG_LABEL) == value
        ]

    def items(self) -> list[dict[str, Any]]:
        return self._mine()


def merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge, null removes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge(result.get(key), value)
    return result
