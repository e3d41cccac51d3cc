"""Every connection to the API server cut once a second: informers resume where they were, never go back in time."""

from __future__ import annotations

import re
import time

from devcluster.local_reconciler import LocalReconciler
from tests.e2e.faults.fleet import create_fleet, wait_fleet_running
from tests.proxy import CuttingProxy

COUNT = 40
INFORMERS = 8  # Wukongs, PVCs, DataVolumes, VMs, VMIs, StorageClasses; WukongPolicies and namespaces (cluster-wide)


def total(metrics: str, name: str) -> float:
    return sum(float(v) for v in re.findall(rf"^{name}(?:\{{[^}}]*\}})? (\S+)$", metrics, re.MULTILINE))


def test_a_reconciler_whose_connections_are_cut_every_second_converges_with_no_stale_cache(
    cluster, admin, namespace, reconciler
):
    reconciler.stop()
    proxy = CuttingProxy(("127.0.0.1", cluster.api_port), period=1.0).start()
    flaky = LocalReconciler(
        cluster, ["--namespace", namespace, "--hotplug-disks"], log_name="reconciler-cut", server=proxy.url
    )
    try:
        flaky.start()
        started = time.monotonic()
        create_fleet(admin, namespace, COUNT)
        wait_fleet_running(admin, namespace, COUNT, timeout=180)
        took = time.monotonic() - started
        metrics = flaky.metrics()
    finally:
        flaky.stop()
        proxy.stop()
        reconciler.start()
    stale = total(metrics, "wukong_informer_stale_events_total")
    relists = total(metrics, "wukong_informer_relists_total")
    watches = total(metrics, "wukong_informer_watches_total")
    assert proxy.cuts > 10, "the proxy cut too little for this to test anything"
    assert stale == 0, "an informer saw an object older than the one it held"
    assert relists == INFORMERS, "an informer listed again: it lost its place instead of resuming"
    assert watches > INFORMERS
    print(
        f"\nwatch cuts: {proxy.cuts} connections cut ({proxy.connections} opened); {COUNT} Wukongs Running after "
        f"{took:.0f}s; {watches:.0f} watches resumed with {relists:.0f} lists in all and {stale:.0f} stale events"
    )
