"""WukongPolicy: what a platform team lets the Wukongs of some namespaces ask for, and one Wukong judged by it.

Pure, so the webhook (deny or warn at admission) and the reconciler (auditing existing Wukongs) share one judgement.
Only what a request changes is judged: a new policy never turns what already exists into an error, while growth
past a limit is refused like creation. Where several policies apply, the strictest wins rule by rule, and the
violation names the one policy whose limit was broken, so the user knows whom to ask.

Most rules allow what no policy limits. Three refuse by default, because they reach past the tenant's namespace:
a NetworkAttachmentDefinition made over a host interface (the node's or the underlay's layer 2, past every
NetworkPolicy), another namespace's NetworkAttachmentDefinition, and placement on control-plane nodes (or on every
node, by tolerating every taint). A value these rules govern must be named by at least one policy on the namespace
and refused by none; the refusal of a value no policy names is built in (``Violation.policy`` is empty) and says
which policy field would allow it.

Policies and Wukongs are read without trusting their shape: a value of the wrong type reads as not set, and an
unparsable Wukong value is not judged here (the schema check reports it).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, TypeVar

from wukong import imagesources
from wukong.image import ImageError, parse_image
from wukong.labels import LabelSelector
from wukong.networkrules import MACVLAN, host_interface, nad_reference
from wukong.quantity import Quantity, QuantityError, parse
from wukong.spec import Disk, Network, mapping

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
    interface: str  # the bridge, the macvlan master, the OVS bridge, or the SR-IOV resource name
    vlans: tuple[tuple[int, int], ...] | None

    @classmethod
    def of(cls, raw: Mapping[str, Any]) -> HostNetwork:
        kind, interface, vlans = raw.get("type"), raw.get("interface"), raw.get("vlans")
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
        return cls(
            name=name if isinstance(name, str) else "",
            selector=LabelSelector.from_dict(spec.get("namespaceSelector")),
            action=WARN if spec.get("enforcementAction") == WARN else DENY,
            allowed_classes=_strings(storage.get("allowedClasses")),
            default_class=default if isinstance(default, str) and default else None,
            max_disk_size=_quantity(storage.get("maxDiskSize")),
            max_total_size=_quantity(storage.get("maxTotalSize")),
            max_disks=_integer(storage.get("maxDisks")),
            allow_disk_removal=storage.get("allowDiskRemoval") is not False,
            max_cpu=_integer(compute.get("maxCpu")),
            max_memory=_quantity(compute.get("maxMemory")),
            allowed_sources=_strings(images.get("allowedSources")),
            require_digest=images.get("requireDigest") is True,
            allowed_network_types=_strings(networks.get("allowedTypes")),
            allowed_attachment_definitions=_strings(networks.get("allowedAttachmentDefinitions")),
            host_networks=tuple(HostNetwork.of(h) for h in host_networks if isinstance(h, Mapping))
            if isinstance(host_networks, list)
            else None,
            allowed_toleration_keys=_strings(placement.get("allowedTolerationKeys")),
            allowed_node_selector_keys=_strings(placement.get("allowedNodeSelectorKeys")),
        )

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
    policies: Sequence[Policy], namespace: str, new: Mapping[str, Any], old: Mapping[str, Any] | None = None
) -> list[Violation]:
    """What in ``new`` breaks the policies given (those that select ``namespace``); with ``old`` (an update),
    only what changed or grew is judged. Deny violations first rule by rule; a warning is dropped where a deny
    violation names the same field and rule."""
    return Scope.of(policies, namespace).evaluate(new, old)


# -- the Wukong, as the rules read it --------------------------------------------------------------------------
class _View:
    """The fields policies judge, with each list entry's index in the raw list (entries that are not objects are
    skipped, but the paths of the others still point where the user wrote them). Read here rather than through
    WukongSpec, which also reads fields no policy judges; each field only when a rule asks for it (with no policy
    on the namespace, only networks and placement are)."""

    def __init__(self, obj: Any) -> None:
        self._spec = mapping(mapping(obj).get("spec"))

    @functools.cached_property
    def cpu(self) -> int | None:
        return _integer(self._spec.get("cpu"))

    @functools.cached_property
    def memory(self) -> Quantity | None:
        return _quantity(self._spec.get("memory"))

    @functools.cached_property
    def disks(self) -> tuple[tuple[int, Disk], ...]:
        return tuple((i, Disk.from_dict(raw)) for i, raw in _entries(self._spec.get("disks")))

    @functools.cached_property
    def os_image(self) -> str | None:
        image = self._spec.get("osImage")
        return image if isinstance(image, str) and image else None

    @functools.cached_property
    def networks(self) -> tuple[tuple[int, Network], ...]:
        return tuple((i, Network.from_dict(raw)) for i, raw in _entries(self._spec.get("networks")))

    @functools.cached_property
    def tolerations(self) -> tuple[tuple[int, Mapping[str, Any]], ...]:
        return tuple(_entries(mapping(self._spec.get("highAvailability")).get("tolerations")))

    @functools.cached_property
    def node_selector(self) -> Mapping[str, Any]:
        return mapping(mapping(self._spec.get("highAvailability")).get("nodeSelector"))

    def total_size(self) -> Quantity:
        sizes = [q for _, d in self.disks if (q := _quantity(d.size)) is not None]
        return Quantity(
            value=sum((q.value for q in sizes), Fraction(0)), binary=bool(sizes) and all(q.binary for q in sizes)
        )


def _entries(value: Any) -> list[tuple[int, Mapping[str, Any]]]:
    return [(i, item) for i, item in enumerate(value) if isinstance(item, Mapping)] if isinstance(value, list) else []


_Named = TypeVar("_Named", Disk, Network)
_Limit = TypeVar("_Limit", int, Quantity)


def _by_name(entries: Iterable[tuple[int, _Named]]) -> dict[str, _Named]:
    """Entries by name, the first of a name winning (a repeated name is validation's to report)."""
    found: dict[str, _Named] = {}
    for _, entry in entries:
        found.setdefault(entry.name, entry)
    return found


def _grew(after: _Limit, before: _Limit | None) -> bool:
    """Whether a value is judged on update: it grew, or there was nothing to compare it with."""
    return before is None or after > before


# -- the rules ---------------------------------------------------------------------------------------------------
def _compute(judge: Scope, after: _View, before: _View | None) -> Iterator[Violation]:
    cpu, memory = after.cpu, after.memory
    if cpu is not None and (before is None or _grew(cpu, before.cpu)):
        yield from judge.at_most(
            MAX_CPU,
            "spec.cpu",
            cpu,
            lambda p: p.max_cpu,
            lambda p, limit: f"{_number(cpu)} CPUs exceed {_number(limit)}, the most {judge.whose(p)}",
        )
    if memory is not None and (before is None or _grew(memory, before.memory)):
        yield from judge.at_most(
            MAX_MEMORY,
            "spec.memory",
            memory,
            lambda p: p.max_memory,
            lambda p, limit: f"{_value(memory)} exceeds {_value(limit)}, the most memory {judge.whose(p)}",
        )


def _disk_totals(judge: Scope, after: _View, before: _View | None) -> Iterator[Violation]:
    count, total = len(after.disks), after.total_size()
    if before is None or count > len(before.disks):
        yield from judge.at_most(
            MAX_DISKS,
            "spec.disks",
            count,
            lambda p: p.max_disks,
            lambda p, limit: f"{count} disks, more than the {_number(limit)} {judge.whose(p)}",
        )
    if before is None or _grew(total, before.total_size()):
        yield from judge.at_most(
            MAX_TOTAL_SIZE,
            "spec.disks",
            total,
            lambda p: p.max_total_size,
            lambda p, limit: (
                f"disks total {_value(total)}, more than the {_value(limit)} {judge.whose(p, 'allows one Wukong')}"
            ),
        )


def _disks(judge: Scope, after: _View, before: _View | None) -> Iterator[Violation]:
    earlier = _by_name(before.disks if before is not None else ())
    for index, disk in after.disks:
        yield from _disk(judge, f"spec.disks[{index}]", disk, earlier.get(disk.name))


def _disk(judge: Scope, path: str, disk: Disk, previous: Disk | None) -> Iterator[Violation]:
    size = _quantity(disk.size)
    if size is not None and (previous is None or _grew(size, _quantity(previous.size))):
        yield from judge.at_most(
            MAX_DISK_SIZE,
            f"{path}.size",
            size,
            lambda p: p.max_disk_size,
            lambda p, limit: f"{_value(size)} exceeds {_value(limit)}, the largest disk {judge.whose(p)}",
        )
    chosen = disk.storage_class  # a disk without one is given one by defaulting, which runs first
    if chosen is not None and (previous is None or previous.storage_class != chosen):
        yield from judge.member(
            ALLOWED_CLASSES, f"{path}.storageClassName", lambda p: p.allowed_classes, "StorageClass", chosen
        )
    if disk.image is not None and (previous is None or previous.image != disk.image):
        yield from _image(judge, f"{path}.image", disk.image)


def _os_image(judge: Scope, after: _View, before: _View | None) -> Iterator[Violation]:
    """osImage becomes the boot disk's image on creation (defaulting copies it before validation), and is judged
    there; here only when no disk carries it (the offline checker given a manifest defaulting could not complete)."""
    if after.os_image is None or (before is not None and before.os_image == after.os_image):
        return
    if not any(disk.image == after.os_image for _, disk in after.disks):
        yield from _image(judge, "spec.osImage", after.os_image)


def _image(judge: Scope, path: str, image: str) -> Iterator[Violation]:
    try:
        source = parse_image(image)
    except ImageError:
        return  # validation says what an image may look like
    shown = _quoted(source.url)
    yield from judge.allowed(
        ALLOWED_SOURCES,
        path,
        lambda p: p.allowed_sources,
        lambda allowed: any(imagesources.allows(prefix, source) for prefix in allowed),
        lambda p, allowed: f"image {shown} is not from a source {judge.whose(p)} (allowed: {_listing(allowed)})",
    )
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
    elif not imagesources.pinned(source):
        yield from judge.required(
            REQUIRE_DIGEST,
            path,
            lambda p: p.require_digest,
            lambda p: (
                f"image {shown} is not pinned by digest, which {judge.whose(p, 'requires')}; use @sha256:<digest>"
            ),
        )


def _networks(judge: Scope, after: _View, before: _View | None) -> Iterator[Violation]:
    earlier = _by_name(before.networks if before is not None else ())
    for index, network in after.networks:
        previous = earlier.get(network.name)
        if previous is None or _attachment(previous) != _attachment(network):
            yield from judge.network(f"spec.networks[{index}]", network)


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
    interface = host_interface(network)
    if interface is None:
        if network.type == MACVLAN:
            yield Violation(
                "",
                DENY,
                HOST_NETWORKS,
                f"{path}.bridgeName",
                "macvlan without bridgeName enslaves the node's default-route interface, the node's own network; "
                "name the master interface in bridgeName (one a WukongPolicy allows in networks.hostNetworks)",
            )
        return  # the network rules require bridgeName for the other types
    shown = _quoted(f"{network.type} {interface}" + (f" VLAN {network.vlan_id}" if network.vlan_id is not None else ""))

    def permits(allowed: tuple[HostNetwork, ...]) -> bool:
        return any(entry.permits(network, interface) for entry in allowed)

    entry = f"{{type: {_cut(network.type)}, interface: {_cut(interface)}" + (
        f', vlans: ["{network.vlan_id}"]}}' if network.vlan_id is not None else "}"
    )
    yield from judge.named(
        HOST_NETWORKS,
        f"{path}.bridgeName",
        lambda p: p.host_networks,
        permits,
        lambda p, allowed: (
            f"host network {shown} is not one {judge.whose(p)} (allowed: {_listing([str(h) for h in allowed])})"
        ),
        f"host network {shown} reaches the nodes' own network; {judge.none_allow('it')}: a cluster admin allows it "
        f"with networks.hostNetworks: [{entry}] in a WukongPolicy selecting this namespace, or name an existing "
        f"NetworkAttachmentDefinition with nadName",
    )


def _placement(judge: Scope, after: _View, before: _View | None) -> Iterator[Violation]:
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


def _removals(judge: Scope, after: _View, before: _View | None) -> Iterator[Violation]:
    if before is None:
        return
    kept = {d.name for _, d in after.disks}
    for name in dict.fromkeys(d.name for _, d in before.disks if d.name not in kept):  # once each, in order
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


_Rule = Callable[["Scope", _View, "_View | None"], Iterator[Violation]]
_RULES: tuple[_Rule, ...] = (_compute, _disk_totals, _disks, _os_image, _networks, _placement, _removals)
_REFUSING_BY_DEFAULT: tuple[_Rule, ...] = (_networks, _placement)  # all that can find anything without a policy


# -- strictest wins ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Scope:
    """The policies that apply in one namespace, ready to judge many Wukongs: the strictest limit of each rule is
    found once (the webhook keeps one Scope per namespace in each snapshot of its caches)."""

    policies: tuple[Policy, ...]  # by name: ties go to the first
    namespace: str
    _strictest: dict[str, tuple[int, list[tuple[Policy, Any]]]] = field(
        default_factory=dict, compare=False, hash=False, repr=False
    )

    @classmethod
    def of(cls, policies: Iterable[Policy], namespace: str) -> Scope:
        return cls(tuple(sorted(policies, key=lambda p: p.name)), namespace)

    def evaluate(self, new: Mapping[str, Any], old: Mapping[str, Any] | None = None) -> list[Violation]:
        """See ``evaluate``."""
        after = _View(new)
        before = _View(old) if old is not None else None
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
        self,
        rule: str,
        path: str,
        list_of: Callable[[Policy], tuple[Any, ...] | None],
        allows: Callable[[tuple[Any, ...]], bool],
        say: Callable[[Policy, tuple[Any, ...]], str],
        unnamed: str,
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
            known = self._strictest[rule] = (len(setting), strictest)
        setting_count, strictest = known
        for policy, limit in strictest:
            if value > limit:
                detail = say(policy, limit)
                if setting_count > 1:
                    namespace = _quoted(self.namespace, _NAME_CHARS)
                    detail += f" (the strictest of {setting_count} policies on namespace {namespace})"
                yield Violation(policy.name, policy.action, rule, path, detail)

    def allowed(
        self,
        rule: str,
        path: str,
        list_of: Callable[[Policy], tuple[Any, ...] | None],
        allows: Callable[[tuple[Any, ...]], bool],
        say: Callable[[Policy, tuple[Any, ...]], str],
    ) -> Iterator[Violation]:
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


def _integer(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _quantity(value: Any) -> Quantity | None:
    if not isinstance(value, str):
        return None
    try:
        return parse(value)
    except QuantityError:
        return None


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
