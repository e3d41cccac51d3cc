"""The gauges /metrics reports from what a process already holds: the Wukongs in the informer cache, the serving
certificate on disk."""

from __future__ import annotations

import datetime

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from certs import pki
from reconciler.fleet import FleetCollector, tally
from webhook.certmetrics import CertificateValidity

NOW = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)


def wukong(phase: str | None, ready: str = "False", degraded: tuple[str, str] | None = None, since: str = "") -> dict:
    conditions = [{"type": "Ready", "status": ready, "lastTransitionTime": since or "2026-01-01T11:00:00Z"}]
    if degraded:
        reason, when = degraded
        conditions.append({"type": "Degraded", "status": "True", "reason": reason, "lastTransitionTime": when})
    status = {"conditions": conditions} | ({"phase": phase} if phase else {})
    return {"metadata": {"name": "x"}, "status": status}


def test_wukongs_are_counted_by_phase_and_one_without_a_status_is_unknown():
    counted = tally([wukong("Running", "True"), wukong("Running", "True"), wukong(None), {"metadata": {}}], NOW)
    assert counted.phases["Running"] == 2
    assert counted.phases["Unknown"] == 2
    assert counted.phases["Creating"] == 0  # every phase is reported, so an alert's series exists


def test_the_longest_not_ready_and_the_longest_degraded_come_from_the_conditions_transition_times():
    counted = tally(
        [
            wukong("Creating", since="2026-01-01T11:00:00Z"),
            wukong("Creating", since="2026-01-01T10:00:00Z"),
            wukong("Blocked", degraded=("StorageClassNotFound", "2026-01-01T11:30:00Z")),
            wukong("Blocked", degraded=("StorageClassNotFound", "2026-01-01T11:50:00Z")),
            wukong("Running", "True", degraded=("ShrinkRefused", "2026-01-01T11:59:00Z")),
        ],
        NOW,
    )
    assert counted.not_ready_seconds["Creating"] == 7200
    assert counted.not_ready_seconds["Running"] == 0  # Ready=True
    assert counted.degraded == {"StorageClassNotFound": 2, "ShrinkRefused": 1}
    assert counted.degraded_seconds == {"StorageClassNotFound": 1800, "ShrinkRefused": 60}


@pytest.mark.parametrize("status", [None, "a string", {"phase": 7, "conditions": "no"}, {"conditions": [3, None]}])
def test_a_status_of_any_shape_is_counted_as_unknown_without_an_error(status):
    counted = tally([{"status": status}], NOW)
    assert counted.phases["Unknown"] == 1


def test_the_collector_reads_the_cache_at_each_scrape():
    cache = [wukong("Creating")]
    registry = CollectorRegistry()
    registry.register(FleetCollector(lambda: cache, clock=lambda: NOW))
    assert registry.get_sample_value("wukong_wukongs", {"phase": "Creating"}) == 1
    cache.append(wukong("Blocked", degraded=("NetworkNotFound", "2026-01-01T11:00:00Z")))
    assert registry.get_sample_value("wukong_wukongs", {"phase": "Blocked"}) == 1
    assert registry.get_sample_value("wukong_wukongs_degraded", {"reason": "NetworkNotFound"}) == 1
    assert registry.get_sample_value("wukong_wukongs_degraded_seconds_max", {"reason": "NetworkNotFound"}) == 3600
    assert registry.get_sample_value("wukong_wukongs_not_ready_seconds_max", {"phase": "Creating"}) == 3600


def test_the_webhook_reports_the_validity_of_the_certificate_it_serves_and_follows_a_new_one(tmp_path):
    ca = pki.new_ca("ca", datetime.timedelta(days=10))
    path = tmp_path / "tls.crt"
    first = pki.issue(ca, "webhook", datetime.timedelta(days=3))
    path.write_bytes(first.cert_pem)
    registry = CollectorRegistry()
    registry.register(CertificateValidity(str(path)))
    after = registry.get_sample_value("wukong_webhook_certificate_not_after_timestamp_seconds")
    assert after == first.certificate.not_valid_after_utc.timestamp()
    before = registry.get_sample_value("wukong_webhook_certificate_not_before_timestamp_seconds")
    assert before == first.certificate.not_valid_before_utc.timestamp()
    second = pki.issue(ca, "webhook", datetime.timedelta(days=5))
    path.write_bytes(second.cert_pem + b"\n")  # another size: the stamp moves
    after = registry.get_sample_value("wukong_webhook_certificate_not_after_timestamp_seconds")
    assert after == second.certificate.not_valid_after_utc.timestamp()


def test_an_unreadable_certificate_reports_nothing_rather_than_failing_the_scrape(tmp_path):
    path = tmp_path / "tls.crt"
    path.write_text("not a certificate")
    registry = CollectorRegistry()
    registry.register(CertificateValidity(str(path)))
    assert b"certificate" not in generate_latest(registry)
    path.unlink()
    assert b"certificate" not in generate_latest(registry)
