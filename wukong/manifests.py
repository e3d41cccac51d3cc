"""Kubernetes manifests: read from YAML or JSON files of one or more documents, or a ``List``; and a live object
compared with the one a controller wants."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

Obj = dict[str, Any]  # a Kubernetes object as JSON: what every layer of this project passes around


class ManifestError(ValueError):
    """A file that cannot be read as Kubernetes objects; the message names the file and the problem."""


def load_objects(path: str | Path) -> list[dict[str, Any]]:
    """Every object in a file: YAML documents (JSON is YAML) with ``kind: List`` flattened, empty ones dropped."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ManifestError(f"{path}: cannot read: {error.strerror or error}") from None
    return parse_objects(text, source=str(path))


def parse_objects(text: str, source: str = "<input>") -> list[dict[str, Any]]:
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as error:
        raise ManifestError(f"{source}: not valid YAML or JSON: {_first_line(error)}") from None
    return [as_the_api_server_decodes(obj) for obj in _flatten(documents, source)]


def as_the_api_server_decodes(value: Any) -> Any:
    """The object as the API server holds it after decoding JSON: a whole float (``cpu: 64.0``) that fits an int64
    is an integer, as apimachinery's JSON decoder makes it before any schema or webhook sees it (a float with a
    fraction stays one, and an integer field's schema refuses it). Applied once, where text becomes objects, so
    that the offline checker judges every field, of Wukongs and WukongPolicies alike, as the cluster would."""
    if isinstance(value, float) and value.is_integer() and -(2**63) <= value < 2**63:  # what fits an int64
        return int(value)
    if isinstance(value, dict):
        return {key: as_the_api_server_decodes(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_the_api_server_decodes(item) for item in value]
    return value


def load_object(path: str | Path) -> dict[str, Any]:
    """The single object a file holds; several or none is an error."""
    objects = load_objects(path)
    if len(objects) != 1:
        raise ManifestError(f"{path}: expected exactly one object, found {len(objects)}")
    return objects[0]


def _flatten(documents: list[Any], source: str) -> Iterator[dict[str, Any]]:
    for index, document in enumerate(documents):
        if document is None:
            continue
        if not isinstance(document, dict):
            raise ManifestError(f"{source}: document {index + 1} is a {type(document).__name__}, not an object")
        if document.get("kind") == "List" or (
            str(document.get("kind", "")).endswith("List") and isinstance(document.get("items"), list)
        ):
            yield from _flatten(document.get("items") or [], source)
        else:
            yield document


def _first_line(error: Exception) -> str:
    return " ".join(str(error).split())


def contains(live: Any, desired: Any) -> bool:
    """True when everything ``desired`` says is already in ``live``: defaults other controllers add are fine (lists
    must match item by item, as a merge patch replaces a list whole)."""
    if isinstance(desired, Mapping):
        return isinstance(live, Mapping) and all(contains(live.get(k), v) for k, v in desired.items())
    if isinstance(desired, list):
        return isinstance(live, list) and len(live) == len(desired) and all(map(contains, live, desired))
    return bool(live == desired)
