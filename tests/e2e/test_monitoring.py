"""deploy/monitoring against the real thing: each alert's promtool test passes, the dashboard's queries are PromQL
promtool accepts, and every metric and label the rules, their tests and the dashboard use is one a running webhook
and reconciler serve on devcluster -- as docs/operators.md's table says, no more, no less."""

from __future__ import annotations

import json
import ssl
import subprocess
import urllib.request
from collections import defaultdict

import pytest
import yaml
from cryptography import x509
from prometheus_client.parser import text_string_to_metric_families

from certs import files
from devcluster import toolchain
from devcluster.local_reconciler import LocalReconciler
from devcluster.webhooks import LocalWebhook
from tests.e2e.conftest import kustomized
from tests.e2e.test_reconciler import apply, wait_condition
from tests.promql import grouping_labels, selectors
from tests.unit.test_docs_reasons import reasons as degraded_reasons
from tests.unit.test_monitoring import (
    MONITORING,
    ROOT,
    SYNTHETIC,
    TARGET_LABELS,
    base_name,
    dashboard_expressions,
    documented,
    promtool_tests,
    rules,
)
from tests.waiting import poll

# Answered only on a bug (error) or an API server that cannot be asked (unavailable), which a healthy devcluster
# does not give; both are the webhook's own literals (webhook/app.py).
UNPROVOKED = {("verdict", "error"), ("verdict", "unavailable")}
# A labelled counter has no series before its first count, and this one counts only what a healthy API server
# never sends (tests/e2e/faults provoke it).
UNCOUNTED = {"wukong_informer_stale_events_total"}


@pytest.fixture(scope="module")
def promtool() -> str:
    toolchain.ensure_built(lambda line: print(line, flush=True))
    return str(toolchain.binary_path("promtool"))


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_every_alert_passes_its_promtool_test(promtool, tmp_path):
    rule = yaml.safe_load((MONITORING / "rules.yaml").read_text())
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rule["spec"], sort_keys=False))
    descriptions = {r["alert"]: r["annotations"]["description"] for r in rules()}
    tests = yaml.safe_load((ROOT / "tests" / "promtool" / "rules-test.yaml").read_text())
    for case in tests["tests"]:
        for check in case["alert_rule_test"]:
            for alert in check.get("exp_alerts") or []:
                alert["exp_annotations"]["description"] = descriptions[check["alertname"]]
    (tmp_path / "rules-test.yaml").write_text(yaml.safe_dump(tests, sort_keys=False))
    checked = run(promtool, "check", "rules", str(tmp_path / "rules.yaml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = run(promtool, "test", "rules", str(tmp_path / "rules-test.yaml"))
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_a_failing_promtool_test_fails(promtool, tmp_path):
    """The harness above would notice an alert that does not fire as its test says."""
    rule = yaml.safe_load((MONITORING / "rules.yaml").read_text())
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rule["spec"]))
    case = {
        "interval": "1m",
        "input_series": [{"series": 'wukong_wukongs{phase="Error"}', "values": "0x10"}],
        "alert_rule_test": [{"eval_time": "10m", "alertname": "WukongsInError", "exp_alerts": [{"exp_labels": {}}]}],
    }
    test = {"rule_files": ["rules.yaml"], "tests": [case]}
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(test))
    assert run(promtool, "test", "rules", str(tmp_path / "t.yaml")).returncode != 0


