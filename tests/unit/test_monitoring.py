"""deploy/monitoring: the alerts each have a promtool test that fires them, and the rules and the dashboard query
only the metrics docs/operators.md documents as the interface (tests/e2e/test_monitoring.py holds those to a real
scrape and runs promtool)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tests.promql import grouping_labels, selectors

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "deploy" / "monitoring"
TARGET_LABELS = {"job", "instance", "pod", "namespace", "container", "endpoint", "service"}  # Prometheus adds them
SYNTHETIC = {"up"}  # Prometheus' own series per target


def rules() -> list[dict]:
    rule = yaml.safe_load((MONITORING / "rules.yaml").read_text())
    return [r for group in rule["spec"]["groups"] for r in group["rules"]]


def dashboard_expressions() -> list[str]:
    dashboard = json.loads((MONITORING / "dashboard.json").read_text())
    return [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]


def promtool_tests() -> list[dict]:
    return yaml.safe_load((ROOT / "tests" / "promtool" / "rules-test.yaml").read_text())["tests"]


def documented() -> dict[str, str]:
    """docs/operators.md's metrics table: metric -> the process that serves it."""
    text = (ROOT / "docs" / "operators.md").read_text()
    rows = re.findall(r"^\| `(wukong_[a-z_]+)` \|[^|]*\| ([a-z ]+) \|", text, re.MULTILINE)
    return dict(rows)


def base_name(sample: str) -> str:
    return re.sub(r"_(bucket|sum|count)$", "", sample)


def test_the_component_installs_the_monitors_the_rules_and_the_dashboard():
    component = yaml.safe_load((MONITORING / "kustomization.yaml").read_text())
    assert component["kind"] == "Component"
    assert component["resources"] == ["monitors.yaml", "rules.yaml"]
    (generator,) = component["configMapGenerator"]
    assert generator["files"] == ["wukong.json=dashboard.json"]
    assert generator["options"]["labels"]["grafana_dashboard"] == "1"
    base = yaml.safe_load((ROOT / "deploy" / "kustomization.yaml").read_text())
    assert "monitoring" not in base["resources"]  # off by default: the CRDs may not exist


def test_every_alert_has_a_promtool_test_that_fires_it_and_one_where_it_does_not():
    fired, quiet = set(), set()
    for case in promtool_tests():
        for check in case["alert_rule_test"]:
            (fired if check.get("exp_alerts") else quiet).add(check["alertname"])
    alerts = {r["alert"] for r in rules()}
    assert alerts - fired == set()
    assert alerts - quiet == set()
    assert fired - alerts == set()


def test_every_alert_says_how_bad_and_what_to_look_at():
    for rule in rules():
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
        assert "{{" not in rule["annotations"]["description"], "descriptions are static: the promtool test copies them"


@pytest.mark.parametrize(
    "expr",
    [r["expr"] for r in rules()] + dashboard_expressions(),
    ids=[r["alert"] for r in rules()] + [f"dashboard-{i}" for i in range(len(dashboard_expressions()))],
)
def test_every_query_uses_documented_metrics_only(expr):
    assert selectors(expr), expr
    names = {base_name(s.name) for s in selectors(expr)} - SYNTHETIC
    assert names - set(documented()) == set(), "document the metric in docs/operators.md or use another"


def test_the_promtool_series_are_documented_metrics_too():
    for case in promtool_tests():
        for series in case["input_series"]:
            (selector,) = selectors(series["series"])
            assert base_name(selector.name) in set(documented()) | SYNTHETIC, series["series"]


def test_the_dashboard_asks_for_its_data_source_and_groups_by_labels_it_has():
    dashboard = json.loads((MONITORING / "dashboard.json").read_text())
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
            for target in panel["targets"]:
                used = set(re.findall(r"\{\{(\w+)\}\}", target["legendFormat"]))
                assert used <= grouping_labels(target["expr"]) | TARGET_LABELS, target["expr"]


def test_the_selectors_are_read_as_prometheus_reads_them():
    expr = 'sum by (endpoint, le) (rate(a_bucket{x="1", y=~"p|q"}[5m])) and on (instance) b == 1 or absent(up{job="j"})'
    assert [(s.name, s.matchers) for s in selectors(expr)] == [
        ("a_bucket", (("x", "=", "1"), ("y", "=~", "p|q"))),
        ("b", ()),
        ("up", (("job", "=", "j"),)),
    ]
    assert grouping_labels(expr) == {"endpoint", "le"}
