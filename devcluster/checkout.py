"""Where devcluster finds its data: the source checkout it runs from.

devcluster is a development tool, never installed (it is not in the wheel or the image), so it reads the
manifests it installs -- the CRD, RBAC, webhook configurations, StorageClasses, samples -- and the upstream
schemas from the checkout, and says so plainly when it is run from anywhere else.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def path(*parts: str) -> Path:
    """A file or folder of the checkout; a clear error when it is not there."""
    found = ROOT.joinpath(*parts)
    if not found.exists():
        raise RuntimeError(
            f"devcluster runs from a source checkout of this project and needs {'/'.join(parts)}, "
            f"which is not at {found}; run it from a clone (e.g. `make up`)"
        )
    return found


def deploy(*parts: str) -> Path:
    return path("deploy", *parts)


def upstream_schema(file_name: str) -> Path:
    return path("schemas", "upstream", file_name)
