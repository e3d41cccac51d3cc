"""The CRD's bounds, checked before anything else looks at an object, on the object the API server would keep.

The API server applies a CRD's ``maxItems``, ``maxProperties`` and ``maxLength`` only after mutating admission,
and anyone who reaches the webhook's port can send it any body. So a request may carry a million disks, a map of
200,000 keys, a string of megabytes, keys no schema knows by the hundred thousand, values nested as deep as the
JSON decoder goes. jsonschema lists every error of every item, defaulting writes every disk, rules iterate every
list: each costs in proportion to what it is given.

So the object is walked once, without recursion, before any of them runs, and what they are given is the copy that
walk makes: the object as the API server prunes it (keys the schema does not know dropped, as are metadata fields
that are not ObjectMeta's; a list or a map where the schema wants something else is kept empty, for jsonschema to
name its type), checked against the bounds of the CRD (the one source of the schema) and Kubernetes' own limits on
metadata. A list or map over its bound is one ``Too many`` error and its items are not looked at; a string over its
bound is one ``Too long``. Only ObjectMeta's opaque fields (managedFields, ownerReferences, ...) are kept as they
are, walked for their depth. What the rest of admission costs is then bounded by the CRD, not by the body.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Final

from webhook.field import FieldError, FieldErrors, Path, invalid, not_supported, too_long, too_many
from wukong import naming, schema

MAX_DEPTH: Final = 32  # a Wukong's deepest value (in managedFields) is about 10 levels down

# Kubernetes' own limits on ObjectMeta (apimachinery's ValidateObjectMeta), which a CRD cannot state.
DNS_SUBDOMAIN_MAX: Final = 253  # metadata.name and generateName of a custom resource
DNS_LABEL_MAX: Final = 63  # metadata.namespace
QUALIFIED_NAME_MAX: Final = DNS_SUBDOMAIN_MAX + 1 + naming.LABEL_VALUE_MAX  # a key: "<prefix>/<name>"
ANNOTATIONS_MAX_BYTES: Final = 256 * 1024  # TotalAnnotationSizeLimitB: keys and values together, in bytes

_PRESERVE: Final = "x-kubernetes-preserve-unknown-fields"
_OPAQUE: Final = {_PRESERVE: True}  # kept as it is, walked for its depth only
# Two bounds of ObjectMeta that openAPI cannot say, in the schema this walk reads (never given to jsonschema).
_KEY_MAX: Final = "x-wukong-key-max-length"
_TOTAL_MAX_BYTES: Final = "x-wukong-total-max-bytes"
_STRING: Final = {"type": "string"}
_SCALARS: Final = ("string", "integer", "number", "boolean")
_OBJECT_META: Final = {
    "type": "object",
    "properties": {
        "name": {**_STRING, "maxLength": DNS_SUBDOMAIN_MAX},
        "generateName": {**_STRING, "maxLength": DNS_SUBDOMAIN_MAX},
        "namespace": {**_STRING, "maxLength": DNS_LABEL_MAX},
        "labels": {
            "type": "object",
            _KEY_MAX: QUALIFIED_NAME_MAX,
            "additionalProperties": {**_STRING, "maxLength": naming.LABEL_VALUE_MAX},
        },
        "annotations": {
            "type": "object",
            _KEY_MAX: QUALIFIED_NAME_MAX,
            _TOTAL_MAX_BYTES: ANNOTATIONS_MAX_BYTES,
            "additionalProperties": _STRING,
        },
        **dict.fromkeys(
            [
                "uid",
                "resourceVersion",
                "generation",
                "selfLink",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "ownerReferences",
                "finalizers",
                "managedFields",
            ],
            _OPAQUE,
        ),
    },
}
KEY_SHOWN: Final = QUALIFIED_NAME_MAX  # a path spells out at most this much of a key

Schema = Mapping[str, Any]
Steps = list[str | int]


@dataclass
class Checked:
    object: dict[str, Any]  # as the API server would keep it, within the bounds when there are no errors
    errors: FieldErrors


def check(obj: Mapping[str, Any]) -> Checked:
    """``obj`` pruned, and every place where it exceeds a bound of the Wukong CRD or of Kubernetes' metadata."""
    return _Walk(bounded=True).run(obj)


