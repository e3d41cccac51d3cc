"""The Wukong schema, read from the CRD manifest so that the CRD stays its one source of truth."""

from __future__ import annotations

import os
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from wukong.api import CRD_NAME, VERSION
from wukong.manifests import load_object

CRD_FILE = f"{CRD_NAME}.yaml"
CRD_PATH_ENV = "WUKONG_CRD"


def crd_path() -> Path:
    """Where the CRD manifest is: $WUKONG_CRD, the copy packed into a built wheel, or the source checkout."""
    if override := os.environ.get(CRD_PATH_ENV):
        return Path(override)
    packaged = resources.files("wukong") / "_crd" / CRD_FILE
    if packaged.is_file():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / "deploy" / "crd" / CRD_FILE


@cache
def crd() -> dict[str, Any]:
    return load_object(crd_path())


@cache
def openapi_schema(version: str = VERSION) -> dict[str, Any]:
    """The openAPIV3Schema of one served version."""
    for served in crd()["spec"]["versions"]:
        if served["name"] == version:
            found: dict[str, Any] = served["schema"]["openAPIV3Schema"]
            return found
    raise LookupError(f"{crd_path()}: no version {version!r}")
