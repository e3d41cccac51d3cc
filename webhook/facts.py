"""Cluster facts that admission decisions depend on: the StorageClasses, the configured default, and the
WukongPolicies with the labels of the namespaces they select."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from wukong import labels, policy
from wukong.policy import Policy
from wukong.storageclass import StorageClass, cluster_default

MAX_SCOPED_NAMESPACES = 10_000  # namespaces whose facts a snapshot keeps ready


class FactsUnavailable(Exception):
    """A fact a decision needs could not be had: the request is refused, to be retried."""


@dataclass(frozen=True)
class ClusterFacts:
    """``storage_classes`` is None when the classes are unknown (an offline check given no file):
    then rules that need them (V9, W1) are not judged, rather than judged wrongly.

    ``namespace_labels`` are the labels of the namespaces known (``labels.of_namespace`` says how one not among
    them is judged). ``in_namespace`` gives the facts one request
    is judged by: the policies selecting its namespace, and the default class one of them may set."""

    storage_classes: Mapping[str, StorageClass] | None = None
    configured_default: str | None = None
    policies: tuple[Policy, ...] = ()
    namespace_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    namespace: str | None = None
    classes_origin: str | None = None  # where the classes come from when not a cluster (a file), for messages
    # Secret name -> whether the requesting user may read it, as the API server answered a SubjectAccessReview for
    # this request; a Secret not here is not judged (the offline checker, the mutating endpoint).
    readable_secrets: Mapping[str, bool] = field(default_factory=dict)
    policy_scope: policy.Scope | None = field(default=None, init=False, repr=False, compare=False)
    _default: str | None = field(default=None, init=False, repr=False, compare=False)
    _scoped: dict[str, ClusterFacts] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        chosen = self.configured_default
        if chosen is None and self.storage_classes:
            found = cluster_default(self.storage_classes.values())
            chosen = found.name if found else None
        if self.namespace is not None:
            applying = policy.applying(self.policies, labels.of_namespace(self.namespace, self.namespace_labels))
            object.__setattr__(self, "policy_scope", policy.Scope.of(applying, self.namespace))
            if (namespace_default := policy.default_class(applying)) is not None:
                chosen = namespace_default[0]
        object.__setattr__(self, "_default", chosen)

    @classmethod
    def of(
        cls,
        classes: Iterable[StorageClass] | None,
        configured_default: str | None = None,
        policies: Iterable[Policy] = (),
        namespace_labels: Mapping[str, Mapping[str, str]] | None = None,
        classes_origin: str | None = None,
    ) -> ClusterFacts:
        known = None if classes is None else {c.name: c for c in classes}
        return cls(
            storage_classes=known,
            configured_default=configured_default,
            policies=tuple(policies),
            namespace_labels=namespace_labels or {},
            classes_origin=classes_origin,
        )

    def in_namespace(self, namespace: str) -> ClusterFacts:
        """The facts a request in ``namespace`` is judged by, made once per namespace for this snapshot of the
        caches (with no policy at all, the built-in rules still need the namespace)."""
        if namespace == self.namespace:
            return self
        if (scoped := self._scoped.get(namespace)) is None:
            scoped = dataclasses.replace(self, namespace=namespace)
            if len(self._scoped) < MAX_SCOPED_NAMESPACES:
                self._scoped[namespace] = scoped
        return scoped

    @property
    def scope(self) -> policy.Scope:
        """The policies judging this namespace's Wukongs; none (only the built-in rules) before ``in_namespace``."""
        return self.policy_scope or policy.Scope.of((), self.namespace or "")

    @property
    def default_storage_class(self) -> str | None:
        """A policy's default for the namespace, else the configured default, else the cluster's default class."""
        return self._default

    @property
    def knows_storage_classes(self) -> bool:
        return self.storage_classes is not None

    def storage_class(self, name: str) -> StorageClass | None:
        return (self.storage_classes or {}).get(name)
