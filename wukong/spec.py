"""The one reader of a Wukong, and the typed, read-only values it reads.

Both processes receive Wukongs as plain dicts, from the API server or from a hostile request. ``Wukong`` reads
one once, without trusting its shape: a field of the wrong type reads as missing (None, or no entry), so no
reader crashes on input the schema check refuses, and the schema check (webhook.validation, from the CRD) is
the one place that says what is wrong with a type. Defaulting, validation, policies, planning and status all
read through it; each field is read when first asked for, and then kept.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, overload

from wukong.quantity import Quantity, parse_or_none, total

RUN_STRATEGY_DEFAULT = "Always"
RUN_STRATEGY_HALTED = "Halted"
RETAIN, DELETE = "Retain", "Delete"  # volumeRetentionPolicy.whenDeleted


_T = TypeVar("_T")


class _read_once(Generic[_T]):  # a decorator, named like functools.cached_property
    """``functools.cached_property`` without its lock, which costs more than most reads here (a reader serves one
    request in one thread): the field is read when first asked for, then kept in the instance."""

    def __init__(self, read: Callable[[Any], _T]) -> None:
        self._read, self._name, self.__doc__ = read, read.__name__, read.__doc__

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> _read_once[_T]: ...

    @overload
    def __get__(self, obj: object, owner: type | None = None) -> _T: ...

    def __get__(self, obj: object | None, owner: type | None = None) -> _T | _read_once[_T]:
        if obj is None:
            return self
        value = obj.__dict__[self._name] = self._read(obj)
        return value


@dataclass(frozen=True)
class Disk:
    name: str
    size: str
    storage_class: str | None = None
    boot: bool | None = None
    image: str | None = None
    snapshot_keep: int | None = None  # snapshotBeforeExpand: how many snapshots to keep; None: none are taken

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Disk:
        return cls(
            name=_str(raw.get("name")) or "",
            size=_str(raw.get("size")) or "",
            storage_class=_str(raw.get("storageClassName")),
            boot=raw.get("boot") if isinstance(raw.get("boot"), bool) else None,
            image=_str(raw.get("image")),
            snapshot_keep=_snapshot_keep(raw.get("snapshotBeforeExpand")),
        )


SNAPSHOT_KEEP_DEFAULT, SNAPSHOT_KEEP_MAX = 1, 10  # snapshotBeforeExpand.keep: omitted, and the most allowed


def _snapshot_keep(value: Any) -> int | None:
    """``snapshotBeforeExpand: {keep: N}``; an object without ``keep`` keeps one. Anything else is not asked for
    (admission refuses it; a Wukong stored past admission is not snapshotted on a guess)."""
    if not isinstance(value, Mapping):
        return None
    keep = value.get("keep", SNAPSHOT_KEEP_DEFAULT)
    if isinstance(keep, bool) or not isinstance(keep, int) or not 1 <= keep <= SNAPSHOT_KEEP_MAX:
        return None
    return keep


@dataclass(frozen=True)
class CloudInitUser:
    name: str
    groups: tuple[str, ...] = ()
    lock_passwd: bool | None = None
    password: str | None = None  # plaintext: hashed before it reaches user-data
    password_hash: str | None = None
    shell: str | None = None
    sudo: str | None = None
    ssh_password_auth: bool = False  # password login over SSH, only when asked for

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> CloudInitUser:
        groups = raw.get("groups")
        return cls(
            name=_str(raw.get("name")) or "",
            groups=tuple(g for g in groups if isinstance(g, str)) if isinstance(groups, list) else (),
            lock_passwd=raw.get("lockPasswd") if isinstance(raw.get("lockPasswd"), bool) else None,
            password=_str(raw.get("password")),
            password_hash=_str(raw.get("passwordHash")),
            shell=_str(raw.get("shell")),
            sudo=_str(raw.get("sudo")),
            ssh_password_auth=raw.get("sshPasswordAuth") is True,
        )


@dataclass(frozen=True)
class IPConfig:
    mode: str  # static | dhcp | none
    address: str | None = None  # CIDR notation, static mode
    gateway: str | None = None  # the next hop of ``routes``; never a default route (the pod network has it)
    dns_servers: tuple[str, ...] = ()
    routes: tuple[str, ...] = ()  # destination networks (CIDR) reached through the gateway

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> IPConfig:
        dns, routes = raw.get("dnsServers"), raw.get("routes")
        return cls(
            mode=_str(raw.get("mode")) or "",
            address=_str(raw.get("address")),
            gateway=_str(raw.get("gateway")),
            dns_servers=tuple(d for d in dns if isinstance(d, str)) if isinstance(dns, list) else (),
            routes=tuple(r for r in routes if isinstance(r, str)) if isinstance(routes, list) else (),
        )


@dataclass(frozen=True)
class Network:
    name: str
    type: str  # bridge | macvlan | sriov | ovs
    bridge_name: str | None = None  # bridge, ovs: the bridge on the nodes
    nad_name: str | None = None  # an existing NetworkAttachmentDefinition; else the reconciler makes one
    vlan_id: int | None = None
    ip_config: IPConfig | None = None
    master: str | None = None  # macvlan: the host interface it enslaves
    resource_name: str | None = None  # sriov: the device plugin's extended resource (intel.com/sriov_netdevice)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Network:
        vlan = raw.get("vlanId")
        ip = raw.get("ipConfig")
        return cls(
            name=_str(raw.get("name")) or "",
            type=_str(raw.get("type")) or "",
            bridge_name=_str(raw.get("bridgeName")),
            nad_name=_str(raw.get("nadName")),
            vlan_id=vlan if isinstance(vlan, int) and not isinstance(vlan, bool) else None,
            ip_config=IPConfig.from_dict(ip) if isinstance(ip, Mapping) else None,
            master=_str(raw.get("master")),
            resource_name=_str(raw.get("resourceName")),
        )


@dataclass(frozen=True)
class HighAvailability:
    anti_affinity: bool = False
    node_selector: tuple[tuple[str, str], ...] = ()  # sorted (key, value) pairs
    restart_policy: str | None = None  # Always | OnFailure | Never
    tolerations: tuple[Mapping[str, Any], ...] = ()

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> HighAvailability:
        selector = mapping(raw.get("nodeSelector"))
        tolerations = raw.get("tolerations")
        return cls(
            anti_affinity=raw.get("antiAffinity") is True,
            node_selector=tuple(sorted((k, v) for k, v in selector.items() if isinstance(v, str))),
            restart_policy=_str(raw.get("restartPolicy")),
            tolerations=tuple(t for t in tolerations if isinstance(t, Mapping))
            if isinstance(tolerations, list)
            else (),
        )


@dataclass(frozen=True)
class WukongSpec:
    cpu: int | None
    memory: str | None
    disks: tuple[Disk, ...]
    run_strategy: str
    when_deleted: str = RETAIN
    start_strategy: str = "{}"  # spec.startStrategy as canonical JSON: applied to the VM whenever it changes
    os_image: str | None = None
    ssh_key_secret: str | None = None
    cloud_init_user: CloudInitUser | None = None
    networks: tuple[Network, ...] = ()
    high_availability: HighAvailability = HighAvailability()

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> WukongSpec:
        return Wukong(obj).spec

    @property
    def boot_disk(self) -> Disk | None:
        return next((d for d in self.disks if d.boot), None)


class DiskEntry:
    """One ``spec.disks`` entry that is an object: where the user wrote it, as written, and as read (the typed
    ``disk`` and ``size`` when first asked for: most rules need only a name and one field)."""

    def __init__(self, index: int, raw: Mapping[str, Any]) -> None:
        self.index = index  # in spec.disks as written, entries that are not objects counted too
        self.raw = raw
        name = raw.get("name")
        self.name = name if isinstance(name, str) else None  # even empty; ``disk.name`` is "" for anything else

    def __repr__(self) -> str:
        return f"DiskEntry({self.index}, {self.raw!r})"

    @_read_once
    def disk(self) -> Disk:
        return Disk.from_dict(self.raw)

    @property
    def boots(self) -> bool:
        return self.raw.get("boot") is True

    def text(self, key: str) -> str | None:
        """A field as written when it is a string, even an empty one (``disk`` reads "" as not set)."""
        return text(self.raw, key)

    @_read_once
    def size(self) -> Quantity | None:
        return parse_or_none(self.text("size"))


@dataclass(frozen=True)
class NetworkEntry:
    """One ``spec.networks`` entry that is an object: where the user wrote it, as written, and as read."""

    index: int
    raw: Mapping[str, Any]
    network: Network


class Wukong:
    """A Wukong read once: each field typed (or None where it is not what the schema says), each list entry with
    its index in the list as written, so that every message points where the user wrote it. ``of`` takes a raw
    object or a reader, so one request is read once however many rules ask."""

    def __init__(self, obj: Any) -> None:
        self.object: Mapping[str, Any] = mapping(obj)
        self.fields: Mapping[str, Any] = mapping(self.object.get("spec"))  # spec, as written

    @classmethod
    def of(cls, obj: Wukong | Mapping[str, Any] | None) -> Wukong:
        return obj if isinstance(obj, Wukong) else cls(obj)

    @_read_once
    def name(self) -> str | None:
        name = mapping(self.object.get("metadata")).get("name")
        return name if isinstance(name, str) else None

    def annotation(self, key: str) -> str | None:
        value = mapping(mapping(self.object.get("metadata")).get("annotations")).get(key)
        return value if isinstance(value, str) else None

    @_read_once
    def cpu(self) -> int | None:
        cpu = self.fields.get("cpu")
        return cpu if isinstance(cpu, int) and not isinstance(cpu, bool) else None

    @_read_once
    def memory_text(self) -> str | None:
        """spec.memory as written when it is a string (even one that is not a quantity)."""
        memory = self.fields.get("memory")
        return memory if isinstance(memory, str) else None

    @_read_once
    def memory(self) -> Quantity | None:
        return parse_or_none(self.memory_text)

    @_read_once
    def os_image(self) -> str | None:
        return _str(self.fields.get("osImage"))

    @_read_once
    def disks(self) -> tuple[DiskEntry, ...]:
        return tuple(DiskEntry(i, raw) for i, raw in _entries(self.fields.get("disks")))

    @_read_once
    def named_disks(self) -> tuple[DiskEntry, ...]:
        """The disks whose name is a string: the ones a rule about a named disk can speak of."""
        return tuple(entry for entry in self.disks if entry.name is not None)

    def images(self) -> list[tuple[int, str, str]]:
        """(index, name, image) of the disks with an image."""
        return [(entry.index, entry.name or "", image) for entry in self.disks if (image := entry.text("image"))]

    @_read_once
    def networks(self) -> tuple[NetworkEntry, ...]:
        return tuple(NetworkEntry(i, raw, Network.from_dict(raw)) for i, raw in _entries(self.fields.get("networks")))

    @_read_once
    def cloud_init_user(self) -> Mapping[str, Any]:
        """spec.cloudInitUser as written (empty when it is not an object): its checks judge values as written."""
        return mapping(self.fields.get("cloudInitUser"))

    @_read_once
    def user(self) -> CloudInitUser | None:
        user = self.fields.get("cloudInitUser")
        return CloudInitUser.from_dict(user) if isinstance(user, Mapping) else None

    @_read_once
    def high_availability(self) -> Mapping[str, Any]:
        return mapping(self.fields.get("highAvailability"))

    @_read_once
    def start_strategy(self) -> Mapping[str, Any]:
        return mapping(self.fields.get("startStrategy"))

    @_read_once
    def tolerations(self) -> tuple[tuple[int, Mapping[str, Any]], ...]:
        return tuple(_entries(self.high_availability.get("tolerations")))

    @_read_once
    def node_selector(self) -> Mapping[str, Any]:
        return mapping(self.high_availability.get("nodeSelector"))

    @_read_once
    def when_deleted(self) -> Any:
        """volumeRetentionPolicy.whenDeleted as written (``spec.when_deleted`` is the one it means)."""
        return mapping(self.fields.get("volumeRetentionPolicy")).get("whenDeleted")

    @_read_once
    def ssh_key_secret(self) -> str | None:
        name = self.fields.get("sshKeySecret")
        return name if isinstance(name, str) else None

    @_read_once
    def recorded(self) -> dict[str, Quantity]:
        """Disk name -> size of the volumes the status (written by the reconciler alone) says this Wukong holds:
        its disks' volumes, and those of removed disks, released and kept until someone deletes them."""
        status = mapping(self.object.get("status"))
        found: dict[str, Quantity] = {}
        for key in ("volumes", "releasedVolumes"):
            for _, entry in _entries(status.get(key)):
                disk, size = entry.get("disk", entry.get("name")), parse_or_none(entry.get("size"))
                if isinstance(disk, str) and size is not None and (disk not in found or found[disk] < size):
                    found[disk] = size
        return found

    @_read_once
    def ever_bound(self) -> frozenset[str]:
        """Disks whose volume the reconciler has seen bound (status.volumes[].everBound)."""
        return frozenset(
            entry["name"]
            for _, entry in _entries(mapping(self.object.get("status")).get("volumes"))
            if isinstance(entry.get("name"), str) and entry.get("everBound") is True
        )

    @_read_once
    def total_size(self) -> Quantity:
        """The disks' sizes added up (those that are not quantities left out)."""
        return total([size for entry in self.disks if (size := entry.size) is not None])

    @_read_once
    def spec(self) -> WukongSpec:
        """The whole spec as the reconciler carries it out."""
        return WukongSpec(
            cpu=self.cpu,
            memory=_str(self.memory_text),
            disks=tuple(entry.disk for entry in self.disks),
            run_strategy=run_strategy(self.start_strategy, self.high_availability),
            start_strategy=_start_strategy(self.fields),
            when_deleted=DELETE if self.when_deleted == DELETE else RETAIN,
            os_image=self.os_image,
            ssh_key_secret=_str(self.ssh_key_secret),
            cloud_init_user=self.user,
            networks=tuple(entry.network for entry in self.networks),
            high_availability=HighAvailability.from_dict(self.high_availability),
        )


