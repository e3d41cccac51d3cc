"""What one observation means, judged once per pass and read by planning and status alike.

The volumes each disk has (and their conflicts, losses and mismatches), what the VM waits for that the cluster
lacks (``guest_blockers``), whether the VM's name is taken, and what a restart would apply: planning decides its
writes from them and status reports them, so both see the same judgement and nothing is worked out twice. Pure.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from reconciler import restarts, snapshots
from reconciler.networks import nad_names, network_attachment_definition
from reconciler.observation import Observed, Volume, vm_conflict, volumes
from reconciler.ownership import is_owned_by
from wukong.image import ImageError, parse_image
from wukong.manifests import Obj


@dataclass(frozen=True)
class Assessment:
    observed: Observed

    @functools.cached_property
    def volumes(self) -> list[Volume]:
        return volumes(self.observed)

    @functools.cached_property
    def snapshot_gates(self) -> dict[str, snapshots.Gate]:
        """Disk name -> the snapshot its growth waits for (snapshotBeforeExpand), for disks about to grow."""
        gates = (snapshots.gate(self.observed, v, i) for i, v in enumerate(self.volumes))
        return {g.disk: g for g in gates if g is not None}

    @functools.cached_property
    def blockers(self) -> list[tuple[str, str]]:
        return guest_blockers(self.observed)

    @functools.cached_property
    def vm_conflict(self) -> str | None:
        return vm_conflict(self.observed)

    @functools.cached_property
    def restart(self) -> tuple[bool, str, str]:
        """(status, reason, message) of the RestartRequired condition."""
        return restarts.condition(self.observed)


def assess(observed: Observed | Assessment) -> Assessment:
    """The assessment of an observation (one already made is returned as it is)."""
    return observed if isinstance(observed, Assessment) else Assessment(observed)


def made_networks(observed: Observed) -> list[tuple[str, Obj]]:
    """(network name, the NetworkAttachmentDefinition this Wukong makes for it) for each network without nadName."""
    return [
        (n.name, network_attachment_definition(observed.wukong, n)) for n in observed.spec.networks if not n.nad_name
    ]


def guest_blockers(observed: Observed) -> list[tuple[str, str]]:
    """(reason, message) for what the VM needs and the cluster lacks: it is not created until they are there."""
    spec, found = observed.spec, []
    if spec.networks and observed.multus is False:
        found.append(
            (
                "MultusNotInstalled",
                f"spec.networks asks for {len(spec.networks)} Multus interfaces, but the cluster serves no "
                f"NetworkAttachmentDefinition (k8s.cni.cncf.io/v1): install Multus, or remove spec.networks",
            )
        )
    elif spec.networks:
        refused = observed.refused_networks
        wanted = {nad["metadata"]["name"]: nad for _, nad in made_networks(observed)}
        for network, nad in zip(spec.networks, nad_names(observed.name, spec.networks), strict=True):
            live = observed.nads.get(nad)
            if network.name in refused:
                # A NAD this Wukong made earlier, exactly as asked, needs no write: the refusal blocks writes only.
                kept = live is not None and not network.nad_name and live.get("spec") == wanted[nad]["spec"]
                if not kept:
                    found.append(("NetworkNotAllowed", f"network {network.name}: {refused[network.name]}"))
            elif nad in observed.nads and live is None and network.nad_name:
                found.append(
                    (
                        "NetworkNotFound",
                        f"network {network.name} names NetworkAttachmentDefinition {nad}, which does not exist in "
                        f"namespace {observed.namespace}",
                    )
                )
            elif live is not None and not network.nad_name and not is_owned_by(live, observed.uid):
                found.append(
                    ("NameConflict", f"NetworkAttachmentDefinition {nad} exists and is not owned by this Wukong")
                )
    if spec.ssh_key_secret and observed.secrets.get(spec.ssh_key_secret) is False:
        found.append(
            (
                "SSHKeySecretNotFound",
                f"spec.sshKeySecret names Secret {spec.ssh_key_secret}, which does not exist in namespace "
                f"{observed.namespace}; create it with the public keys (one per key, any key names)",
            )
        )
    return found


def unimportable(volume: Volume) -> str | None:
    """Why a disk's image cannot be imported, for a Wukong stored before the webhook refused such an image (or
    while it was not called): no DataVolume is made for it, rather than a pass that fails again and again."""
    if volume.exists or volume.source != "dataVolume" or volume.disk.image is None:
        return None
    try:
        parse_image(volume.disk.image)
    except ImageError as error:
        return f"disk {volume.disk.name}: image {volume.disk.image[:200]} is {error}; correct the disk's image"
    return None
