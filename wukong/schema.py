"""The Wukong schema, read from the CRD manifest so that the CRD stays its one source of truth."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

from wukong.api import CRD_NAME, VERSION
from wukong.manifests import load_object

CRD_FILE = f"{CRD_NAME}.yaml"
# Package data: in a checkout a symlink to deploy/crd (the one copy), in a built wheel the file itself.
CRD = resources.files("wukong") / "_crd" / CRD_FILE


@cache
def crd() -> dict[str, Any]:
    return load_object(str(CRD))


@cache
def openapi_schema(version: str = VERSION) -> dict[str, Any]:
    """The openAPIV3Schema of one served version."""
    for served in crd()["spec"]["versions"]:
        if served["name"] == version:
            found: dict[str, Any] = served["schema"]["openAPIV3Schema"]
            return found
    raise LookupError(f"{CRD_FILE}: no version {version!r}")
