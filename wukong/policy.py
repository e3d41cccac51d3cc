"""WukongPolicy: what a platform team lets the Wukongs of some namespaces ask for, and one Wukong judged by it.

Pure, so the webhook (deny or warn at admission) and the reconciler (auditing existing Wukongs) share one judgement.
Only what a request changes is judged: a new policy never turns what already exists into an error, while growth
past a limit is refused like creation. Where several policies apply, the strictest wins rule by rule, and the
violation names the one policy whose limit was broken, so the user knows whom to ask.

Most rules allow what no policy limits. Four refuse by default, because they reach past the tenant's namespace:
a NetworkAttachmentDefinition made over a host interface (the node's or the underlay's layer 2, past every
NetworkPolicy), another namespace's NetworkAttachmentDefinition, placement on control-plane nodes (or on every
node, by tolerating every taint), and an image URL whose host is inside the cluster or the node (CDI's importer
would fetch it from there: ``wukong.imageurl``). A value these rules govern must be named by at least one policy
on the namespace and refused by none; the refusal of a value no policy names is built in (``Violation.policy`` is
empty) and says which policy field would allow it.

Policies and Wukongs are read without trusting their shape: a value of the wrong type reads as not set, and an
unparsable Wukong value is not judged here (the schema check reports it).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from wukong import imagesources, imageurl
from wukong.image import ImageError, parse_image
from wukong.labels import LabelSelector
from wukong.networkrules import MACVLAN, SRIOV, host_field, host_interface, nad_reference
from wukong.quantity import Quantity, parse_or_none
from wukong.quantity import total as add_up
from wukong.spec import DELETE as DELETE_VOLUMES
from wukong.spec import Disk, Network, Wukong, mapping

DENY, WARN = "deny", "warn"
_ACTIONS = (DENY, WARN)  # deny first: a deny violation hides the warning for the same field and rule

# The policy fields, as violations name them.
ALLOWED_CLASSES = "storage.allowedClasses"
MAX_DISK_SIZE = "storage.maxDiskSize"
MAX_TOTAL_SIZE = "storage.maxTotalSize"
MAX_DISKS = "storage.maxDisks"
ALLOW_DISK_REMOVAL = "storage.allowDiskRemoval"
MAX_CPU = "compute.maxCpu"
MAX_MEMORY = "compute.maxMemory"
ALLOWED_SOURCES = "images.allowedSources"
REQUIRE_DIGEST = "images.requireDigest"
ALLOWED_NETWORK_TYPES = "networks.allowedTypes"
ALLOWED_ATTACHMENT_DEFINITIONS = "networks.allowedAttachmentDefinitions"
HOST_NETWORKS = "networks.hostNetworks"
ALLOWED_TOLERATION_KEYS = "placement.allowedTolerationKeys"
ALLOWED_NODE_SELECTOR_KEYS = "placement.allowedNodeSelectorKeys"

# Labels and taints that mark control-plane nodes (kubeadm's current and former names): a tenant's VM goes there
# only where a policy names the key.
CONTROL_PLANE_KEYS = frozenset({"node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master"})
VLAN_MIN, VLAN_MAX = 1, 4094

# Bounds that keep every detail well under 1,000 characters whatever the policy or the Wukong says.
_VALUE_CHARS = 100
_NAME_CHARS = 253
_LIST_CHARS = 300


@dataclass(frozen=True)
class HostNetwork:
    """One ``networks.hostNetworks`` entry: a host interface a NetworkAttachmentDefinition made for a Wukong may
    attach to, and the VLANs it may tag there (None: untagged only). A malformed entry permits nothing."""

    type: str  # bridge | macvlan | ovs | sriov
    interface: str  # the bridge, the macvlan master, the OVS bridge; for sriov, the device plugin resource
    vlans: tuple[tuple[int, int], ...] | None

    @classmethod
    def of(cls, raw: Mapping[str, Any]) -> HostNetwork:
        kind, interface, vlans = raw.get("type"), raw.get("interface"), raw.get("vlans")
        if kind == SRIOV and isinstance(raw.get("resourceName"), str):
            interface = raw["resourceName"]  # an sriov entry names the resource (interface: before it existed)
        return cls(
            type=kind if isinstance(kind, str) else "",
            interface=interface if isinstance(interface, str) else "",
            vlans=tuple(r for v in vlans if (r := _vlan_range(v)) is not None) if isinstance(vlans, list) else None,
        )

    def permits(self, network: Network, interface: str) -> bool:
        if (self.type, self.interface) != (network.type, interface) or not interface:
            return False
        if network.vlan_id is None:
            return self.vlans is None
        return self.vlans is not None and any(low <= network.vlan_id <= high for low, high in self.vlans)

    def __str__(self) -> str:
        if self.vlans is None:
            return f"{self.type} {self.interface}"
        return f"{self.type} {self.interface} VLAN " + ",".join(
            str(low) if low == high else f"{low}-{high}" for low, high in self.vlans
        )


def _vlan_range(text: Any) -> tuple[int, int] | None:
    """``"100"`` or ``"200-299"``; anything else (or out of 1-4094, or reversed) reads as no range."""
    found = re.fullmatch(r"([0-9]{1,4})(?:-([0-9]{1,4}))?", text) if isinstance(text, str) else None
    if found is None:
        return None
    bounds = int(found[1]), int(found[2] or found[1])
    return bounds if VLAN_MIN <= bounds[0] <= bounds[1] <= VLAN_MAX else None


@dataclass(frozen=True)
class Policy:
    name: str
    selector: LabelSelector
    action: str  # deny | warn
    allowed_classes: tuple[str, ...] | None
    default_class: str | None
    max_disk_size: Quantity | None
    max_total_size: Quantity | None
    max_disks: int | None
    allow_disk_removal: bool
    max_cpu: int | None
    max_memory: Quantity | None
    allowed_sources: tuple[str, ...] | None
    require_digest: bool
    allowed_network_types: tuple[str, ...] | None
    allowed_attachment_definitions: tuple[str, ...] | None
    host_networks: tuple[HostNetwork, ...] | None = None
    allowed_toleration_keys: tuple[str, ...] | None = None
    allowed_node_selector_keys: tuple[str, ...] | None = None
    # (rule, the value as written) for each limit set to something that cannot be read: it refuses what it limits
    unreadable: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> Policy:
        """A WukongPolicy as the API server stores it. Anything the schema would refuse reads as not set (an
        unknown enforcementAction as deny), so this never raises, whatever JSON it is given."""
        obj = mapping(obj)
        spec = mapping(obj.get("spec"))
        storage, compute = mapping(spec.get("storage")), mapping(spec.get("compute"))
        images, networks = mapping(spec.get("images")), mapping(spec.get("networks"))
        placement, host_networks = mapping(spec.get("placement")), networks.get("hostNetworks")
        name = mapping(obj.get("metadata")).get("name")
        default = storage.get("defaultClass")
        unreadable: list[tuple[str, str]] = []
        limit = functools.partial(_limit, unreadable)
        return cls(
            name=name if isinstance(name, str) else "",
            selector=LabelSelector.from_dict(spec.get("namespaceSelector")),
            action=WARN if spec.get("enforcementAction") == WARN else DENY,
            allowed_classes=_strings(storage.get("allowedClasses")),
            default_class=default if isinstance(default, str) and default else None,
            max_disk_size=limit(MAX_DISK_SIZE, storage.get("maxDiskSize"), parse_or_none),
            max_total_size=limit(MAX_TOTAL_SIZE, storage.get("maxTotalSize"), parse_or_none),
            max_disks=limit(MAX_DISKS, storage.get("maxDisks"), _integer),
            allow_disk_removal=storage.get("allowDiskRemoval") in (None, True),  # anything else forbids it
            max_cpu=limit(MAX_CPU, compute.get("maxCpu"), _integer),
            max_memory=limit(MAX_MEMORY, compute.get("maxMemory"), parse_or_none),
            allowed_sources=_strings(images.get("allowedSources")),
            require_digest=images.get("requireDigest") is True,
            allowed_network_types=_strings(networks.get("allowedTypes")),
            allowed_attachment_definitions=_strings(networks.get("allowedAttachmentDefinitions")),
            host_networks=tuple(HostNetwork.of(h) for h in host_networks if isinstance(h, Mapping))
            if isinstance(host_networks, list)
            else None,
            allowed_toleration_keys=_strings(placement.get("allowedTolerationKeys")),
            allowed_node_selector_keys=_strings(placement.get("allowedNodeSelectorKeys")),
            unreadable=tuple(unreadable),
        )

    def cannot_read(self, rule: str) -> str | None:
        """The value of ``rule`` as written, when it is set and cannot be read (then it refuses what it limits)."""
        return next((text for found, text in self.unreadable if found == rule), None)

    def selects(self, labels: Mapping[str, str]) -> bool:
        return self.selector.matches(labels)


def applying(policies: Iterable[Policy], labels: Mapping[str, str]) -> list[Policy]:
    """The policies whose namespaceSelector selects a namespace with these labels, by name."""
    return sorted((p for p in policies if p.selects(labels)), key=lambda p: p.name)


def default_class(policies: Sequence[Policy]) -> tuple[str, str] | None:
    """(class, policy): the first defaultClass (by policy name) that every policy's allowedClasses allows."""
    ordered = sorted(policies, key=lambda p: p.name)
    allowed_lists = [p.allowed_classes for p in ordered if p.allowed_classes is not None]
    for policy in ordered:
        chosen = policy.default_class
        if chosen is not None and all(chosen in allowed for allowed in allowed_lists):
            return chosen, policy.name
    return None


