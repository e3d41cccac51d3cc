"""The image's Python layer, built the way the Dockerfile builds it but into a virtualenv (no container engine here):
every package from requirements.lock with --require-hashes and wheels only, then the project's wheel alone. It needs
the package index, as the image build does."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements.lock"


def run(*command: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(part) for part in command], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def image_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("image")
    venv.create(root / "venv", with_pip=True)
    python = root / "venv" / "bin" / "python"
    installed = run(python, "-m", "pip", "install", "--require-hashes", "--only-binary=:all:", "-r", LOCK)
    assert installed.returncode == 0, installed.stderr
    wheel = run(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", root / "wheels", ROOT
    )
    assert wheel.returncode == 0, wheel.stderr
    (built,) = (root / "wheels").glob("wukong-*.whl")
    project = run(python, "-m", "pip", "install", "--no-deps", built)
    assert project.returncode == 0, project.stderr
    return python


def test_the_lock_holds_every_dependency_the_product_needs(image_python):
    check = run(image_python, "-m", "pip", "check")
    assert check.returncode == 0, check.stdout


@pytest.mark.parametrize("command", ["wukong-webhook", "wukong-reconciler", "wukong-certs", "kubectl-wukong"])
def test_each_product_command_starts_from_the_locked_packages(image_python, command):
    result = run(image_python.parent / command, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage:")


def test_a_package_whose_hash_differs_from_the_lock_is_refused(image_python, tmp_path):
    """--require-hashes is what makes the lock a guarantee: one altered hash and nothing is installed."""
    (pinned,) = [block for block in LOCK.read_text().split("\n") if block.startswith("a2wsgi==")]
    version = pinned.split("==")[1].split()[0]
    tampered = tmp_path / "tampered.lock"
    tampered.write_text(f"a2wsgi=={version} --hash=sha256:{'0' * 64}\n")
    result = run(
        image_python,
        "-m",
        "pip",
        "install",
        "--force-reinstall",
        "--require-hashes",
        "--only-binary=:all:",
        "-r",
        tampered,
    )
    assert result.returncode != 0
    assert "DO NOT MATCH THE HASHES" in result.stderr
