"""What the image is built from can only be what was reviewed: the base by digest, every package pinned with hashes.

The image itself needs a container engine; tests/integration/test_image_dependencies.py installs the lock the way
the Dockerfile does. Here, the files that decide it.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
LOCKS = ("requirements.lock", "requirements-build.lock")
_PINNED = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def locked(name: str) -> dict[str, tuple[str, list[str]]]:
    """{package: (version, hashes)} from a pip-compile --generate-hashes file (continuation lines joined)."""
    text = (ROOT / name).read_text().replace("\\\n", " ")
    entries = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            match = _PINNED.match(line.strip())
            assert match, f"{name}: not an exact pin: {line.strip()[:80]}"
            entries[canonicalize_name(match[1])] = (match[2], re.findall(r"--hash=sha256:([0-9a-f]{64})", line))
    return entries


@pytest.mark.parametrize("name", LOCKS)
def test_every_locked_package_is_pinned_exactly_with_hashes(name):
    entries = locked(name)
    assert entries, f"{name} is empty"
    assert [package for package, (_, hashes) in entries.items() if not hashes] == []


def test_every_runtime_dependency_is_locked_at_a_version_pyproject_allows():
    """A dependency added to pyproject.toml without `make lock` fails here, not in the image build."""
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    entries = locked("requirements.lock")
    for dependency in map(Requirement, dependencies):
        name = canonicalize_name(dependency.name)
        assert name in entries, f"{dependency.name} is not in requirements.lock: run make lock"
        assert Version(entries[name][0]) in dependency.specifier, f"{name} {entries[name][0]} vs {dependency}"


def test_the_build_stage_has_its_backend_and_the_sbom_generator_locked():
    assert {"hatchling", "cyclonedx-bom"} <= set(locked("requirements-build.lock"))


def test_the_dockerfile_takes_its_base_by_digest_and_packages_only_with_hashes():
    dockerfile = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    (base,) = re.findall(r"^ARG BASE_IMAGE=(\S+)$", dockerfile, re.MULTILINE)
    assert re.fullmatch(r"python:3\.11-slim@sha256:[0-9a-f]{64}", base), base
    assert set(re.findall(r"^FROM (\S+)", dockerfile, re.MULTILINE)) == {"${BASE_IMAGE}"}
    installs = [line for line in dockerfile.splitlines() if "pip install" in line]
    for command in (part for line in installs for part in line.split("&&") if "pip install" in part):
        assert "--require-hashes" in command or "--no-deps /wheels/" in command, command
    assert {"/tmp/requirements.lock", "requirements-build.lock"} <= {
        word for line in installs for word in line.split() if word.endswith(".lock")
    }