@dataclass(frozen=True)
class Violation:
    policy: str
    action: str  # deny | warn
    rule: str  # the policy field, e.g. storage.maxDiskSize
    path: str  # the Wukong field, e.g. spec.disks[1].size
    detail: str  # what follows "<path>: Forbidden: "


def evaluate(
    policies: Sequence[Policy],
    namespace: str,
    new: Wukong | Mapping[str, Any],
    old: Wukong | Mapping[str, Any] | None = None,
) -> list[Violation]:
    """What in ``new`` breaks the policies given (those that select ``namespace``); with ``old`` (an update),
    only what changed or grew is judged. Deny violations first rule by rule; a warning is dropped where a deny
    violation names the same field and rule."""
    return Scope.of(policies, namespace).evaluate(new, old)


_Named = TypeVar("_Named", Disk, Network)
_Limit = TypeVar("_Limit", int, Quantity)


def _by_name(entries: Iterable[_Named]) -> dict[str, _Named]:
    """Entries by name, the first of a name winning (a repeated name is validation's to report)."""
    found: dict[str, _Named] = {}
    for entry in entries:
        found.setdefault(entry.name, entry)
    return found


def _grew(after: _Limit, before: _Limit | None) -> bool:
    """Whether a value is judged on update: it grew, or there was nothing to compare it with."""
    return before is None or after > before


