"""Typed, read-only views of a Wukong's spec.

Both processes receive Wukongs as plain dicts. These views read them without trusting their shape:
a field of the wrong type reads as missing, so callers never crash on input the schema check will reject.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

RUN_STRATEGY_DEFAULT = "Always"
RUN_STRATEGY_HALTED = "Halted"
RETAIN, DELETE = "Retain", "Delete"  # volumeRetentionPolicy.whenDeleted


@dataclass(frozen=True)
class Disk:
    name: str
    size: str
    storage_class: str | None = None
    boot: bool | None = None
    image: str | None = None

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Disk:
        return cls(
            name=_str(raw.get("name")) or "",
            size=_str(raw.get("size")) or "",
            storage_class=_str(raw.get("storageClassName")),
            boot=raw.get("boot") if isinstance(raw.get("boot"), bool) else None,
            image=_str(raw.get("image")),
        )


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
    bridge_name: str | None = None
    nad_name: str | None = None  # an existing NetworkAttachmentDefinition; else the reconciler makes one
    vlan_id: int | None = None
    ip_config: IPConfig | None = None

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
        spec = mapping(obj.get("spec"))
        cpu = spec.get("cpu")
        user = spec.get("cloudInitUser")
        networks = spec.get("networks")
        return cls(
            cpu=cpu if isinstance(cpu, int) and not isinstance(cpu, bool) else None,
            memory=_str(spec.get("memory")),
            disks=tuple(Disk.from_dict(d) for d in disk_dicts(obj)),
            run_strategy=run_strategy(spec.get("startStrategy"), spec.get("highAvailability")),
            start_strategy=_start_strategy(spec),
            when_deleted=DELETE if mapping(spec.get("volumeRetentionPolicy")).get("whenDeleted") == DELETE else RETAIN,
            os_image=_str(spec.get("osImage")),
            ssh_key_secret=_str(spec.get("sshKeySecret")),
            cloud_init_user=CloudInitUser.from_dict(user) if isinstance(user, Mapping) else None,
            networks=tuple(Network.from_dict(n) for n in networks if isinstance(n, Mapping))
            if isinstance(networks, list)
            else (),
            high_availability=HighAvailability.from_dict(mapping(spec.get("highAvailability"))),
        )

    @property
    def boot_disk(self) -> Disk | None:
        return next((d for d in self.disks if d.boot), None)


def _start_strategy(spec: Mapping[str, Any]) -> str:
    """What decides the run strategy, as canonical JSON: startStrategy, and highAvailability.restartPolicy when set."""
    decided = dict(mapping(spec.get("startStrategy")))
    policy = mapping(spec.get("highAvailability")).get("restartPolicy")
    if policy is not None:
        decided["highAvailability.restartPolicy"] = policy
    return json.dumps(decided, sort_keys=True, separators=(",", ":"))


def mapping(value: Any) -> Mapping[str, Any]:
    """``value`` when it is an object, else an empty one: reading hostile input never crashes."""
    return value if isinstance(value, Mapping) else {}


def disk_dicts(obj: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The raw disk entries that are objects (anything else is the schema check's to report)."""
    spec = obj.get("spec")
    disks = spec.get("disks") if isinstance(spec, Mapping) else None
    if not isinstance(disks, list):
        return []
    return [d for d in disks if isinstance(d, Mapping)]


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