def _entries(value: Any) -> list[tuple[int, Mapping[str, Any]]]:
    """(index, entry) of the entries of a list that are objects (anything else is the schema check's to report)."""
    if type(value) is not list and not isinstance(value, list):
        return []
    return [(i, item) for i, item in enumerate(value) if type(item) is dict or isinstance(item, Mapping)]


def _start_strategy(spec: Mapping[str, Any]) -> str:
    """What decides the run strategy, as canonical JSON: startStrategy, and highAvailability.restartPolicy when set."""
    decided = dict(mapping(spec.get("startStrategy")))
    policy = mapping(spec.get("highAvailability")).get("restartPolicy")
    if policy is not None:
        decided["highAvailability.restartPolicy"] = policy
    return json.dumps(decided, sort_keys=True, separators=(",", ":"))


def text(raw: Mapping[str, Any], key: str) -> str | None:
    """``raw[key]`` when it is a string, even an empty one (a rule about what a string says judges "" too)."""
    value = raw.get(key)
    return value if isinstance(value, str) else None


def mapping(value: Any) -> Mapping[str, Any]:
    """``value`` when it is an object, else an empty one: reading hostile input never crashes."""
    return value if type(value) is dict or isinstance(value, Mapping) else {}


# highAvailability.restartPolicy as a KubeVirt run strategy: what happens when the VM stops by itself.
RESTART_POLICY_RUN_STRATEGY = {"Always": "Always", "OnFailure": "RerunOnFailure", "Never": "Once"}


def run_strategy(start: Any, high_availability: Any = None) -> str:
    """KubeVirt runStrategy: startStrategy.runStrategy if given; else Halted when autoStart is false; else the one
    highAvailability.restartPolicy maps to (Always, OnFailure -> RerunOnFailure, Never -> Once); else Always.
    (Admission refuses a restartPolicy that contradicts an explicit runStrategy or autoStart: false.)"""
    start = mapping(start)
    if given := _str(start.get("runStrategy")):
        return given
    if start.get("autoStart") is False:
        return RUN_STRATEGY_HALTED
    policy = mapping(high_availability).get("restartPolicy")
    if isinstance(policy, str) and policy in RESTART_POLICY_RUN_STRATEGY:
        return RESTART_POLICY_RUN_STRATEGY[policy]
    return RUN_STRATEGY_DEFAULT


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