def pruned(obj: Mapping[str, Any]) -> Checked:
    """``obj`` pruned, its bounds unchecked, with only what nests deeper than ``MAX_DEPTH``. For the old object of an
    update: it is what the API server stored, perhaps before a bound was added to the CRD."""
    return _Walk(bounded=False).run(obj)


@cache
def _schema() -> Schema:
    """The CRD's openAPIV3Schema, with ObjectMeta where the CRD says only ``type: object``."""
    crd = schema.openapi_schema()
    return {**crd, "properties": {**crd.get("properties", {}), "metadata": _OBJECT_META}}


_Frame = tuple[Iterator[tuple[str | int, Any, Schema]], dict[str, Any] | list[Any]]


class _Walk:
    """One pass over an object: the pruned copy it returns, and the errors found on the way (bounds only when
    ``bounded``)."""

    def __init__(self, bounded: bool) -> None:
        self.bounded = bounded
        self.errors = FieldErrors()

    def run(self, obj: Mapping[str, Any]) -> Checked:
        """Depth first, in document order, with a stack of iterators rather than recursion, copying as it goes.
        Below each known field the schema says what may come, so the stack is as deep as the schema is."""
        top: dict[str, Any] = {}
        steps: Steps = []  # the path of the value at hand: steps[i] is its step below the container of stack[i]
        stack: list[_Frame] = [(_entries(obj, _schema()), top)]
        while stack:
            entries, into = stack[-1]
            entry = next(entries, None)
            if entry is None:
                stack.pop()
                continue
            step, value, node = entry
            del steps[len(stack) - 1 :]
            steps.append(step)
            kept, below = self._visit(value, node, steps)
            if isinstance(into, list):
                into.append(kept)
            else:
                into[str(step)] = kept
            if below is not None:
                stack.append((below, kept))
        return Checked(top, self.errors)

    def _visit(
        self, value: Any, node: Schema, steps: Steps
    ) -> tuple[Any, Iterator[tuple[str | int, Any, Schema]] | None]:
        """What the copy keeps of ``value``, and the entries to walk below it (into the container it keeps)."""
        kind = node.get("type")
        if kind is None:  # ObjectMeta's opaque fields: as they are
            self.errors.extend(_too_deep(value, steps))
            return value, None
        if kind == "object" and isinstance(value, Mapping):
            if self.bounded and (over := _over(value, node, steps)) is not None:
                self.errors.append(over)
                return {}, None
            if self.bounded:
                self.errors.extend(_long_keys(value, node, steps))
            values = node.get("additionalProperties")
            if isinstance(values, Mapping) and values.get("type") in _SCALARS and not node.get("properties"):
                return self._scalars(value, values, steps), None
            return {}, _entries(value, node)
        if kind == "array" and isinstance(value, list):
            limit = node.get("maxItems")
            if self.bounded and limit is not None and len(value) > limit:
                self.errors.append(too_many(_path(steps), len(value), limit))
                return [], None
            items = node.get("items") or _OPAQUE
            return [], ((index, item, items) for index, item in enumerate(value))
        if isinstance(value, Mapping):
            return {}, None  # where the schema wants no object: jsonschema names its type, nothing looks inside
        if isinstance(value, list):
            return [], None
        if self.bounded and isinstance(value, str) and (longest := _longest(node)) is not None and len(value) > longest:
            self.errors.append(_string_error(value, node, steps))
        return value, None

    def _scalars(self, value: Mapping[Any, Any], node: Schema, steps: Steps) -> dict[str, Any]:
        """A map of scalars (labels, annotations, a node selector): copied and checked in one pass, not walked;
        a map holds as many labels as a body has room for."""
        kept = {str(k): {} if isinstance(v, Mapping) else [] if isinstance(v, list) else v for k, v in value.items()}
        if self.bounded and (longest := _longest(node)) is not None:
            self.errors.extend(
                _string_error(item, node, [*steps, key])
                for key, item in kept.items()
                if isinstance(item, str) and len(item) > longest
            )
        return kept


