"""The Helm chart is generated from deploy/ (devcluster.chart, `make chart`): the committed copy is current, the
chart names no fixed namespace, and one version is written everywhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from devcluster import chart

ROOT = Path(__file__).resolve().parents[2]


def test_every_generated_file_is_what_make_chart_writes_from_deploy_now():
    out_of_date = [str(path.relative_to(ROOT)) for path in [*chart.stale(), *chart.orphans()]]
    assert out_of_date == [], "run `make chart` and commit the result"


def test_the_chart_installs_into_the_release_namespace_and_names_no_other():
    for path in (chart.CHART / "templates").glob("*.yaml"):
        assert chart.NAMESPACE not in path.read_text(), path.name
    assert not (chart.CHART / "templates" / "namespace.yaml").exists()  # Helm's --create-namespace makes it


def test_an_edit_whose_text_left_its_source_fails_the_generation_naming_both():
    spec = chart.Template("x.yaml", "deploy/webhook/pdb.yaml", (chart.Edit("  replicas: 7\n", "  replicas: 8\n"),))
    with pytest.raises(chart.SourceChanged, match=r"deploy/webhook/pdb\.yaml.*templates/x\.yaml, found 0"):
        chart.template(spec)


def test_every_template_is_generated_from_a_file_kustomize_installs():
    sources = {spec.source for spec in chart.TEMPLATES}
    for source in sources:
        folder = (ROOT / source).parent
        kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
        assert Path(source).name in kustomization["resources"], source


def test_one_version_pyproject_s_is_the_chart_s_the_app_s_and_every_image_tag():
    version = chart.version()
    meta = yaml.safe_load((chart.CHART / "Chart.yaml").read_text())
    assert (meta["version"], meta["appVersion"]) == (version, version)
    assert yaml.safe_load((chart.CHART / "values.yaml").read_text())["image"]["tag"] == ""  # appVersion
    images = yaml.safe_load((ROOT / "deploy" / "kustomization.yaml").read_text())["images"]
    assert images == [{"name": chart.IMAGE, "newTag": version}]
    tags = {
        (str(path.relative_to(ROOT)), tag)
        for path in [
            *(ROOT / "deploy").rglob("*.yaml"),
            ROOT / "Dockerfile",
            ROOT / "README.md",
            *(ROOT / "docs").glob("*.md"),
        ]
        for tag in re.findall(re.escape(chart.IMAGE) + r":([0-9][0-9A-Za-z._-]*)", path.read_text())
    }
    assert {tag for _, tag in tags} == {version}, sorted(tags)


def kustomized_files(folder: Path) -> set[str]:
    """Every file a kustomization installs, following its folders."""
    found: set[str] = set()
    for entry in yaml.safe_load((folder / "kustomization.yaml").read_text())["resources"]:
        path = (folder / entry).resolve()
        found |= kustomized_files(path) if path.is_dir() else {str(path.relative_to(ROOT))}
    return found


def test_every_file_the_kustomize_base_installs_is_in_the_chart_or_says_why_not():
    not_templated = {
        "deploy/namespace.yaml": "Helm installs into the release's namespace",
        "deploy/networkpolicy/pod-cidrs.yaml": "local to kustomize: its values are the chart's networkPolicy.podCIDRs",
        "deploy/crd/wukongs.vm.novasphere.dev.yaml": "copied into crds/",
        "deploy/crd/wukongpolicies.vm.novasphere.dev.yaml": "copied into crds/",
    }
    templated = {spec.source for spec in chart.TEMPLATES}
    components = {"deploy/monitoring/monitors.yaml", "deploy/monitoring/rules.yaml"}  # not in the base: opt-in
    assert kustomized_files(ROOT / "deploy") - set(not_templated) == templated - components - {
        "overlays/cert-manager/cert-manager.yaml"
    }