def test_the_dashboard_queries_are_promql_promtool_accepts(promtool, tmp_path):
    recorded = [
        {"record": f"dashboard:query{i}", "expr": expr.replace("$__rate_interval", "5m")}
        for i, expr in enumerate(dashboard_expressions())
    ]
    (tmp_path / "dashboard.yaml").write_text(yaml.safe_dump({"groups": [{"name": "d", "rules": recorded}]}))
    checked = run(promtool, "check", "rules", str(tmp_path / "dashboard.yaml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def scrape(url: str, context: ssl.SSLContext | None = None) -> dict[str, dict[str, set[str]]]:
    """sample name -> label -> values."""
    with urllib.request.urlopen(url, context=context, timeout=10) as response:
        text = response.read().decode()
    samples: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = samples[sample.name]
            for label, value in sample.labels.items():
                labels[label].add(value)
    return samples


@pytest.fixture
def served(cluster, admin, namespace, webhook: LocalWebhook, reconciler: LocalReconciler):
    """Both processes' /metrics once they have seen an allowed, a patched and a denied request, reconciled a
    Wukong and found one Degraded."""
    sample = yaml.safe_load((ROOT / "deploy" / "samples" / "single-disk.yaml").read_text())
    apply(cluster, namespace, sample)
    smaller = json.loads(json.dumps(sample))
    smaller["spec"]["disks"][0]["size"] = "20Gi"
    shrink = cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(smaller), check=False)
    assert shrink.returncode != 0
    blocked = json.loads(json.dumps(sample))
    blocked["metadata"]["name"] = "blocked"
    blocked["spec"]["networks"] = [{"name": "corp", "type": "bridge", "nadName": "corp-lan"}]  # no such NAD
    apply(cluster, namespace, blocked)
    wait_condition(admin, namespace, "blocked", "Degraded", "True")
    webhook_metrics = scrape(f"{webhook.url}/metrics", trusting(webhook))
    reconciler_url = f"http://127.0.0.1:{reconciler.metrics_port}/metrics"

    def degraded_reported() -> dict[str, dict[str, set[str]]] | None:
        found = scrape(reconciler_url)
        return found if found.get("wukong_wukongs_degraded") else None

    reconciler_metrics = poll(
        degraded_reported,
        "the reconciler to report the Degraded Wukong",
    )
    return {"webhook": webhook_metrics, "reconciler": reconciler_metrics}


def trusting(webhook: LocalWebhook) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(webhook.certs_dir / files.CA_CERT))


def families(samples: dict[str, dict[str, set[str]]]) -> set[str]:
    return {base_name(name) for name in samples if name.startswith("wukong_") and not name.endswith("_created")}


def test_each_process_serves_exactly_the_metrics_the_documentation_lists(served):
    table = documented()
    for process, samples in served.items():
        listed = {name for name, source in table.items() if source == process}
        assert families(samples) == listed - UNCOUNTED, process


def test_every_metric_and_label_the_rules_their_tests_and_the_dashboard_use_is_served(served):
    samples: dict[str, dict[str, set[str]]] = {}
    for found in served.values():
        samples |= found
    expressions = [r["expr"] for r in rules()] + dashboard_expressions()
    used = [s for expr in expressions for s in selectors(expr)]
    used += [s for case in promtool_tests() for series in case["input_series"] for s in selectors(series["series"])]
    for selector in used:
        if selector.name in SYNTHETIC:
            continue
        assert selector.name in samples, f"{selector.name} is not served"
        labels = samples[selector.name]
        for label, operator, value in selector.matchers:
            if label in TARGET_LABELS:
                continue
            assert label in labels, f"{selector.name} has no label {label}"
            for one in value.split("|") if operator == "=~" else [value]:
                known = one in labels[label] or (label, one) in UNPROVOKED
                known = known or (label == "reason" and one in degraded_reasons())  # any the reconciler gives
                assert known, f"{selector.name}{{{label}={one!r}}}"
    for expr in expressions:
        names = [s.name for s in selectors(expr) if s.name not in SYNTHETIC]
        have = set().union(*(samples[name].keys() for name in names)) if names else set()
        assert grouping_labels(expr) <= have | TARGET_LABELS, expr


def test_the_webhook_reports_the_certificate_it_serves(served, webhook: LocalWebhook):
    certificate = x509.load_pem_x509_certificate((webhook.certs_dir / files.TLS_CERT).read_bytes())
    with urllib.request.urlopen(f"{webhook.url}/metrics", context=trusting(webhook), timeout=10) as response:
        text = response.read().decode()
    values = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
    assert (
        values["wukong_webhook_certificate_not_after_timestamp_seconds"] == certificate.not_valid_after_utc.timestamp()
    )