# -- the rules ---------------------------------------------------------------------------------------------------
def _compute(judge: Scope, after: Wukong, before: Wukong | None) -> Iterator[Violation]:
    was = before or Wukong(None)  # nothing to compare with: judged whatever it is
    yield from _growth(judge, MAX_CPU, "spec.cpu", after.cpu, was.cpu, lambda p: p.max_cpu, _CPUS)
    yield from _growth(judge, MAX_MEMORY, "spec.memory", after.memory, was.memory, lambda p: p.max_memory, _MEMORY)


# What _growth says of a value past a limit: the value, the limit and whose it is.
_CPUS = "{value} CPUs exceed {limit}, the most {whose}"
_MEMORY = "{value} exceeds {limit}, the most memory {whose}"
_DISK_SIZE = "{value} exceeds {limit}, the largest disk {whose}"
_DISK_COUNT = "{value} disks, more than the {limit} {whose}"


def _growth(
    judge: Scope,
    rule: str,
    path: str,
    value: _Limit | None,
    was: _Limit | None,
    limit_of: Callable[[Policy], _Limit | None],
    message: str,
) -> Iterator[Violation]:
    """A value held to the strictest limit when it is new or grew (a value that cannot be read is not judged)."""
    if value is not None and _grew(value, was):
        yield from judge.at_most(
            rule,
            path,
            value,
            limit_of,
            lambda p, limit: message.format(value=_shown(value), limit=_shown(limit), whose=judge.whose(p)),
        )


def _shown(value: int | Quantity) -> str:
    return _number(value) if isinstance(value, int) else _value(value)


def _disk_totals(judge: Scope, after: Wukong, before: Wukong | None) -> Iterator[Violation]:
    count, total = len(after.disks), after.total_size
    was = len(before.disks) if before is not None else None
    yield from _growth(judge, MAX_DISKS, "spec.disks", count, was, lambda p: p.max_disks, _DISK_COUNT)
    held, elsewhere = _held(after, before)
    if before is not None:
        earlier = {entry.disk.name for entry in before.disks}
        before_held = add_up([before.total_size, *(q for n, q in before.recorded.items() if n not in earlier)])
        if not held > before_held:
            return
    removed = sorted(elsewhere.items())
    outside = (
        " and the volumes of removed disks "
        + _cut(", ".join(f"{_quoted(name, 63)} {_value(size)}" for name, size in removed), _LIST_CHARS)
        if removed
        else ""
    )
    yield from judge.at_most(
        MAX_TOTAL_SIZE,
        "spec.disks",
        held,
        lambda p: p.max_total_size,
        lambda p, limit: (
            f"disks total {_value(total)}{outside}"
            + (f": {_value(held)} held" if removed else "")
            + f", more than the {_value(limit)} "
            f"{judge.whose(p, 'allows one Wukong')}"
            + (
                "; a removed disk's volume is released and kept, and counts until it is deleted (or the disk is "
                "added back)"
                if elsewhere
                else ""
            )
        ),
    )


