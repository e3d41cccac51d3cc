"""``kill -9`` of the reconciler at random points of a convergence: nothing deleted, shrunk or duplicated."""

from __future__ import annotations

import random
import time

from tests.audit import PVCAudit
from tests.e2e.faults.fleet import create_fleet, wait_fleet_running
from tests.waiting import poll

COUNT = 100
KILLS = 5


def test_kill_9_during_the_convergence_of_100_wukongs_loses_nothing(cluster, admin, namespace, reconciler):
    seed = random.randrange(1 << 30)
    points = sorted(random.Random(seed).sample(range(20, 500), KILLS))  # PVC events seen before each kill
    audit = PVCAudit(admin, namespace).start()
    reconciler.kill()
    started = time.monotonic()
    create_fleet(admin, namespace, COUNT)
    for point in points:
        reconciler.start()
        poll(lambda p=point: audit.events >= p, f"{point} PVC events", timeout=120, interval=0.01)
        reconciler.kill()
    reconciler.start()
    wait_fleet_running(admin, namespace, COUNT, timeout=300)
    took = time.monotonic() - started
    audit.stop()
    assert audit.deleted == []
    assert audit.decreased == []
    assert audit.duplicates == []
    assert len(audit.uids) == 2 * COUNT
    print(
        f"\nkill -9: {KILLS} kills at PVC events {points} (seed {seed}); {COUNT} Wukongs Running after {took:.0f}s; "
        f"{audit.summary()}"
    )
