"""Label selectors (metav1.LabelSelector), as a WukongPolicy's namespaceSelector uses them, and the namespaces'
labels they are matched against."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from wukong.api import NAMESPACE_NAME_LABEL

_OPERATORS = frozenset({"In", "NotIn", "Exists", "DoesNotExist"})


def of_namespaces(namespaces: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, str]]:
    """The labels of Namespace objects by name, with the one the API server gives every namespace."""
    found = {}
    for namespace in namespaces:
        metadata = namespace.get("metadata")
        if not isinstance(metadata, Mapping) or not isinstance(name := metadata.get("name"), str):
            continue
        labels = metadata.get("labels")
        given = {k: v for k, v in labels.items() if isinstance(v, str)} if isinstance(labels, Mapping) else {}
        found[name] = {**given, NAMESPACE_NAME_LABEL: name}
    return found


def of_namespace(name: str, known: Mapping[str, Mapping[str, str]]) -> Mapping[str, str]:
    """A namespace's labels; one not known (the offline checker's) has at least its name label."""
    return known.get(name) or {NAMESPACE_NAME_LABEL: name}


@dataclass(frozen=True)
class Requirement:
    """One matchExpressions entry (matchLabels entries are read as ``In`` with one value)."""

    key: str
    operator: str  # In | NotIn | Exists | DoesNotExist
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.operator == "In":
            return self.key in labels and labels[self.key] in self.values
        if self.operator == "NotIn":
            return self.key not in labels or labels[self.key] not in self.values
        if self.operator == "Exists":
            return self.key in labels
        return self.key not in labels  # DoesNotExist


@dataclass(frozen=True)
class LabelSelector:
    """A namespaceSelector. One Kubernetes would refuse (``malformed``) selects nothing: a policy whose reach
    cannot be read must not silently become a policy over every namespace."""

    requirements: tuple[Requirement, ...] = ()
    malformed: bool = False

    @classmethod
    def from_dict(cls, raw: Any) -> LabelSelector:
        if not isinstance(raw, Mapping):  # absent: a nil selector, which in Kubernetes selects nothing
            return _NOTHING
        labels = raw.get("matchLabels")
        expressions = raw.get("matchExpressions")
        if labels is None:
            labels = {}
        if expressions is None:
            expressions = []
        if not isinstance(labels, Mapping) or not isinstance(expressions, list):
            return _NOTHING
        found: list[Requirement] = []
        for key, value in labels.items():
            if not isinstance(key, str) or not key or not isinstance(value, str):
                return _NOTHING
            found.append(Requirement(key, "In", (value,)))
        for expression in expressions:
            requirement = _requirement(expression)
            if requirement is None:
                return _NOTHING
            found.append(requirement)
        return cls(tuple(found))

    def matches(self, labels: Mapping[str, str]) -> bool:
        return not self.malformed and all(r.matches(labels) for r in self.requirements)

    def unsettled_keys(self, partial: Mapping[str, str]) -> tuple[str, ...]:
        """The label keys whose values would change this selector's verdict on a namespace of which only
        ``partial`` is known (the offline checker knows a namespace's name label and nothing else): none when
        the known labels settle it either way."""
        if self.malformed or any(r.key in partial and not r.matches(partial) for r in self.requirements):
            return ()
        return tuple(sorted({r.key for r in self.requirements if r.key not in partial}))


_NOTHING = LabelSelector(malformed=True)


def _requirement(raw: Any) -> Requirement | None:
    if not isinstance(raw, Mapping):
        return None
    key, operator, values = raw.get("key"), raw.get("operator"), raw.get("values")
    if values is None:
        values = []
    if not isinstance(key, str) or not key or operator not in _OPERATORS or not isinstance(values, list):
        return None
    if not all(isinstance(v, str) for v in values):
        return None
    if (operator in ("In", "NotIn")) != bool(values):  # In/NotIn need values; Exists/DoesNotExist take none
        return None
    return Requirement(key, operator, tuple(values))
