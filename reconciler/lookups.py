"""What a pass asks the API server directly because nothing here watches it: Multus, NetworkAttachmentDefinitions,
whether an SSH key Secret exists, a Wukong's VolumeSnapshots and the VolumeSnapshotClasses.

Asked per pass, only for Wukongs that use them; the Secret without reading it. Another namespace's
NetworkAttachmentDefinition is looked up only where the policies allow the Wukong to use it.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from typing import Any

from kubeclient.resources import (
    NETWORK_ATTACHMENT_DEFINITIONS,
    SECRETS,
    VOLUME_SNAPSHOT_CLASSES,
    VOLUME_SNAPSHOTS,
)
from kubeclient.rest import AlreadyExists, ApiError, Kube, NotFound
from reconciler import snapshots
from reconciler.networks import nad_names
from reconciler.observation import Observed
from wukong import api, policy
from wukong.networkrules import nad_reference

MULTUS_RECHECK_SECONDS = 5.0
MULTUS_GROUP, MULTUS_VERSION = "k8s.cni.cncf.io", "v1"


class Lookups:
    def __init__(
        self,
        kube: Kube,
        scope: Callable[[str], policy.Scope],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``scope``: the WukongPolicies that apply in a namespace."""
        self.kube, self.scope, self._clock = kube, scope, clock
        self._multus: tuple[bool, float] | None = None
        self._lock = threading.Lock()

    def guest_facts(self, observed: Observed) -> Observed:
        """The observation with what its networks and SSH keys need from the cluster."""
        spec, namespace = observed.spec, observed.namespace
        facts: dict[str, Any] = {}
        if spec.networks:
            facts["multus"] = self.multus_served()
            if facts["multus"]:
                refused = observed.refused_networks
                facts["nads"] = {
                    nad: self.network_or_none(namespace, nad)
                    for network, nad in zip(spec.networks, nad_names(observed.name, spec.networks), strict=True)
                    if not (network.nad_name and network.name in refused)
                }
        if spec.ssh_key_secret:
            facts["secrets"] = {spec.ssh_key_secret: self.secret_exists(namespace, spec.ssh_key_secret)}
        return dataclasses.replace(observed, **facts) if facts else observed

    def snapshot_facts(self, observed: Observed) -> Observed:
        """The observation with the Wukong's VolumeSnapshots (by its label) and every VolumeSnapshotClass: two
        lists, asked only for a Wukong whose disks ask for snapshots (or has some recorded), rather than informers
        that would keep the reconciler from starting on a cluster without the snapshot CRDs."""
        if not snapshots.wanted(observed):
            return observed
        try:
            taken, _ = self.kube.list(VOLUME_SNAPSHOTS, observed.namespace, f"{api.WUKONG_LABEL}={observed.name}")
            classes, _ = self.kube.list(VOLUME_SNAPSHOT_CLASSES)
        except NotFound:  # the API is not served
            return dataclasses.replace(observed, snapshots_served=False)
        return dataclasses.replace(
            observed,
            snapshots={s["metadata"]["name"]: s for s in taken},
            snapshot_classes=tuple(classes),
            snapshots_served=True,
        )

    def secret_exists(self, namespace: str, name: str) -> bool:
        """Whether the name is taken, learnt without reading the Secret (RBAC gives no get): a dry-run create of an
        empty Opaque Secret of that name, which the API server refuses with AlreadyExists when one exists and
        otherwise stores nothing. Neither answer carries any Secret's data, and the admission policy admits such a
        probe only empty and only as a dry run."""
        probe = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {"name": name, "namespace": namespace},
        }
        try:
            self.kube.create(SECRETS, probe, dry_run=True)
        except AlreadyExists:
            return True
        except ApiError as error:
            if error.status != 422:  # 422: a name no Secret can have (stored before the CRD said so)
                raise
        return False

    def network_or_none(self, namespace: str, nad_name: str) -> dict[str, Any] | None:
        try:
            return self.kube.get(NETWORK_ATTACHMENT_DEFINITIONS, *nad_reference(nad_name, namespace))
        except (NotFound, ValueError):
            return None

    def multus_served(self) -> bool:
        """Discovery, remembered for a few seconds: one request however many Wukongs have networks."""
        now = self._clock()
        with self._lock:
            known = self._multus
        if known is None or now - known[1] > MULTUS_RECHECK_SECONDS:
            known = (self.kube.serves(MULTUS_GROUP, MULTUS_VERSION), now)
            with self._lock:
                self._multus = known
        return known[0]
