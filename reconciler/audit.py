"""The WukongPolicy audit: each policy's status says how many existing Wukongs in its namespaces break it, and which.

A policy never changes what already exists (admission judges only creation and changes), so a platform team needs
to see what a new or tightened policy finds before it acts. The reconciler keeps that count because it already
watches every Wukong and runs as one elected writer (the webhook is stateless and replicated). The audit runs a
moment after any Wukong, policy or namespace changes, and a policy's status is written only when what it found
changed: a resync writes nothing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from kubeclient import timestamps
from kubeclient.informer import Informer
from kubeclient.rest import ApiError, Kube
from reconciler.policies import Policies
from wukong import labels as labels_of
from wukong import policy
from wukong.api import WUKONG_POLICIES
from wukong.policy import Policy

log = logging.getLogger("wukong.reconciler.audit")
LISTED = 20  # violating Wukongs named in a policy's status; the count covers them all
SETTLE_SECONDS = 2.0  # changes that follow within this share one audit


def findings(
    rule: Policy, wukongs: Iterable[Mapping[str, Any]], labels: Mapping[str, Mapping[str, str]]
) -> dict[str, Any]:
    """What ``rule`` finds among ``wukongs``: every Wukong judged as if it were created now, by this policy alone
    (its own limits, not the strictest of all the namespace's policies; not the built-in refusals, which are no
    policy's)."""
    violating = []
    for wukong in wukongs:
        metadata = wukong.get("metadata") or {}
        namespace, name = metadata.get("namespace", ""), metadata.get("name", "")
        if not rule.selects(labels_of.of_namespace(namespace, labels)):
            continue
        found = [v for v in policy.evaluate([rule], namespace, wukong, None) if v.policy == rule.name]
        if found:
            first = found[0]
            more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
            violating.append({"namespace": namespace, "name": name, "message": f"{first.path}: {first.detail}{more}"})
    violating.sort(key=lambda v: (v["namespace"], v["name"]))
    return {"violations": len(violating), "violating": violating[:LISTED]}


class PolicyAudit:
    """Judges the Wukongs of the controller's informer by the policies and namespaces it follows, and keeps each
    policy's status current while ``active()`` (this replica is the one that audits). The informers are the
    controller's, started with it."""

    def __init__(
        self, kube: Kube, wukongs: Informer, followed: Policies, active: Callable[[], bool] = lambda: True
    ) -> None:
        self.kube, self.wukongs, self.active = kube, wukongs, active
        self.policies, self.namespaces = followed.policies, followed.namespaces
        self._changed = threading.Event()
        self._stopped = threading.Event()
        self._judged: dict[tuple[str, str], tuple[str, int]] = {}  # (uid, generation) of each Wukong seen
        for informer in (self.policies, self.namespaces):
            informer.on_change(lambda _event, _obj: self._changed.set())
        self.wukongs.on_change(self._wukong_changed)

    def _wukong_changed(self, event: str, obj: dict[str, Any]) -> None:
        """Only a Wukong's spec (its generation), its arrival or its going can change what a policy finds: the
        status writes of thousands of converging Wukongs do not start an audit each."""
        metadata = obj.get("metadata") or {}
        key = (metadata.get("namespace", ""), metadata.get("name", ""))
        if event == "DELETED":
            self._judged.pop(key, None)
        elif self._judged.get(key) != (judged := (metadata.get("uid", ""), metadata.get("generation", 0))):
            self._judged[key] = judged
        else:
            return
        self._changed.set()

    @property
    def informers(self) -> tuple[Informer, ...]:
        return self.policies, self.namespaces

    def start(self) -> None:
        threading.Thread(target=self._run, name="policy-audit", daemon=True).start()

    def stop(self) -> None:
        self._stopped.set()
        self._changed.set()

    def _run(self) -> None:
        while not self._stopped.is_set():
            self._changed.wait()
            if self._stopped.wait(SETTLE_SECONDS):
                return
            if not (self.active() and all(i.synced for i in (*self.informers, self.wukongs))):
                continue  # still changed: looked at again in a moment, when this replica may audit
            self._changed.clear()
            try:
                self.audit()
            except ApiError as error:
                log.warning("policy audit failed (%s); retrying in %.0fs", error, SETTLE_SECONDS)
                self._changed.set()

    def audit(self) -> None:
        if not (current := self.policies.items()):
            return
        labels = labels_of.of_namespaces(self.namespaces.items())
        wukongs = self.wukongs.items()
        for obj in current:
            found = findings(Policy.from_object(obj), wukongs, labels)
            status = obj.get("status") or {}
            found["observedGeneration"] = obj["metadata"].get("generation")
            if all(status.get(key) == value for key, value in found.items()):
                continue
            found["auditTime"] = timestamps.now()
            self.kube.patch(WUKONG_POLICIES, None, obj["metadata"]["name"], {"status": found}, subresource="status")
            log.info("policy %s: %d Wukongs violate it", obj["metadata"]["name"], found["violations"])
