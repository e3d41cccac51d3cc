"""The KubeVirt VirtualMachine a Wukong asks for, built in one place from what each part of the spec gives it.

Each part is a pure function returning a ``Part`` (the disks, volumes, interfaces, networks, template fields and
annotations it adds); ``virtual_machine`` lays the parts out in one template, in this order:

- **storage**: one disk and volume per disk of the spec, the boot disk first in boot order; a disk named in
  ``hotplug`` is a hotpluggable volume on the scsi bus, attached to the running VM (KubeVirt's declarative hotplug).
- **networks**: the pod network first, then one Multus interface per network of the spec (networks.py).
- **cloud-init**: the noCloud disk naming the Secret guest.py builds, and that Secret's digest in the template's
  annotations, so a changed user-data is a template change KubeVirt reports as needing a restart.
- **SSH keys**: the Secret of public keys, propagated through noCloud.
- **placement**: node selector, tolerations, and a preferred anti-affinity to other Wukongs' VMs.

``update_patch`` is the merge patch that brings a live VM to the desired one (null for what the Wukong no longer
asks for), and the readers of a VM's template (which disks it hot-plugs) sit here too. Pure.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.networks import vm_interfaces
from reconciler.observation import Observed, lookup
from reconciler.ownership import child_metadata
from wukong import api
from wukong.manifests import Obj, contains
from wukong.naming import CLOUD_INIT_DISK, vm_name, volume_name
from wukong.spec import Disk, HighAvailability, Network

ANTI_AFFINITY_TOPOLOGY = "kubernetes.io/hostname"
# The template fields a part gives only when the spec asks for them: a VM that has one the Wukong no longer asks
# for is sent a null for it (a merge patch removes a key only when told so).
OPTIONAL_TEMPLATE_FIELDS = ("nodeSelector", "tolerations", "affinity", "accessCredentials")


@dataclass(frozen=True)
class Part:
    """What one part of the spec adds to the VM template; the lists are joined in the order of the parts."""

    disks: Sequence[Obj] = ()
    volumes: Sequence[Obj] = ()
    interfaces: Sequence[Obj] = ()
    networks: Sequence[Obj] = ()
    fields: Mapping[str, Any] = field(default_factory=dict)  # of the template's spec
    annotations: Mapping[str, str] = field(default_factory=dict)  # of the template's metadata


def virtual_machine(observed: Observed, secret: Obj | None, hotplug: Collection[str] = ()) -> Obj:
    """The VM for the observed Wukong: cores, guest memory, run strategy, and the parts. ``secret``: the cloud-init
    Secret (guest.cloud_init_secret), None when the VM needs no cloud-init."""
    spec, name = observed.spec, observed.name
    parts = (
        storage(name, spec.disks, hotplug),
        networks(observed.namespace, name, spec.networks),
        cloud_init(secret),
        ssh_keys(spec.ssh_key_secret),
        placement(spec.high_availability),
    )
    template_metadata: Obj = {"labels": {api.WUKONG_LABEL: name, "kubevirt.io/vm": vm_name(name)}}
    if annotations := {key: value for part in parts for key, value in part.annotations.items()}:
        template_metadata["annotations"] = annotations
    template_spec: Obj = {
        "domain": {
            "cpu": {"cores": spec.cpu or 1},
            "memory": {"guest": spec.memory},
            "devices": {"disks": _joined(p.disks for p in parts), "interfaces": _joined(p.interfaces for p in parts)},
        },
        "networks": _joined(p.networks for p in parts),
        "volumes": _joined(p.volumes for p in parts),
    }
    for part in parts:
        template_spec.update(part.fields)
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachine",
        "metadata": {
            **child_metadata(observed.wukong, vm_name(name)),
            "annotations": {api.START_STRATEGY_ANNOTATION: spec.start_strategy},
        },
        "spec": {
            "runStrategy": spec.run_strategy,
            "template": {"metadata": template_metadata, "spec": template_spec},
        },
    }


def _joined(lists: Iterable[Sequence[Obj]]) -> list[Obj]:
    return [item for items in lists for item in items]


# -- the parts -------------------------------------------------------------------------------------------
def storage(wukong_name: str, disks: Sequence[Disk], hotplug: Collection[str] = ()) -> Part:
    """One virtio disk per volume (the boot disk first in boot order); a DataVolume for a disk with an image, its
    claim otherwise. A disk in ``hotplug`` (never the boot disk) is a hotpluggable volume on the scsi bus."""
    devices, volumes = [], []
    for disk in disks:
        hot = disk.name in hotplug and not disk.boot
        entry: Obj = {"name": disk.name, "disk": {"bus": "scsi" if hot else "virtio"}}
        if disk.boot:
            entry["bootOrder"] = 1
        devices.append(entry)
        claim = volume_name(wukong_name, disk.name)
        source: Obj = {"name": claim} if disk.image else {"claimName": claim}
        if hot:
            source["hotpluggable"] = True
        volumes.append({"name": disk.name, "dataVolume" if disk.image else "persistentVolumeClaim": source})
    return Part(disks=devices, volumes=volumes)


def networks(namespace: str, wukong_name: str, spec_networks: Sequence[Network]) -> Part:
    interfaces, vm_networks = vm_interfaces(namespace, wukong_name, spec_networks)
    return Part(interfaces=interfaces, networks=vm_networks)


def cloud_init(secret: Obj | None) -> Part:
    """The noCloud disk reading the user-data (and network-data) Secret; its digest marks the template."""
    if secret is None:
        return Part()
    name = secret["metadata"]["name"]
    source: Obj = {"secretRef": {"name": name}}
    if "networkdata" in secret["data"]:
        source["networkDataSecretRef"] = {"name": name}
    return Part(
        disks=[{"name": CLOUD_INIT_DISK, "disk": {"bus": "virtio"}}],
        volumes=[{"name": CLOUD_INIT_DISK, "cloudInitNoCloud": source}],
        annotations={
            api.CLOUD_INIT_DIGEST_ANNOTATION: secret["metadata"]["annotations"][api.CLOUD_INIT_DIGEST_ANNOTATION]
        },
    )


def ssh_keys(secret_name: str | None) -> Part:
    """The public keys of the named Secret, given to the guest through noCloud (cloud-init carries them)."""
    if not secret_name:
        return Part()
    credential = {
        "sshPublicKey": {"source": {"secret": {"secretName": secret_name}}, "propagationMethod": {"noCloud": {}}}
    }
    return Part(fields={"accessCredentials": [credential]})


def placement(high_availability: HighAvailability) -> Part:
    fields: Obj = {}
    if high_availability.node_selector:
        fields["nodeSelector"] = dict(high_availability.node_selector)
    if high_availability.tolerations:
        fields["tolerations"] = [dict(t) for t in high_availability.tolerations]
    if high_availability.anti_affinity:
        term = {
            "labelSelector": {"matchExpressions": [{"key": api.WUKONG_LABEL, "operator": "Exists"}]},
            "topologyKey": ANTI_AFFINITY_TOPOLOGY,
        }
        fields["affinity"] = {
            "podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "podAffinityTerm": term}]
            }
        }
    return Part(fields=fields)


# -- the live VM -----------------------------------------------------------------------------------------
def hot_disks(observed: Observed, hotplug_disks: bool) -> set[str]:
    """The disks to build as hotpluggable: those the VM holds so stay so (changing the bus would need a restart);
    with ``hotplug_disks``, disks new to an existing VM are hot-plugged."""
    live = observed.vm
    if live is None:
        return set()
    kept = hotplugged(live)
    if hotplug_disks:
        present = template_disks(live)
        kept |= {d.name for d in observed.spec.disks if d.name not in present and not d.boot}
    return kept


def update_patch(live: Obj, desired: Obj) -> Obj | None:
    """The merge patch that brings the live VM to ``desired``; None when the VM already holds all of it (defaults
    other controllers add are fine). The run strategy belongs to the VM's user (virtctl stop/start) until the
    Wukong's start strategy changes: it is sent only then."""
    start_strategy = desired["metadata"]["annotations"][api.START_STRATEGY_ANNOTATION]
    wanted_labels = desired["metadata"]["labels"]
    wanted_spec = dict(desired["spec"])
    wanted_spec["template"] = _with_removals(lookup(live, "spec", "template") or {}, desired["spec"]["template"])
    applied = (live["metadata"].get("annotations") or {}).get(api.START_STRATEGY_ANNOTATION)
    if applied == start_strategy:
        del wanted_spec["runStrategy"]
        if contains(live.get("spec"), wanted_spec) and contains(live["metadata"].get("labels"), wanted_labels):
            return None
    metadata = {
        "resourceVersion": live["metadata"].get("resourceVersion"),
        "labels": wanted_labels,
        "annotations": {api.START_STRATEGY_ANNOTATION: start_strategy},
    }
    return {"metadata": metadata, "spec": wanted_spec}