def _held(after: Wukong, before: Wukong | None) -> tuple[Quantity, dict[str, Quantity]]:
    """What the Wukong holds once ``after`` is carried out: its disks, plus the volumes of disks it no longer has
    (removed by this update, or earlier as the status records), which are released and kept, not deleted. A disk
    named again takes its volume back, so it counts once."""
    kept = {entry.disk.name for entry in after.disks}
    elsewhere: dict[str, Quantity] = {}
    if before is not None:
        for name, recorded in before.recorded.items():
            if name not in kept:
                elsewhere[name] = recorded
        for entry in before.disks:
            name, size = entry.disk.name, entry.size
            if name not in kept and size is not None and (name not in elsewhere or elsewhere[name] < size):
                elsewhere[name] = size
    total = after.total_size
    return (add_up([total, *elsewhere.values()]) if elsewhere else total), elsewhere


def _disks(judge: Scope, after: Wukong, before: Wukong | None) -> Iterator[Violation]:
    earlier = _by_name(entry.disk for entry in before.disks) if before is not None else {}
    for entry in after.disks:
        yield from _disk(judge, f"spec.disks[{entry.index}]", entry.disk, earlier.get(entry.disk.name))


def _disk(judge: Scope, path: str, disk: Disk, previous: Disk | None) -> Iterator[Violation]:
    if disk.image is not None and (previous is None or previous.image != disk.image):
        yield from _image(judge, f"{path}.image", disk.image)
    size, was = parse_or_none(disk.size), parse_or_none(previous.size) if previous is not None else None
    yield from _growth(judge, MAX_DISK_SIZE, f"{path}.size", size, was, lambda p: p.max_disk_size, _DISK_SIZE)
    chosen = disk.storage_class  # a disk without one is given one by defaulting, which runs first
    if chosen is not None and (previous is None or previous.storage_class != chosen):
        yield from judge.member(
            ALLOWED_CLASSES, f"{path}.storageClassName", lambda p: p.allowed_classes, "StorageClass", chosen
        )


def _os_image(judge: Scope, after: Wukong, before: Wukong | None) -> Iterator[Violation]:
    """osImage becomes the boot disk's image on creation (defaulting copies it before validation), and is judged
    there; here only when no disk carries it (the offline checker given a manifest defaulting could not complete)."""
    if after.os_image is None or (before is not None and before.os_image == after.os_image):
        return
    if not any(entry.disk.image == after.os_image for entry in after.disks):
        yield from _image(judge, "spec.osImage", after.os_image)


def _urls(judge: Scope, after: Wukong, before: Wukong | None) -> Iterator[Violation]:
    """The image rules where no policy applies: only a URL can be refused then (its host inside the cluster), so
    nothing else is read or parsed, and each new or changed URL is judged as ``_disks`` and ``_os_image`` would."""
    earlier: dict[str, str] = {}
    for _, name, image in before.images() if before is not None else ():
        earlier.setdefault(name, image)
    images = after.images()
    for index, name, image in images:
        if image.startswith(_URL_SCHEMES) and earlier.get(name) != image:
            yield from _image(judge, f"spec.disks[{index}].image", image)
    os_image = after.os_image
    if (
        os_image is not None
        and os_image.startswith(_URL_SCHEMES)
        and (before is None or before.os_image != os_image)
        and not any(image == os_image for _, _, image in images)
    ):
        yield from _image(judge, "spec.osImage", os_image)


_URL_SCHEMES = ("http://", "https://")


