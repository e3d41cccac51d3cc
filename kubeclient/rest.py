"""The REST adapter every process uses to talk to the Kubernetes API.

A thin JSON-over-HTTP layer on the official client's configuration, connection pool and auth
(kubeconfig or in-cluster token, refreshed by the client): objects stay plain dicts end to end, which
keeps the planner pure and saves deserialising every watch event into generated model classes.
Every write is sent with ``fieldValidation=Strict``, so the API server rejects an unknown field
instead of silently dropping it. Failures become typed ``ApiError``s (NotFound, Conflict, ...).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines
from prometheus_client import Counter
from urllib3.exceptions import HTTPError

from kubeclient.resources import SUBJECT_ACCESS_REVIEWS, Resource

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"  # server-side apply; JSON is YAML
REQUEST_TIMEOUT_SECONDS = 30
ACCESS_REVIEW_TIMEOUT_SECONDS = 2.0  # asked inside an admission request, whose own timeout is 5 s

API_REQUESTS = Counter(
    "wukong_kube_api_requests",
    "Requests sent to the Kubernetes API by verb (WATCH: a watch; DRYRUN: a dry-run write), resource and code.",
    ["verb", "resource", "code"],
)


class ApiError(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status, self.reason, self.message = status, reason, message


class NotFound(ApiError):
    pass


class Conflict(ApiError):
    """409 for a stale resourceVersion: re-read and try again."""


class AlreadyExists(ApiError):
    pass


class Gone(ApiError):
    """410: the watch's resourceVersion is too old; relist."""


