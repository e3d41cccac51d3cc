"""Waiting on facts in end-to-end tests: a watch for objects, a poll only for what has no watch (metrics).

``wait_for_object`` follows a list + watch of one object (a field selector on its name) and returns as soon as
the check holds, like ``kubectl wait``. ``watch_quietly`` is the bounded "nothing happens" check: it watches an
object until a window closes (a fact, e.g. two resyncs of the reconciler) and returns every change it saw.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from kubeclient.resources import EVENTS, Resource
from kubeclient.rest import ApiError, Gone, Kube
from wukong.manifests import Obj

T = TypeVar("T")
DEFAULT_TIMEOUT = 30.0


def poll(check: Callable[[], T | None], what: str, timeout: float = DEFAULT_TIMEOUT, interval: float = 0.05) -> T:
    """For facts with no watch (a metric, a dry run): ask again every ``interval`` until ``check`` is truthy."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def wait_for_object(
    kube: Kube,
    resource: Resource,
    namespace: str | None,
    name: str,
    check: Callable[[Obj | None], T | None],
    what: str,
    timeout: float = DEFAULT_TIMEOUT,
) -> T:
    """``check`` sees the object (None while it does not exist) after every change; its first truthy answer wins."""
    selector = f"metadata.name={name}"
    items, version = kube.list(resource, namespace, field_selector=selector)
    current: Obj | None = items[0] if items else None
    deadline = time.monotonic() + timeout
    while (result := check(current)) is None or not result:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last seen: {_brief(current)}")
        for event in kube.watch(
            resource, namespace, version, timeout_seconds=max(1, int(remaining)), field_selector=selector
        ):
            obj = event["object"]
            version = obj.get("metadata", {}).get("resourceVersion", version)
            if event["type"] == "BOOKMARK":
                continue
            current = None if event["type"] == "DELETED" else obj
            if (result := check(current)) is not None and result:
                return result
            if time.monotonic() > deadline:
                break
    return result


def wait_for_event(
    kube: Kube, namespace: str, check: Callable[[Obj], bool], what: str, timeout: float = DEFAULT_TIMEOUT
) -> Obj:
    """The first Event in ``namespace`` (already there, or recorded later) for which ``check`` holds."""
    items, version = kube.list(EVENTS, namespace)
    for item in items:
        if check(item):
            return item
    deadline = time.monotonic() + timeout
    while (remaining := deadline - time.monotonic()) > 0:
        for event in kube.watch(EVENTS, namespace, version, timeout_seconds=max(1, int(remaining))):
            obj = event["object"]
            version = obj.get("metadata", {}).get("resourceVersion", version)
            if event["type"] in ("ADDED", "MODIFIED") and check(obj):
                return obj
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def watch_quietly(
    kube: Kube,
    resource: Resource,
    namespace: str | None,
    name: str,
    window: Callable[[], bool],
    what: str,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[str]:
    """Watch one object until ``window()`` says the window is over; every change seen, as "TYPE rv"."""
    selector = f"metadata.name={name}"
    _, version = kube.list(resource, namespace, field_selector=selector)
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while not window():
        if time.monotonic() > deadline:
            raise AssertionError(f"the window ({what}) did not close within {timeout:.0f}s")
        for event in kube.watch(resource, namespace, version, timeout_seconds=1, field_selector=selector):
            obj = event["object"]
            version = obj.get("metadata", {}).get("resourceVersion", version)
            if event["type"] != "BOOKMARK":
                seen.append(f"{event['type']} {version}")
    return seen


def _brief(obj: Obj | None) -> str:
    if obj is None:
        return "nothing (the object does not exist)"
    return str({"status": obj.get("status")})[:600]


def wait_for_all(
    kube: Kube,
    resource: Resource,
    namespace: str,
    check: Callable[[dict[str, Obj]], bool],
    what: str,
    timeout: float = DEFAULT_TIMEOUT,
) -> dict[str, Obj]:
    """Follow every object of a kind in a namespace (one list, then a watch, resumed from its last version when
    the connection drops) until ``check`` holds for them, by name."""
    deadline = time.monotonic() + timeout
    objects: dict[str, Obj] = {}
    version: str | None = None
    while time.monotonic() < deadline:
        try:
            if version is None:
                items, version = kube.list(resource, namespace)
                objects = {item["metadata"]["name"]: item for item in items}
            if check(objects):
                return objects
            remaining = max(1, int(deadline - time.monotonic()))
            for event in kube.watch(resource, namespace, version, timeout_seconds=min(remaining, 5)):
                obj = event["object"]
                version = obj.get("metadata", {}).get("resourceVersion", version)
                if event["type"] == "DELETED":
                    objects.pop(obj["metadata"]["name"], None)
                elif event["type"] != "BOOKMARK":
                    objects[obj["metadata"]["name"]] = obj
                if check(objects):
                    return objects
        except Gone:
            version = None  # too old: list again
        except ApiError:  # the API server may be restarting: resume from the last version when it is back
            time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