def _image(judge: Scope, path: str, image: str) -> Iterator[Violation]:
    try:
        source = parse_image(image)
    except ImageError:
        return  # validation says what an image may look like
    inside = imageurl.internal(source.location) if source.location is not None else None
    if inside is None and not judge.policies:
        return
    shown = _quoted(source.url)

    def allows(allowed: tuple[str, ...]) -> bool:
        return any(imagesources.allows(prefix, source) for prefix in allowed)

    def say(p: Policy, allowed: tuple[str, ...]) -> str:
        return f"image {shown} is not from a source {judge.whose(p)} (allowed: {_listing(allowed)})"

    if inside is not None:
        yield from judge.named(
            ALLOWED_SOURCES,
            path,
            lambda p: p.allowed_sources,
            allows,
            say,
            f"image {shown} would be fetched by CDI's importer from inside the cluster: {inside}; "
            f"{judge.none_allow('it')}: a cluster admin allows such a host by naming it in images.allowedSources "
            "of a WukongPolicy selecting this namespace",
        )
    else:
        yield from judge.allowed(ALLOWED_SOURCES, path, lambda p: p.allowed_sources, allows, say)
    if source.kind == "http":
        yield from judge.required(
            REQUIRE_DIGEST,
            path,
            lambda p: p.require_digest,
            lambda p: (
                f"image {shown} is an http(s) URL, which cannot be pinned by digest as "
                f"{judge.whose(p, 'requires')}; use a registry image with @sha256:<digest>"
            ),
        )
    elif (unpinned := imagesources.unpinned(source)) is not None:
        yield from judge.required(
            REQUIRE_DIGEST,
            path,
            lambda p: p.require_digest,
            lambda p: f"image {shown} {unpinned}, which {judge.whose(p, 'requires')}; use @sha256:<digest>",
        )


def _networks(judge: Scope, after: Wukong, before: Wukong | None) -> Iterator[Violation]:
    earlier = _by_name(entry.network for entry in before.networks) if before is not None else {}
    for entry in after.networks:
        previous = earlier.get(entry.network.name)
        if previous is None or _attachment(previous) != _attachment(entry.network):
            yield from judge.network(f"spec.networks[{entry.index}]", entry.network)


def _attachment(network: Network) -> tuple[Any, ...]:
    """What the network rules judge (an unchanged attachment is not judged again; its addresses are not judged)."""
    return network.type, network.nad_name, network.bridge_name, network.vlan_id


def _attachment_definition(judge: Scope, path: str, nad_name: str) -> Iterator[Violation]:
    namespace, name = nad_reference(nad_name, judge.namespace)
    wanted = (namespace, name)

    def listed(allowed: tuple[str, ...]) -> bool:
        return any(nad_reference(entry, judge.namespace) == wanted for entry in allowed)

    def say(p: Policy, allowed: tuple[str, ...]) -> str:
        return (
            f"NetworkAttachmentDefinition {_quoted(nad_name)} is not one {judge.whose(p)} "
            f"(allowed: {_listing(allowed)}); name one of those, or leave nadName out to have one made for this network"
        )

    if namespace == judge.namespace:
        yield from judge.allowed(
            ALLOWED_ATTACHMENT_DEFINITIONS, f"{path}.nadName", lambda p: p.allowed_attachment_definitions, listed, say
        )
        return
    yield from judge.named(
        ALLOWED_ATTACHMENT_DEFINITIONS,
        f"{path}.nadName",
        lambda p: p.allowed_attachment_definitions,
        listed,
        say,
        f"NetworkAttachmentDefinition {_quoted(name)} is in namespace {_quoted(namespace)}, not this Wukong's; "
        f"another namespace's network is used only where a WukongPolicy lists it "
        f"(networks.allowedAttachmentDefinitions: [{_cut(f'{namespace}/{name}')}]), and {judge.none_allow('it')}",
    )


def _host_network(judge: Scope, path: str, network: Network) -> Iterator[Violation]:
    interface, where = host_interface(network), f"{path}.{host_field(network)}"
    if interface is None:
        if network.type == MACVLAN:
            yield Violation(
                "",
                DENY,
                HOST_NETWORKS,
                f"{path}.master",
                "macvlan without master enslaves the node's default-route interface, the node's own network; "
                "name the master interface in master (one a WukongPolicy allows in networks.hostNetworks)",
            )
        return  # the network rules require the host field for the other types
    shown = _quoted(f"{network.type} {interface}" + (f" VLAN {network.vlan_id}" if network.vlan_id is not None else ""))

    def permits(allowed: tuple[HostNetwork, ...]) -> bool:
        return any(entry.permits(network, interface) for entry in allowed)

    key = "resourceName" if network.type == SRIOV else "interface"
    entry = f"{{type: {_cut(network.type)}, {key}: {_cut(interface)}" + (
        f', vlans: ["{network.vlan_id}"]}}' if network.vlan_id is not None else "}"
    )
    reaches = (
        "is a device resource the VM's pod would request (a VF pool, or any other device)"
        if network.type == SRIOV
        else "reaches the nodes' own network"
    )
    yield from judge.named(
        HOST_NETWORKS,
        where,
        lambda p: p.host_networks,
        permits,
        lambda p, allowed: (
            f"host network {shown} is not one {judge.whose(p)} (allowed: {_listing([str(h) for h in allowed])})"
        ),
        f"host network {shown} {reaches}; {judge.none_allow('it')}: a cluster admin allows it "
        f"with networks.hostNetworks: [{entry}] in a WukongPolicy selecting this namespace, or name an existing "
        f"NetworkAttachmentDefinition with nadName",
    )


