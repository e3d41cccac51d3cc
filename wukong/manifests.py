"""Reading Kubernetes manifests: YAML or JSON files of one or more documents, or a ``List``."""

from __future__ import annotations

from collections.abc import Iterator
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
    return list(_flatten(documents, source))


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
