"""Pure planning: from the observed state of one Wukong and its children to the writes that converge it.

``plan(observed)`` lists the actions to take; it does no I/O, so every rule of SPEC section 4 is unit-tested
here without an API server. The controller executes the actions, folds the results back into the
observation (observation.py), and derives the status from that (status.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from reconciler import children
from reconciler.guest import CLOUD_INIT_DIGEST_ANNOTATION, GuestConfig
from reconciler.observation import Kind, Observed, Volume, VolumeKind, expandable, lookup, volumes
from wukong import api
from wukong.manifests import Obj
from wukong.naming import vm_name, volume_name
from wukong.spec import DELETE


# -- actions ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Create:
    kind: Kind
    object: Obj
    disk: str | None = None


@dataclass(frozen=True)
class Expand:
    pvc: str
    disk: str
    size: str
    previous: str


@dataclass(frozen=True)
class Release:
    kind: VolumeKind
    name: str
    disk: str
    patch: Obj


@dataclass(frozen=True)
class Adopt:
    """Take back a volume an earlier Wukong of the same name retained."""

    kind: VolumeKind
    name: str
    disk: str
    patch: Obj


@dataclass(frozen=True)
class SetRetention:
    """Give a volume the ownerReference its retention policy asks for (Delete), or take it away (Retain)."""

    kind: VolumeKind
    name: str
    disk: str
    delete_with_owner: bool
    patch: Obj


@dataclass(frozen=True)
class Replace:
    """Delete a volume that never bound and no longer matches its disk; the next pass creates the right one.
    The preconditions make the API server refuse if the object changed (bound, say) since it was judged."""

    kind: VolumeKind
    name: str
    disk: str
    uid: str
    resource_version: str
    why: str


@dataclass(frozen=True)
class KeepDataVolume:
    """Ask CDI to keep a DataVolume made before the reconciler asked at creation (deleteAfterCompletion)."""

    name: str
    disk: str
    patch: Obj


@dataclass(frozen=True)
class UpdateVM:
    patch: Obj


@dataclass(frozen=True)
class ApplySecret:
    """Create the cloud-init Secret, or replace it when its data changed (it is the Wukong's own)."""

    secret: Obj


@dataclass(frozen=True)
class UpdateNetwork:
    """Bring a NetworkAttachmentDefinition this Wukong made back to the config its network asks for."""

    name: str
    patch: Obj


Action = (
    Create | Expand | Release | Adopt | SetRetention | Replace | KeepDataVolume | UpdateVM | ApplySecret | UpdateNetwork
)


# -- the plan --------------------------------------------------------------------------------------------
def plan(observed: Observed, hotplug_disks: bool = False) -> list[Action]:
    """``hotplug_disks``: disks added to an existing VM become hotpluggable volumes (KubeVirt's
    DeclarativeHotplugVolumes), attached without a restart."""
    actions: list[Action] = []
    current = volumes(observed)
    for volume in current:
        actions.extend(_volume_actions(observed, volume))
    actions.extend(_releases(observed))
    actions.extend(_network_actions(observed))
    actions.extend(_vm_actions(observed, current, hotplug_disks))
    return actions


def _made_networks(observed: Observed) -> list[tuple[str, Obj]]:
    """(network name, the NetworkAttachmentDefinition this Wukong makes for it) for each network without nadName."""
    made = [n for n in observed.spec.networks if not n.nad_name]
    return list(zip((n.name for n in made), GuestConfig(observed).network_attachment_definitions(), strict=True))


def _network_actions(observed: Observed) -> list[Action]:
    """The NetworkAttachmentDefinitions this Wukong makes: created when missing, their config kept as asked --
    unless the policies refuse the network. Nothing while Multus is not installed (status says
    MultusNotInstalled)."""
    if not observed.spec.networks or observed.multus is not True:
        return []
    refused = observed.refused_networks
    actions: list[Action] = []
    for network, nad in _made_networks(observed):
        name = nad["metadata"]["name"]
        if name not in observed.nads or network in refused:
            continue  # not looked up this pass, or not to be written
        live = observed.nads[name]
        if live is None:
            actions.append(Create("NetworkAttachmentDefinition", nad))
        elif children.is_owned_by(live, observed.uid) and live.get("spec") != nad["spec"]:
            patch = {"metadata": {"resourceVersion": live["metadata"].get("resourceVersion")}, "spec": nad["spec"]}
            actions.append(UpdateNetwork(name, patch))
    return actions


def guest_blockers(observed: Observed) -> list[tuple[str, str]]:
    """(reason, message) for what the VM needs and the cluster lacks: it is not created until they are there."""
    spec, found = observed.spec, []
    guest = GuestConfig(observed)
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
        wanted = {nad["metadata"]["name"]: nad for _, nad in _made_networks(observed)}
        for network, nad in zip(spec.networks, guest.nad_names(), strict=True):
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
            elif live is not None and not network.nad_name and not children.is_owned_by(live, observed.uid):
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


def _volume_actions(observed: Observed, volume: Volume) -> list[Action]:
    if volume.conflict or volume.deleting:
        return []  # not ours; or being replaced, and created again once it is gone
    if volume.lost:
        return _lost_actions(observed, volume)
    delete_with_owner = observed.spec.when_deleted == DELETE
    kind: VolumeKind = "DataVolume" if volume.source == "dataVolume" else "PersistentVolumeClaim"
    if volume.retained and volume.own is not None:
        patch = children.adoption_patch(volume.own, observed.wukong, delete_with_owner)
        return [Adopt(kind, volume.name, volume.disk.name, patch)]
    if volume.mismatch and volume.holder is not None:
        if volume.ever_bound:
            return []  # a claim that bound is never replaced: status.py reports VolumeImmutable
        held = volume.holder
        held_kind: VolumeKind = "DataVolume" if held is volume.data_volume else "PersistentVolumeClaim"
        metadata = held["metadata"]
        why = f"it never bound and {volume.mismatch}"
        return [Replace(held_kind, volume.name, volume.disk.name, metadata["uid"], metadata["resourceVersion"], why)]
    actions: list[Action] = []
    owned = None if volume.own is None else children.ownership_patch(volume.own, observed.wukong, delete_with_owner)
    if owned is not None:
        actions.append(SetRetention(kind, volume.name, volume.disk.name, delete_with_owner, owned))
    if (kept := children.keep_patch(volume.data_volume)) is not None:
        actions.append(KeepDataVolume(volume.name, volume.disk.name, kept))
    return actions + _storage_actions(observed, volume)


def _lost_actions(observed: Observed, volume: Volume) -> list[Action]:
    """A volume that bound and is gone: nothing until the user says so (status.py reports VolumeLost); then a
    new one -- a DataVolume left without its claim is deleted first, so that CDI imports afresh."""
    if not volume.recreate:
        return []
    dv = volume.data_volume
    if dv is not None:
        metadata = dv["metadata"]
        why = "its PersistentVolumeClaim was lost and a new volume was asked for"
        return [Replace("DataVolume", volume.name, volume.disk.name, metadata["uid"], metadata["resourceVersion"], why)]
    return _storage_actions(observed, volume)


def _storage_actions(observed: Observed, volume: Volume) -> list[Action]:
    if not volume.exists:
        if volume.source == "dataVolume":
            return [Create("DataVolume", children.data_volume(observed.wukong, volume.disk), volume.disk.name)]
        return [
            Create(
                "PersistentVolumeClaim",
                children.persistent_volume_claim(observed.wukong, volume.disk),
                volume.disk.name,
            )
        ]
    desired, requested = volume.desired, volume.requested
    if volume.pvc is None or desired is None or requested is None or not desired > requested:
        return []  # a shrink is never patched: status.py reports it as ShrinkRefused
    if not volume.pvc_bound or not expandable(observed, volume):
        return []  # only bound claims on expandable classes can grow; status.py says why it waits
    return [Expand(volume.name, volume.disk.name, volume.disk.size, str(requested))]


def _releases(observed: Observed) -> list[Action]:
    """Volumes of disks removed from the spec: keep them, drop our ownerReference, label where they came from."""
    wanted = {volume_name(observed.name, d.name) for d in observed.spec.disks}
    actions: list[Action] = []
    kinds: tuple[tuple[VolumeKind, dict[str, Obj]], ...] = (
        ("DataVolume", dict(observed.data_volumes)),
        ("PersistentVolumeClaim", dict(observed.pvcs)),
    )
    for kind, objects in kinds:
        for name, obj in objects.items():
            if name in wanted or not children.is_ours(obj, observed.uid) or children.made_by_cdi(obj):
                continue
            disk = (obj["metadata"].get("labels") or {}).get(api.DISK_LABEL, name)
            actions.append(Release(kind, name, disk, children.release_patch(obj, observed.name, observed.uid)))
    return actions


def release_retained(wukong_name: str, data_volumes: Mapping[str, Obj], pvcs: Mapping[str, Obj]) -> list[Release]:
    """The Wukong is gone (or going): release the volumes it retained -- those its labels name that carry no
    Wukong ownerReference. Volumes under Delete are the garbage collector's and are left to it."""
    actions = []
    kinds: tuple[tuple[VolumeKind, Mapping[str, Obj]], ...] = (
        ("DataVolume", data_volumes),
        ("PersistentVolumeClaim", pvcs),
    )
    for kind, objects in kinds:
        for name, obj in objects.items():
            metadata = obj.get("metadata") or {}
            labels = metadata.get("labels") or {}
            if labels.get(api.WUKONG_LABEL) != wukong_name or children.wukong_references(obj):
                continue
            if children.made_by_cdi(obj):
                continue
            disk = labels.get(api.DISK_LABEL, name)
            actions.append(Release(kind, name, disk, children.release_patch(obj, wukong_name, None)))
    return actions


def _hotplug(observed: Observed, enabled: bool) -> set[str]:
    """Disks that are hotpluggable in the VM stay so (changing the bus would need a restart); with hotplug
    enabled, disks new to an existing VM are hot-plugged."""
    vm = observed.vm
    if vm is None:
        return set()
    kept = children.hotplugged(vm)
    if enabled:
        present = children.template_disks(vm)
        kept |= {d.name for d in observed.spec.disks if d.name not in present and not d.boot}
    return kept


def _vm_actions(observed: Observed, current: list[Volume], hotplug_disks: bool) -> list[Action]:
    if not current or not all(v.bound(observed.storage_classes) for v in current) or any(v.failure for v in current):
        return []
    if vm_name(observed.name) in observed.conflicts or guest_blockers(observed):
        return []
    guest = GuestConfig(observed)
    secret = guest.secret()
    desired = children.virtual_machine(observed.wukong, observed.spec, _hotplug(observed, hotplug_disks))
    guest.add_to(desired["spec"]["template"], secret)
    vm = observed.vm
    applied_digest = ((lookup(vm, "spec", "template", "metadata") or {}).get("annotations") or {}).get(
        CLOUD_INIT_DIGEST_ANNOTATION
    )
    secrets: list[Action] = []
    if secret is not None and (
        vm is None or applied_digest != secret["metadata"]["annotations"][CLOUD_INIT_DIGEST_ANNOTATION]
    ):
        secrets.append(ApplySecret(secret))
    if vm is None:
        return [*secrets, Create("VirtualMachine", desired)]
    if not children.is_owned_by(vm, observed.uid):
        return []
    wanted_labels = desired["metadata"]["labels"]
    wanted_spec = dict(desired["spec"])
    wanted_spec["template"] = _with_removals(lookup(vm, "spec", "template") or {}, desired["spec"]["template"])
    applied = (vm["metadata"].get("annotations") or {}).get(api.START_STRATEGY_ANNOTATION)
    if applied == observed.spec.start_strategy:
        del wanted_spec["runStrategy"]  # the VM's user (virtctl stop/start) owns it until the Wukong's changes
    if (
        children.contains(vm.get("spec"), wanted_spec)
        and children.contains(vm["metadata"].get("labels"), wanted_labels)
        and applied == observed.spec.start_strategy
    ):
        return []
    metadata = {
        "resourceVersion": vm["metadata"].get("resourceVersion"),
        "labels": wanted_labels,
        "annotations": {api.START_STRATEGY_ANNOTATION: observed.spec.start_strategy},
    }
    return [*secrets, UpdateVM({"metadata": metadata, "spec": wanted_spec})]


OPTIONAL_TEMPLATE_FIELDS = ("nodeSelector", "tolerations", "affinity", "accessCredentials")


def _with_removals(live: Obj, desired: Obj) -> Obj:
    """The desired template, with null for what the Wukong no longer asks for but the VM still has (a merge
    patch removes a key only when told so): placement, SSH keys, the cloud-init digest annotation."""
    template = {**desired, "spec": dict(desired["spec"]), "metadata": dict(desired.get("metadata") or {})}
    for key in OPTIONAL_TEMPLATE_FIELDS:
        if key in (live.get("spec") or {}) and key not in template["spec"]:
            template["spec"][key] = None
    live_annotations = (live.get("metadata") or {}).get("annotations") or {}
    if CLOUD_INIT_DIGEST_ANNOTATION in live_annotations and CLOUD_INIT_DIGEST_ANNOTATION not in (
        template["metadata"].get("annotations") or {}
    ):
        template["metadata"]["annotations"] = {
            **(template["metadata"].get("annotations") or {}),
            CLOUD_INIT_DIGEST_ANNOTATION: None,
        }
    return template