def _placement(judge: Scope, after: Wukong, before: Wukong | None) -> Iterator[Violation]:
    """Tolerations and nodeSelector keys: a toleration of every taint is never allowed; control-plane keys only
    where a policy names them; any other key where the policies' lists (when set) have it."""
    earlier = [t for _, t in before.tolerations] if before is not None else []
    for index, toleration in after.tolerations:
        if toleration in earlier:
            continue
        path = f"spec.highAvailability.tolerations[{index}]"
        key = toleration.get("key")
        if key is not None and not isinstance(key, str):
            continue  # the schema check names it
        if not key:
            yield Violation(
                "",
                DENY,
                ALLOWED_TOLERATION_KEYS,
                f"{path}.key",
                "a toleration without a key tolerates every taint, so the VM could run on control-plane and "
                "dedicated nodes; name the taint's key",
            )
            continue
        yield from judge.key(ALLOWED_TOLERATION_KEYS, f"{path}.key", lambda p: p.allowed_toleration_keys, "taint", key)
    previous = before.node_selector if before is not None else {}
    for key, value in after.node_selector.items():
        if isinstance(key, str) and previous.get(key) != value:
            yield from judge.key(
                ALLOWED_NODE_SELECTOR_KEYS,
                f"spec.highAvailability.nodeSelector[{key[:_VALUE_CHARS]}]",
                lambda p: p.allowed_node_selector_keys,
                "node label",
                key,
            )


def _removals(judge: Scope, after: Wukong, before: Wukong | None) -> Iterator[Violation]:
    if before is None:
        return
    kept = {entry.disk.name for entry in after.disks}
    for name in dict.fromkeys(e.disk.name for e in before.disks if e.disk.name not in kept):  # once each, in order
        yield from _removal(judge, name)


def _removal(judge: Scope, name: str) -> Iterator[Violation]:
    yield from judge.required(
        ALLOW_DISK_REMOVAL,
        "spec.disks",
        lambda p: not p.allow_disk_removal,
        lambda p: (
            f"disk {_quoted(name)} cannot be removed: {judge.whose(p, 'forbids removing disks')} "
            f"(storage.allowDiskRemoval: false); keep it in spec.disks"
        ),
    )


def _retention(judge: Scope, after: Wukong, before: Wukong | None) -> Iterator[Violation]:
    """whenDeleted: Delete has the garbage collector delete every disk with the Wukong: all the disks removed at
    once, so under allowDiskRemoval: false it is refused on creation and as a change (a Wukong that already has it
    is not judged again). Retain, the default, is the only other value."""
    if after.when_deleted != DELETE_VOLUMES or (before is not None and before.when_deleted == DELETE_VOLUMES):
        return
    yield from judge.required(
        ALLOW_DISK_REMOVAL,
        "spec.volumeRetentionPolicy.whenDeleted",
        lambda p: not p.allow_disk_removal,
        lambda p: (
            f"whenDeleted: Delete would delete every disk with the Wukong, and "
            f"{judge.whose(p, 'forbids removing disks')} (storage.allowDiskRemoval: false); keep whenDeleted: Retain"
        ),
    )


_Rule = Callable[["Scope", Wukong, "Wukong | None"], Iterator[Violation]]
_RULES: tuple[_Rule, ...] = (_compute, _disk_totals, _disks, _os_image, _networks, _placement, _removals, _retention)
# All that can find anything without a policy: image hosts inside the cluster, host networks, placement.
_REFUSING_BY_DEFAULT: tuple[_Rule, ...] = (_urls, _networks, _placement)


# An allowed-list rule: each policy's list (None: not set), whether a list allows the value, what to say if not.
_ListOf = Callable[[Policy], tuple[Any, ...] | None]
_Allows = Callable[[tuple[Any, ...]], bool]
_Say = Callable[[Policy, tuple[Any, ...]], str]


