"""The wheel the image installs, built as the Dockerfile builds it: the product only, with its CRD and commands."""

from __future__ import annotations

import configparser
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[zipfile.ZipFile]:
    """``pip wheel`` of the checkout; no build isolation, so hatchling comes from the dev extras, not the network."""
    out = tmp_path_factory.mktemp("wheels")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", out, ROOT],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, f"pip wheel failed (is the dev extra, with hatchling, installed?):\n{build.stderr}"
    (built,) = out.glob("wukong-*.whl")
    with zipfile.ZipFile(built) as archive:
        yield archive


@pytest.mark.parametrize(
    "path",
    [
        "kubeclient/informer.py",
        "reconciler/controller.py",
        "webhook/app.py",
        "certs/pki.py",
        "wukongctl/cli.py",
        "wukong/_crd/wukongs.vm.novasphere.dev.yaml",
    ],
)
def test_the_wheel_holds_the_product_and_its_crd(wheel, path):
    assert path in wheel.namelist()


def test_the_wheel_leaves_the_development_tools_out(wheel):
    assert [name for name in wheel.namelist() if name.startswith("devcluster/")] == []


def test_the_wheel_installs_the_product_commands_and_the_kubectl_plugin_and_no_devcluster_command(wheel):
    (entry_points,) = [name for name in wheel.namelist() if name.endswith(".dist-info/entry_points.txt")]
    parser = configparser.ConfigParser()
    parser.read_string(wheel.read(entry_points).decode())
    assert sorted(parser["console_scripts"]) == [
        "kubectl-wukong",
        "wukong-certs",
        "wukong-reconciler",
        "wukong-webhook",
    ]
