"""What WukongPolicies add to an admission decision, in process, against the same decision with none.

    .venv/bin/python bench/policies.py [--rounds 2000]

The two-disk sample is decided as the API server asks for it (``/mutate`` then ``/validate``, CREATE and an UPDATE
that grows a disk) with no policy, then with the namespace selected by the two example policies in
``deploy/policies/`` plus ten more that each set every limit (the strictest-wins path), then with 1,000 policies of
which none selects the namespace (the cost of the selectors alone). Printed: µs per decision and the ratio to the
decision without policies, measured in the same run, interleaved round by round so that noise falls on all alike.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import time
from pathlib import Path

import yaml

from webhook.admission import AdmissionRequest, Endpoint, decide
from webhook.facts import ClusterFacts
from wukong.policy import Policy
from wukong.storageclass import StorageClass

ROOT = Path(__file__).resolve().parent.parent
NAMESPACE = "shop"
LABELS = {NAMESPACE: {"environment": "production", "wukong.novasphere.dev/tier": "small"}}


def request(operation: str, new: dict, old: dict | None = None) -> AdmissionRequest:
    made: AdmissionRequest = {
        "uid": "bench",
        "kind": {"group": "vm.novasphere.dev", "version": "v1alpha1", "kind": "Wukong"},
        "operation": operation,  # type: ignore[typeddict-item]
        "namespace": NAMESPACE,
        "object": new,
    }
    if old is not None:
        made["oldObject"] = old
    return made


def generous(index: int, selector: dict) -> Policy:
    """A policy setting every limit, high enough that the sample passes (so every rule is judged in full)."""
    return Policy.from_object(
        {
            "metadata": {"name": f"generous-{index:04d}"},
            "spec": {
                "namespaceSelector": selector,
                "storage": {
                    "allowedClasses": ["longhorn", "longhorn-ssd"],
                    "maxDiskSize": f"{10 + index}Ti",
                    "maxTotalSize": f"{20 + index}Ti",
                    "maxDisks": 16,
                },
                "compute": {"maxCpu": 64, "maxMemory": "1Ti"},
                "images": {"allowedSources": ["quay.io/containerdisks", "https://images.example.com/vm/"]},
                "networks": {"allowedTypes": ["bridge"]},
            },
        }
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    classes = [
        StorageClass.from_manifest(o)
        for o in yaml.safe_load_all((ROOT / "deploy/storageclasses/devcluster.yaml").read_text())
    ]
    sample = yaml.safe_load((ROOT / "deploy" / "samples" / "system-and-data.yaml").read_text())
    sample["metadata"]["namespace"] = NAMESPACE
    examples = [
        Policy.from_object(yaml.safe_load(p.read_text())) for p in sorted((ROOT / "deploy/policies").glob("*.yaml"))
    ]
    examples = [dataclasses.replace(p, action="warn") for p in examples]  # the sample breaks small-tenant's limits
    everywhere = {"matchLabels": {"environment": "production"}}
    elsewhere = {"matchLabels": {"kubernetes.io/metadata.name": "another"}}
    cases = {
        "no policy (baseline)": ClusterFacts.of(classes),
        "12 policies on the namespace": ClusterFacts.of(
            classes, None, examples + [generous(i, everywhere) for i in range(10)], LABELS
        ),
        "1,000 policies, none on it": ClusterFacts.of(
            classes, None, [generous(i, elsewhere) for i in range(1000)], LABELS
        ),
    }
    baseline = cases["no policy (baseline)"]
    stored = decide(request("CREATE", sample), Endpoint.MUTATE, baseline).object  # as the API server keeps it
    assert stored is not None
    grown = copy.deepcopy(stored)
    grown["spec"]["disks"][1]["size"] = "600Gi"
    requests = [
        (request("CREATE", sample), Endpoint.MUTATE),
        (request("CREATE", stored), Endpoint.VALIDATE),
        (request("UPDATE", grown, stored), Endpoint.MUTATE),
        (request("UPDATE", grown, stored), Endpoint.VALIDATE),
    ]
    for facts in cases.values():  # every path once before timing, and a check that the sample is admitted
        for made, endpoint in requests:
            decision = decide(made, endpoint, facts)
            assert decision.allowed, decision.message
    spent = dict.fromkeys(cases, 0.0)
    for _ in range(args.rounds):
        for name, facts in cases.items():
            started = time.perf_counter()
            for made, endpoint in requests:
                decide(made, endpoint, facts)
            spent[name] += time.perf_counter() - started
    base = spent["no policy (baseline)"]
    decisions = args.rounds * len(requests)
    print(f"{'':32} {'µs/decision':>12} {'ratio':>6}")
    for name, seconds in spent.items():
        print(f"{name:32} {seconds / decisions * 1e6:>12.1f} {seconds / base:>6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