# -- strictest wins ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Scope:
    """The policies that apply in one namespace, ready to judge many Wukongs: the strictest limit of each rule is
    found once (the webhook keeps one Scope per namespace in each snapshot of its caches)."""

    policies: tuple[Policy, ...]  # by name: ties go to the first
    namespace: str
    _strictest: dict[str, tuple[int, list[tuple[Policy, Any]], list[Policy]]] = field(
        default_factory=dict, compare=False, hash=False, repr=False
    )

    @classmethod
    def of(cls, policies: Iterable[Policy], namespace: str) -> Scope:
        return cls(tuple(sorted(policies, key=lambda p: p.name)), namespace)

    def evaluate(
        self, new: Wukong | Mapping[str, Any], old: Wukong | Mapping[str, Any] | None = None
    ) -> list[Violation]:
        """See ``evaluate``."""
        after = Wukong.of(new)
        before = Wukong.of(old) if old is not None else None
        rules = _RULES if self.policies else _REFUSING_BY_DEFAULT
        found = [violation for rule in rules for violation in rule(self, after, before)]
        denied = {(v.path, v.rule) for v in found if v.action == DENY}
        return [v for v in found if v.action == DENY or (v.path, v.rule) not in denied]

    def network(self, path: str, network: Network) -> Iterator[Violation]:
        """Every rule on one ``spec.networks`` entry (the reconciler asks again before it makes a NAD)."""
        if network.type:
            yield from self.member(
                ALLOWED_NETWORK_TYPES, f"{path}.type", lambda p: p.allowed_network_types, "network type", network.type
            )
        if network.nad_name is not None:
            yield from _attachment_definition(self, path, network.nad_name)
        else:
            yield from _host_network(self, path, network)

    def none_allow(self, what: str) -> str:
        return f"no WukongPolicy on namespace {_quoted(self.namespace, _NAME_CHARS)} allows {what}"

    def key(
        self,
        rule: str,
        path: str,
        list_of: Callable[[Policy], tuple[str, ...] | None],
        what: str,
        key: str,
    ) -> Iterator[Violation]:
        """A placement key: a control-plane key must be named by a policy; any other, allowed unless a list is set."""

        def say(p: Policy, allowed: tuple[str, ...]) -> str:
            return f"{what} key {_quoted(key)} is not one {self.whose(p)} (allowed: {_listing(allowed)})"

        if key not in CONTROL_PLANE_KEYS:
            yield from self.allowed(rule, path, list_of, lambda allowed: key in allowed, say)
            return
        yield from self.named(
            rule,
            path,
            list_of,
            lambda allowed: key in allowed,
            say,
            f"{what} key {_quoted(key)} marks control-plane nodes, which run no tenant's VM; "
            f"{self.none_allow('it')} ({rule})",
        )

    def named(
        self, rule: str, path: str, list_of: _ListOf, allows: _Allows, say: _Say, unnamed: str
    ) -> Iterator[Violation]:
        """An allowed-list rule that refuses by default: the value must be in the list of at least one policy
        (whatever its action) and is then judged as ``allowed`` judges; otherwise the built-in refusal
        ``unnamed`` (no policy's)."""
        lists = [allowed for p in self.policies if (allowed := list_of(p)) is not None]
        if not any(allows(allowed) for allowed in lists):
            named = list(dict.fromkeys(str(entry) for allowed in lists for entry in allowed))
            shown = f" (allowed here: {_listing(named)})" if lists else ""
            yield Violation("", DENY, rule, path, unnamed + shown)
            return
        yield from self.allowed(rule, path, list_of, allows, say)

    def total_size_limit(self) -> tuple[str, Quantity | None] | None:
        """(policy, limit) of the strictest deny maxTotalSize (limit None: one that cannot be read, which refuses
        any growth), or None when no deny policy sets one: what the reconciler holds a Wukong's volumes to."""
        deny = [p for p in self.policies if p.action == DENY]
        if broken := next((p for p in deny if p.cannot_read(MAX_TOTAL_SIZE) is not None), None):
            return broken.name, None
        limits = [(p.name, p.max_total_size) for p in deny if p.max_total_size is not None]
        return min(limits, key=lambda found: found[1]) if limits else None

    def unreadable(self, policy: Policy, rule: str) -> str:
        written = policy.cannot_read(rule) or ""
        return (
            f"{rule} of policy {_quoted(policy.name, _NAME_CHARS)} is {_cut(written)}, which cannot be read as a "
            f"limit, so nothing it limits is admitted in namespace {_quoted(self.namespace, _NAME_CHARS)} until a "
            f"cluster admin corrects it (a limit that cannot be read refuses, it never allows)"
        )

    def whose(self, policy: Policy, verb: str = "allows") -> str:
        return f"policy {_quoted(policy.name, _NAME_CHARS)} {verb} in namespace {_quoted(self.namespace, _NAME_CHARS)}"

    def at_most(
        self,
        rule: str,
        path: str,
        value: _Limit,
        limit_of: Callable[[Policy], _Limit | None],
        say: Callable[[Policy, _Limit], str],
    ) -> Iterator[Violation]:
        """For each action, the smallest limit set is the one judged; the detail says when others were set."""
        if (known := self._strictest.get(rule)) is None:
            setting = [(p, limit) for p in self.policies if (limit := limit_of(p)) is not None]
            strictest = [
                min(candidates, key=lambda c: c[1])
                for action in _ACTIONS
                if (candidates := [(p, limit) for p, limit in setting if p.action == action])
            ]
            unreadable = [p for p in self.policies if p.unreadable and p.cannot_read(rule) is not None]
            broken = [found for a in _ACTIONS if (found := next((p for p in unreadable if p.action == a), None))]
            known = self._strictest[rule] = (len(setting), strictest, broken)
        setting_count, strictest, broken = known
        for policy in broken:  # a limit that cannot be read refuses, in place of its action's strictest
            yield Violation(policy.name, policy.action, rule, path, self.unreadable(policy, rule))
        failing = {p.action for p in broken}
        for policy, limit in strictest:
            if policy.action in failing:
                continue
            if value > limit:
                detail = say(policy, limit)
                if setting_count > 1:
                    namespace = _quoted(self.namespace, _NAME_CHARS)
                    detail += f" (the strictest of {setting_count} policies on namespace {namespace})"
                yield Violation(policy.name, policy.action, rule, path, detail)

    def allowed(self, rule: str, path: str, list_of: _ListOf, allows: _Allows, say: _Say) -> Iterator[Violation]:
        """For each action, the value must be in every list set; the first policy (by name) refusing it is named."""
        for action in _ACTIONS:
            for policy in self.policies:
                allowed = list_of(policy)
                if policy.action == action and allowed is not None and not allows(allowed):
                    yield Violation(policy.name, action, rule, path, say(policy, allowed))
                    break

    def member(
        self,
        rule: str,
        path: str,
        list_of: Callable[[Policy], tuple[str, ...] | None],
        what: str,
        value: str,
        fix: str = "",
    ) -> Iterator[Violation]:
        """An allowed-list rule whose entries are the values themselves (classes, network types, NADs)."""
        yield from self.allowed(
            rule,
            path,
            list_of,
            lambda allowed: value in allowed,
            lambda p, allowed: (
                f"{what} {_quoted(value)} is not one {self.whose(p)} (allowed: {_listing(allowed)}){fix}"
            ),
        )

    def required(
        self, rule: str, path: str, applies: Callable[[Policy], bool], say: Callable[[Policy], str]
    ) -> Iterator[Violation]:
        """For each action, the first policy (by name) whose yes/no rule the value breaks is named."""
        for action in _ACTIONS:
            policy = next((p for p in self.policies if p.action == action and applies(p)), None)
            if policy is not None:
                yield Violation(policy.name, action, rule, path, say(policy))