class Unreachable(ApiError):
    """No answer from the API server: refused, reset, timed out, TLS failure, a stream cut mid-way.

    The transport's own exceptions (urllib3's, sockets', the official client's status-0 ApiException) are
    turned into this one, so callers handle "the API is away for now" as one kind of ApiError and retry."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(0, "Unreachable", f"{type(error).__name__}: {error}")


TRANSPORT_ERRORS = (HTTPError, OSError, ApiException)


def _error(status: int, body: bytes) -> ApiError:
    try:
        detail = json.loads(body)
        reason, message = detail.get("reason", ""), detail.get("message", "")
    except ValueError:
        reason, message = "", body.decode(errors="replace")[:500]
    if status == 404:
        return NotFound(status, reason, message)
    if status == 409:
        return (
            AlreadyExists(status, reason, message) if reason == "AlreadyExists" else Conflict(status, reason, message)
        )
    if status == 410:
        return Gone(status, reason, message)
    return ApiError(status, reason, message)


class Kube:
    """``field_manager`` names the writer in managedFields (and so in ``kubectl get --show-managed-fields``)."""

    def __init__(self, api_client: client.ApiClient, field_manager: str) -> None:
        self._api = api_client
        self._field_manager = field_manager
        self._headers = {"Accept": "application/json"}

    # -- transport ---------------------------------------------------------------------------------------
    def _send(
        self,
        method: str,
        path: str,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: float | tuple[float, float] | None = REQUEST_TIMEOUT_SECONDS,
        stream: bool = False,
        accept: str | None = None,
    ) -> Any:
        headers = dict(self._headers)
        if accept:
            headers["Accept"] = accept
        if body is not None:
            headers["Content-Type"] = content_type
        params = [(key, value) for key, value in (query or {}).items() if value is not None]
        serialized = self._api.param_serialize(
            method=method,
            resource_path=path,
            query_params=params,
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        method_, url, header_params, body_, post = serialized
        verb = "WATCH" if stream else "DRYRUN" if (query or {}).get("dryRun") else method  # a dry run stores nothing
        try:
            response = self._api.call_api(method_, url, header_params, body_, post, _request_timeout=timeout)
            API_REQUESTS.labels(verb, _resource_of(path), str(response.status)).inc()
            if response.status >= 400:
                raise _error(response.status, response.read())
            if stream:
                return response.response
            data = response.read()
            return json.loads(data) if data else {}  # 202 Accepted of an action may have no body
        except TRANSPORT_ERRORS as error:
            API_REQUESTS.labels(verb, _resource_of(path), "0").inc()
            raise Unreachable(error) from error

    # -- verbs -------------------------------------------------------------------------------------------
    def get(self, resource: Resource, namespace: str | None, name: str) -> dict[str, Any]:
        return self._send("GET", resource.path(namespace, name))

    def serves(self, group: str, version: str) -> bool:
        """Whether the API server serves ``group/version`` (a CRD installed): discovery, 404 when it does not."""
        try:
            self._send("GET", f"/apis/{group}/{version}")
        except NotFound:
            return False
        return True

    def list(
        self,
        resource: Resource,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> tuple[list[dict[str, Any]], str]:
        """All items (paged, 500 at a time) and the list's resourceVersion to watch from."""
        items: list[dict[str, Any]] = []
        token = None
        while True:
            query = {"labelSelector": label_selector, "fieldSelector": field_selector, "limit": 500, "continue": token}
            page = self._send("GET", resource.path(namespace), query)
            items.extend(page.get("items") or [])
            token = page.get("metadata", {}).get("continue")
            if not token:
                for item in items:  # list items carry no kind; keep objects self-describing
                    item.setdefault("apiVersion", resource.api_version)
                    item.setdefault("kind", resource.kind)
                return items, page["metadata"]["resourceVersion"]

    def watch(
        self,
        resource: Resource,
        namespace: str | None,
        resource_version: str,
        label_selector: str | None = None,
        timeout_seconds: int = 300,
        field_selector: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Watch events from ``resource_version`` with bookmarks, until the server ends the watch."""
        query = {
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "labelSelector": label_selector,
            "fieldSelector": field_selector,
            "timeoutSeconds": timeout_seconds,
        }
        response = self._send("GET", resource.path(namespace), query, timeout=(10, timeout_seconds + 30), stream=True)
        try:
            for line in iter_resp_lines(response):
                event = json.loads(line)
                if event.get("type") == "ERROR":
                    status = event.get("object", {})
                    raise _error(int(status.get("code", 500)), json.dumps(status).encode())
                yield event
        except TRANSPORT_ERRORS as error:
            raise Unreachable(error) from error
        finally:
            response.release_conn()

    def create(self, resource: Resource, obj: Mapping[str, Any], dry_run: bool = False) -> dict[str, Any]:
        """``dry_run``: every admission step and validation runs, nothing is stored."""
        namespace = obj.get("metadata", {}).get("namespace")
        query = {**self._write_query(), **({"dryRun": "All"} if dry_run else {})}
        return self._send("POST", resource.path(namespace), query, body=obj)

    def user_may(
        self,
        user: Mapping[str, Any],
        verb: str,
        resource: Resource,
        namespace: str,
        name: str,
        timeout: float = ACCESS_REVIEW_TIMEOUT_SECONDS,
    ) -> bool:
        """Whether the API server's authorisers let ``user`` (an AdmissionReview's userInfo: username, uid, groups,
        extra) ``verb`` the object: a SubjectAccessReview, stored nowhere. Raises ApiError when it cannot be asked
        (Unreachable within ``timeout``): the caller decides, and must not take that for a yes."""
        extra = user.get("extra")
        spec: dict[str, Any] = {
            "user": user.get("username") or "",
            "groups": list(user.get("groups") or []),
            "uid": user.get("uid") or "",
            "extra": {k: list(v) for k, v in extra.items() if isinstance(v, list)}
            if isinstance(extra, Mapping)
            else {},
            "resourceAttributes": {
                "group": resource.group,
                "version": resource.version,
                "resource": resource.plural,
                "namespace": namespace,
                "name": name,
                "verb": verb,
            },
        }
        review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}
        answer = self._send("POST", SUBJECT_ACCESS_REVIEWS.path(), body=review, timeout=timeout)
        return (answer.get("status") or {}).get("allowed") is True

    def patch(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        patch: Any,
        content_type: str = MERGE_PATCH,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        return self._send(
            "PATCH",
            resource.path(namespace, name, subresource),
            self._write_query(),
            body=patch,
            content_type=content_type,
        )

    def act(self, resource: Resource, namespace: str, name: str, subresource: str, body: Any = None) -> None:
        """PUT to a subresource that does something rather than stores it (KubeVirt's virtualmachines/start,
        stop, restart): the body is its options object."""
        self._send("PUT", resource.path(namespace, name, subresource), body=body or {})

    def apply(self, resource: Resource, obj: Mapping[str, Any], force: bool = False) -> dict[str, Any]:
        """Server-side apply under this client's field manager: the object is created or brought to ``obj``
        without being read first (RBAC: create and patch, no get). ``force`` takes over fields another manager
        set."""
        metadata = obj["metadata"]
        query = {**self._write_query(), **({"force": "true"} if force else {})}
        path = resource.path(metadata.get("namespace"), metadata["name"])
        return self._send("PATCH", path, query, body=json.dumps(obj), content_type=APPLY_PATCH)

    def update(self, resource: Resource, obj: Mapping[str, Any]) -> dict[str, Any]:
        metadata = obj["metadata"]
        path = resource.path(metadata.get("namespace"), metadata["name"])
        return self._send("PUT", path, self._write_query(), body=obj)

    def delete(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        uid: str | None = None,
        resource_version: str | None = None,
        propagation: str | None = None,
    ) -> None:
        """A generic verb of the adapter; which process may use it is RBAC's to say. ``uid`` and
        ``resource_version`` are preconditions: never delete a same-named successor, nor an object that changed
        since it was judged safe to delete (409 Conflict instead). ``propagation``: Foreground, Background, Orphan."""
        preconditions = {k: v for k, v in (("uid", uid), ("resourceVersion", resource_version)) if v}
        body: dict[str, Any] = {}
        if preconditions:
            body["preconditions"] = preconditions
        if propagation:
            body["propagationPolicy"] = propagation
        self._send("DELETE", resource.path(namespace, name), body=body or None)

    def _write_query(self) -> dict[str, str]:
        return {"fieldValidation": "Strict", "fieldManager": self._field_manager}


def _resource_of(path: str) -> str:
    """The resource in a REST path, for metrics: .../namespaces/ns/wukongs/x/status -> wukongs/status."""
    parts = path.strip("/").split("/")
    parts = parts[2:] if parts[0] == "api" else parts[3:]
    if parts and parts[0] == "namespaces" and len(parts) > 2:
        parts = parts[2:]
    return "/".join(p for i, p in enumerate(parts) if i % 2 == 0)