def _with_removals(live: Obj, desired: Obj) -> Obj:
    """The desired template, with null for what the Wukong no longer asks for but the VM still has: placement,
    SSH keys, the cloud-init digest annotation."""
    template = {**desired, "spec": dict(desired["spec"]), "metadata": dict(desired.get("metadata") or {})}
    for key in OPTIONAL_TEMPLATE_FIELDS:
        if key in (live.get("spec") or {}) and key not in template["spec"]:
            template["spec"][key] = None
    live_annotations = (live.get("metadata") or {}).get("annotations") or {}
    if api.CLOUD_INIT_DIGEST_ANNOTATION in live_annotations and api.CLOUD_INIT_DIGEST_ANNOTATION not in (
        template["metadata"].get("annotations") or {}
    ):
        template["metadata"]["annotations"] = {
            **(template["metadata"].get("annotations") or {}),
            api.CLOUD_INIT_DIGEST_ANNOTATION: None,
        }
    return template


def hotplugged(vm: Mapping[str, Any] | None) -> set[str]:
    """The disks a VM's template holds as hotpluggable volumes."""
    template = ((vm or {}).get("spec") or {}).get("template") or {}
    return {v.get("name") for v in (template.get("spec") or {}).get("volumes") or [] if hotpluggable(v)}


def hotpluggable(volume: Mapping[str, Any]) -> bool:
    """A VM or VMI volume KubeVirt attaches to the running instance (declarative hotplug)."""
    source = volume.get("dataVolume") or volume.get("persistentVolumeClaim") or {}
    return bool(source.get("hotpluggable"))


def template_disks(vm: Mapping[str, Any] | None) -> set[str]:
    template = ((vm or {}).get("spec") or {}).get("template") or {}
    return {v.get("name") for v in (template.get("spec") or {}).get("volumes") or []}