# -- reading and saying ------------------------------------------------------------------------------------------
def _strings(value: Any) -> tuple[str, ...] | None:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else None


_Read = TypeVar("_Read")


def _limit(
    unreadable: list[tuple[str, str]], rule: str, value: Any, read: Callable[[Any], _Read | None]
) -> _Read | None:
    """A limit as read; a value set (not null) that cannot be read is noted in ``unreadable``, to refuse."""
    found = read(value)
    if found is None and value is not None:
        unreadable.append((rule, _quoted(value) if isinstance(value, str) else _cut(json.dumps(value))))
    return found


def _integer(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _number(value: int) -> str:
    """An integer for a message; a hostile one too long to print (or to read) is said to be huge."""
    return str(value) if value.bit_length() <= 64 else f"more than {2**64}"


def _value(quantity: Quantity) -> str:
    text = str(quantity)
    return text if len(text) <= _VALUE_CHARS else f"{text[:_VALUE_CHARS]}..."


def _cut(text: str, limit: int = _VALUE_CHARS) -> str:
    """A value written into a message unquoted (as YAML would show it), cut short like ``_quoted``."""
    return text if len(text) <= limit else f"{text[:limit]}..."


def _quoted(text: str, limit: int = _VALUE_CHARS) -> str:
    """A value as Kubernetes messages quote it, cut short when it would swamp the message."""
    return json.dumps(text if len(text) <= limit else f"{text[:limit]}...")


def _listing(allowed: Sequence[str]) -> str:
    if not allowed:
        return "none"
    shown: list[str] = []
    length = 0
    for item in allowed:
        quoted = _quoted(item)
        if shown and length + len(quoted) > _LIST_CHARS:
            break
        shown.append(quoted)
        length += len(quoted) + 2
    more = len(allowed) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more else "")
