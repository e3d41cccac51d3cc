"""Three reconciler replicas share the Wukongs by shard Leases; a killed replica's shards move to the others.

Every pass a replica makes is in its log (DEBUG: started/ended, wall clock); the audit checks that no Wukong had
passes of two replicas overlapping in time.
"""

from __future__ import annotations

import itertools
import re
import time
from collections import defaultdict
from pathlib import Path

from devcluster.local_reconciler import NAMESPACE, LocalReconciler
from kubeclient.resources import LEASES, PVCS
from kubeclient.rest import NotFound
from tests.e2e.faults.fleet import create_fleet, wait_fleet_running
from tests.waiting import poll, wait_for_object
from wukong.api import WUKONGS

SHARDS, REPLICAS, LEASE_SECONDS, COUNT = 6, 3, 4, 30
PASS = re.compile(r"pass (\S+) (started|ended) at (\d+\.\d+)")


def holders(admin) -> dict[int, str]:
    found = {}
    for shard in range(SHARDS):
        try:
            lease = admin.get(LEASES, NAMESPACE, f"wukong-reconciler-shard-{shard}")
        except NotFound:
            continue
        found[shard] = (lease.get("spec") or {}).get("holderIdentity") or ""
    return found


def identity(replica: LocalReconciler) -> str:
    text = Path(replica.plane.workdir / f"{replica.log_name}.log").read_text()
    return re.search(r"wukong-reconciler (\S+) started", text).group(1)


def passes(replica: LocalReconciler) -> dict[str, list[tuple[float, float]]]:
    """Each Wukong's passes in this replica's log, as (start, end)."""
    found: dict[str, list[tuple[float, float]]] = defaultdict(list)
    open_: dict[str, float] = {}
    for key, what, at in PASS.findall(Path(replica.plane.workdir / f"{replica.log_name}.log").read_text()):
        if what == "started":
            open_[key] = float(at)
        elif key in open_:
            found[key].append((open_.pop(key), float(at)))
    for key, start in open_.items():  # a pass that failed or was cut short by the kill
        found[key].append((start, start + 1.0))
    return found


def test_three_replicas_share_the_wukongs_and_take_over_a_killed_ones_shards(cluster, admin, namespace, reconciler):
    reconciler.stop()
    args = ["--shards", str(SHARDS), "--shard-replicas", str(REPLICAS), "--lease-seconds", str(LEASE_SECONDS)]
    args += ["--namespace", namespace, "--log-level", "DEBUG", "--resync-period", "5"]
    replicas = [LocalReconciler(cluster, args, log_name=f"shard-replica-{i}") for i in range(REPLICAS)]
    try:
        for replica in replicas:
            replica.start()
        names = [identity(r) for r in replicas]
        poll(lambda: len(holders(admin)) == SHARDS and set(holders(admin).values()) <= set(names), "all shards held")
        create_fleet(admin, namespace, COUNT)
        wait_fleet_running(admin, namespace, COUNT, timeout=120)
        spread = {name: sum(1 for h in holders(admin).values() if h == name) for name in names}
        assert sorted(spread.values()) == [2, 2, 2], spread

        replicas[0].kill()
        killed, killed_at = names[0], time.monotonic()
        poll(
            lambda: len(holders(admin)) == SHARDS and killed not in holders(admin).values(),
            "the killed replica's shards taken over",
            timeout=6 * LEASE_SECONDS,
        )
        takeover = time.monotonic() - killed_at
        moved = {shard for shard, holder in holders(admin).items() if holder != killed}
        assert len(moved) == SHARDS
        grown = "vm0"
        disks = admin.get(WUKONGS, namespace, grown)["spec"]["disks"]
        disks[1]["size"] = "30Gi"
        admin.patch(WUKONGS, namespace, grown, {"spec": {"disks": disks}})
        wait_for_object(
            admin,
            PVCS,
            namespace,
            f"{grown}-data",
            lambda pvc: pvc and pvc["spec"]["resources"]["requests"]["storage"] == "30Gi",
            "a Wukong of any shard still reconciled after the kill",
        )
    finally:
        for replica in replicas[1:]:
            replica.stop()
        reconciler.start()

    audits = [passes(r) for r in replicas]
    overlaps = []
    for key in {k for audit in audits for k in audit}:
        intervals = sorted((start, end, i) for i, audit in enumerate(audits) for start, end in audit.get(key, []))
        for (_s1, e1, r1), (s2, _e2, r2) in itertools.pairwise(intervals):
            if r1 != r2 and s2 < e1:
                overlaps.append((key, r1, r2))
    reconciled_by = [len(audit) for audit in audits]
    assert all(count > 0 for count in reconciled_by), f"a replica reconciled nothing: {reconciled_by}"
    assert overlaps == [], f"passes of two replicas overlapped: {overlaps[:5]}"
    print(
        f"\nsharding: {SHARDS} shards over {REPLICAS} replicas (2 each); Wukongs reconciled per replica "
        f"{reconciled_by}; after kill -9 of one, its shards moved in {takeover:.1f}s (Lease {LEASE_SECONDS}s); "
        f"0 overlapping passes"
    )