def test_the_kustomize_component_and_the_dashboard_configmap_render(cluster, tmp_path):
    rendered = kustomized(cluster, ROOT / "overlays" / "monitoring", tmp_path)
    kinds = {(d["kind"], d["metadata"]["name"]) for d in rendered}
    assert {
        ("ServiceMonitor", "wukong-webhook"),
        ("PodMonitor", "wukong-reconciler"),
        ("PrometheusRule", "wukong"),
    } <= kinds
    (configmap,) = [d for d in rendered if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "wukong-dashboard"]
    assert json.loads(configmap["data"]["wukong.json"]) == json.loads((MONITORING / "dashboard.json").read_text())
    base = kustomized(cluster, ROOT / "deploy", tmp_path / "base")
    assert not {d["kind"] for d in base} & {"ServiceMonitor", "PodMonitor", "PrometheusRule"}


def gauge(replica: LocalReconciler, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{replica.metrics_port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return next(s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name == name)


def test_exactly_one_replica_reports_leading_and_the_standby_takes_over_the_gauge(cluster, reconciler):
    """What WukongReconcilerNoLeader and WukongReconcilerQueueNotDraining read: the Lease holder says 1."""
    reconciler.stop()
    replicas = [LocalReconciler(cluster, ["--leader-elect"], log_name=f"leading{i}") for i in range(2)]
    try:
        for replica in replicas:
            replica.start()
        leading = poll(
            lambda: found if sum(found := [gauge(r, "wukong_reconciler_leader") for r in replicas]) == 1 else None,
            "one replica to lead",
        )
        leader, standby = (replicas[0], replicas[1]) if leading[0] == 1 else (replicas[1], replicas[0])
        assert leader.stop() == 0  # releases the Lease
        poll(lambda: gauge(standby, "wukong_reconciler_leader") == 1, "the standby to lead", timeout=20)
    finally:
        for replica in replicas:
            replica.stop()
        reconciler.start()


def test_the_shards_held_add_up_to_the_shards(cluster, reconciler):
    """What WukongReconcilerShardsUnowned reads."""
    reconciler.stop()
    replicas = [
        LocalReconciler(cluster, ["--shards", "4", "--shard-replicas", "2"], log_name=f"sharded{i}") for i in range(2)
    ]
    try:
        for replica in replicas:
            replica.start()
        poll(
            lambda: sum(gauge(r, "wukong_reconciler_shards_held") for r in replicas) == 4 or None,
            "the replicas to hold every shard",
            timeout=30,
        )
        assert [gauge(r, "wukong_reconciler_shards") for r in replicas] == [4, 4]
        assert [gauge(r, "wukong_reconciler_leader") for r in replicas] == [1, 1]
    finally:
        for replica in replicas:
            replica.stop()
        reconciler.start()


@pytest.fixture(scope="module")
def operator_crds(cluster) -> None:
    """The Prometheus Operator's CRDs for the three kinds, as it publishes them (schemas/upstream/)."""
    for kind in ("servicemonitors", "podmonitors", "prometheusrules"):
        crd = ROOT / "schemas" / "upstream" / f"monitoring.coreos.com_{kind}.yaml"
        cluster.kubectl("apply", "--server-side", "-f", str(crd))
        cluster.kubectl("wait", "--for=condition=Established", f"crd/{kind}.monitoring.coreos.com", "--timeout=30s")


def test_the_api_server_accepts_the_monitors_the_rule_and_the_dashboard(cluster, operator_crds, tmp_path):
    rendered = kustomized(cluster, ROOT / "overlays" / "monitoring", tmp_path)
    ours = [d for d in rendered if d["kind"] in {"ServiceMonitor", "PodMonitor", "PrometheusRule", "ConfigMap"}]
    assert len(ours) == 4
    cluster.kubectl("create", "namespace", "wukong-system", check=False)
    items = json.dumps({"apiVersion": "v1", "kind": "List", "items": ours})
    result = cluster.kubectl(
        "apply", "--server-side", "--dry-run=server", "--field-manager=e2e", "-f", "-", stdin=items, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "servicemonitor.monitoring.coreos.com/wukong-webhook serverside-applied (server dry run)" in result.stdout
    monitor = next(d for d in ours if d["kind"] == "ServiceMonitor")
    monitor["spec"]["endpoints"][0]["schema"] = "https"  # a misspelt field: the check above is a real one
    wrong = cluster.kubectl(
        "apply", "--server-side", "--dry-run=server", "-f", "-", stdin=json.dumps(monitor), check=False
    )
    assert wrong.returncode != 0 and "schema" in wrong.stderr, wrong.stdout
