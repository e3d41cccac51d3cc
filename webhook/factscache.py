"""Admission facts from watch-backed caches: never an API call per request.

The StorageClasses, the WukongPolicies and the namespaces' labels are each the client layer's informer. A change
marks the facts stale; the next request rebuilds them once and swaps in one immutable snapshot, which later
requests read without a lock (a list of thousands of namespaces notifies once per namespace: one rebuild each
would be quadratic).
``ready()`` stays False until every first list has arrived (``/readyz``), and the informers keep the caches current
across dropped watches and API restarts.

A watch lags its writes by a little: a namespace created in the same ``kubectl apply`` as its Wukongs can reach the
webhook before its watch event does, and judging it without its labels would skip the policies that select it
(fail open). A namespace the cache does not know is therefore read with one GET before its Wukong is judged, when
any policy exists; if that read fails, the request is refused with a message to retry (fail closed).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from kubeclient.informer import Informer
from kubeclient.resources import NAMESPACES, SECRETS, STORAGE_CLASSES
from kubeclient.rest import ApiError, Kube, NotFound
from webhook.facts import ClusterFacts, FactsUnavailable
from wukong import labels
from wukong.api import WUKONG_POLICIES
from wukong.policy import Policy
from wukong.storageclass import StorageClass

MAX_FETCHED = 10_000  # namespaces read by GET and not yet seen by the watch (a bound, never reached in practice)


class FactsCache:
    """``policies``: also follow WukongPolicies and the namespaces' labels (off only where the WukongPolicy CRD
    is not installed, e.g. a unit test's scripted API)."""

    def __init__(self, kube: Kube, configured_default: str | None = None, policies: bool = True) -> None:
        self._kube = kube
        self._configured_default = configured_default
        self._fetched: dict[str, dict[str, str]] = {}  # labels of namespaces read by GET, until the watch has them
        self._facts = ClusterFacts.of(None, configured_default)  # unknown until the first list has arrived
        self._classes = Informer(kube, STORAGE_CLASSES)
        self._informers = [self._classes]
        self._policies = self._namespaces = None
        if policies:
            self._policies, self._namespaces = Informer(kube, WUKONG_POLICIES), Informer(kube, NAMESPACES)
            self._informers += [self._policies, self._namespaces]
        self._lock = threading.Lock()
        self._stale = False
        for informer in self._informers:
            informer.on_change(self._changed)

    def start(self) -> FactsCache:
        for informer in self._informers:
            informer.start()
        return self

    def stop(self) -> None:
        for informer in self._informers:
            informer.stop()

    def ready(self) -> bool:
        """Every first list has arrived, and the facts built from them: the first request does not build them."""
        if not all(informer.synced for informer in self._informers):
            return False
        self.facts()
        return True

    def facts(self, namespace: str | None = None) -> ClusterFacts:
        """The current snapshot; with ``namespace``, one that knows that namespace's labels whenever a policy could
        select it (raises FactsUnavailable when they cannot be read)."""
        if self._stale:
            with self._lock:
                if self._stale:
                    self._stale = False  # first: a change during the rebuild marks the new snapshot stale again
                    self._facts = self._rebuild()
        facts = self._facts
        if namespace and facts.policies and namespace not in facts.namespace_labels:
            facts = self._learn(namespace)
        return facts

    def may_read_secret(self, user: Mapping[str, Any], namespace: str, name: str) -> bool:
        """Whether ``user`` (an AdmissionReview's userInfo) may get Secret ``name``: a SubjectAccessReview, so the
        webhook itself never needs to read a Secret. Raises FactsUnavailable when the API server does not answer:
        the request is refused, to be retried, never admitted unjudged."""
        try:
            return self._kube.user_may(user, "get", SECRETS, namespace, name)
        except (ApiError, ValueError) as error:
            raise FactsUnavailable(
                f"spec.sshKeySecret names Secret {name!r}, and whether you may read it could not be asked of the API "
                f"server ({error}); KubeVirt copies that Secret into the VM, so the request cannot be judged without "
                f"it: try again"
            ) from None

    def _learn(self, namespace: str) -> ClusterFacts:
        try:
            found = self._kube.get(NAMESPACES, None, namespace)
        except NotFound:
            found = {"metadata": {"name": namespace}}  # judged by its name label, as the API server will refuse it
        except (ApiError, ValueError) as error:
            raise FactsUnavailable(
                f"namespace {namespace!r} is not in the Wukong webhook's cache yet and reading it failed "
                f"({error}); WukongPolicies select namespaces by label, so the request cannot be judged: try again"
            ) from None
        with self._lock:
            if len(self._fetched) >= MAX_FETCHED:
                self._fetched.clear()
            self._fetched.update(labels.of_namespaces([found]))
            self._facts = self._rebuild()
            return self._facts

    def _changed(self, _event: str, _obj: dict[str, Any]) -> None:
        self._stale = True

    def _rebuild(self) -> ClusterFacts:
        classes = [StorageClass.from_manifest(item) for item in self._classes.items()]
        if self._policies is None or self._namespaces is None:
            return ClusterFacts.of(classes, self._configured_default)
        policies = [Policy.from_object(item) for item in self._policies.items()]
        known = labels.of_namespaces(self._namespaces.items())
        for name in [n for n in self._fetched if n in known]:
            del self._fetched[name]  # the watch has caught up: its labels are the current ones
        return ClusterFacts.of(classes, self._configured_default, policies, {**self._fetched, **known})