def _entries(value: Mapping[Any, Any], node: Schema) -> Iterator[tuple[str | int, Any, Schema]]:
    """The entries of a map the schema keeps, each with its schema; the others are pruned, unless the schema keeps
    unknown fields (then they are kept as they are, walked for their depth)."""
    known = node.get("properties") or {}
    extra = node.get("additionalProperties")
    other = extra if isinstance(extra, Mapping) else _OPAQUE if node.get(_PRESERVE) else None
    if other is None:
        return ((key, item, known[key]) for key, item in value.items() if key in known)
    return ((str(key), item, known.get(key, other)) for key, item in value.items())


def _too_deep(value: Any, steps: Steps) -> Iterator[FieldError]:
    """The first value nested deeper than ``MAX_DEPTH`` below ``value`` (which is at ``steps``), if any, found with a
    stack of iterators: memory grows with the depth, not the size, and the path is only spelled for an error."""
    base = len(steps) - 1
    stack: list[Iterator[tuple[str | int, Any]]] = [iter(((steps[-1], value),))]
    path = list(steps[:-1])
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
            continue
        step, item = entry
        depth = base + len(stack)
        del path[depth - 1 :]
        path.append(step)
        if depth > MAX_DEPTH:
            yield invalid(
                _path(path), type(item).__name__, f"nested deeper than {MAX_DEPTH} levels; no Wukong field is"
            )
            return
        if isinstance(item, Mapping):
            stack.append(((str(k), v) for k, v in item.items() if isinstance(v, (Mapping, list))))
        elif isinstance(item, list):
            stack.append(((i, v) for i, v in enumerate(item) if isinstance(v, (Mapping, list))))


def _over(value: Mapping[Any, Any], node: Schema, steps: Steps) -> FieldError | None:
    """A map with more entries than its ``maxProperties``, or annotations over Kubernetes' total size."""
    if (limit := node.get("maxProperties")) is not None and len(value) > limit:
        return too_many(_path(steps), len(value), limit)
    if (total := node.get(_TOTAL_MAX_BYTES)) is not None and _bytes(value, total) > total:
        return too_long(_path(steps), total, "bytes")
    return None


def _long_keys(value: Mapping[Any, Any], node: Schema, steps: Steps) -> Iterator[FieldError]:
    """Label and annotation keys longer than a qualified name can be."""
    if (limit := node.get(_KEY_MAX)) is None:
        return
    for key in value:
        if isinstance(key, str) and len(key) > limit:
            yield invalid(_path(steps), key, f"a key may not be more than {limit} characters")


def _longest(node: Schema) -> int | None:
    """The longest string ``node`` allows: its ``maxLength``, or for an enum its longest value."""
    if (limit := node.get("maxLength")) is not None:
        return int(limit)
    allowed = node.get("enum")
    return max((len(str(v)) for v in allowed), default=0) if isinstance(allowed, list) else None


def _string_error(value: str, node: Schema, steps: Steps) -> FieldError:
    """A string longer than ``_longest``: over ``maxLength``, or not one of an enum's values (jsonschema's error,
    found without quoting megabytes)."""
    if (limit := node.get("maxLength")) is not None:
        return too_long(_path(steps), limit)
    return not_supported(_path(steps), value, node["enum"])


def _bytes(entries: Mapping[Any, Any], stop_after: int) -> int:
    """The UTF-8 size of a map's string keys and values as Kubernetes counts it, counted no further than just past
    ``stop_after``."""
    total = 0
    for key, value in entries.items():
        total += _utf8_length(key) + _utf8_length(value)
        if total > stop_after:
            break
    return total


def _utf8_length(text: Any) -> int:
    if not isinstance(text, str):
        return 0
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _path(steps: Steps) -> Path:
    """The path at ``steps``, keys cut to ``KEY_SHOWN`` characters."""
    return Path.of(step if isinstance(step, int) else str(step)[:KEY_SHOWN] for step in steps)
