"""What cannot work in one ``spec.networks`` entry, said as (field, message) pairs.

Shared by the webhook (field errors at admission) and the reconciler (it never builds a network refused here).
Pure: ``ipaddress`` and the spec view only.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Final

from wukong.spec import IPConfig, Network

BRIDGE, MACVLAN, SRIOV, OVS = "bridge", "macvlan", "sriov", "ovs"
STATIC, DHCP, NONE = "static", "dhcp", "none"
# Admission's rule for an ipConfig written or changed, not one of these problems: a gateway without routes was a
# default route once, and the reconciler still builds such a stored network (its gateway then routes nothing).
GATEWAY_WITHOUT_ROUTES: Final = (
    "the pod network holds the guest's only default route, so a gateway carries only ipConfig.routes: list the "
    "networks reached through it, or drop gateway"
)

IFNAME_MAX: Final = 15  # Linux interface names (IFNAMSIZ less the terminating NUL): bridges, OVS bridges, masters
_NAD_NAME_ONLY = "these settings belong to the NetworkAttachmentDefinition you name; set them there or drop nadName"
_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_RESOURCE_NAME = re.compile(rf"{_DNS_LABEL}(\.{_DNS_LABEL})*/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")

Problem = tuple[str, str]  # (field relative to the network's entry, message)
NAD_NAME_PATTERN: Final = rf"({_DNS_LABEL}/)?{_DNS_LABEL}(\.{_DNS_LABEL})*"  # the CRD's nadName pattern, unanchored


def nad_reference(nad_name: str, namespace: str) -> tuple[str, str]:
    """(namespace, name) of the NetworkAttachmentDefinition ``nadName`` names, in Multus' own syntax: ``name`` is
    in the Wukong's namespace, ``other/name`` in another one (which only a WukongPolicy may allow)."""
    other, _, name = nad_name.rpartition("/")
    return other or namespace, name


# The field that names what a network attaches to on the nodes, per type: one field per meaning.
HOST_FIELD: Final = {BRIDGE: "bridgeName", OVS: "bridgeName", MACVLAN: "master", SRIOV: "resourceName"}
# Admission's rule for a network written or changed: before ``master`` and ``resourceName`` existed, macvlan and
# sriov networks named their master and resource in bridgeName; such a stored network is still built as it was.
MISPLACED_BRIDGE_NAME: Final = {
    MACVLAN: "bridgeName names a Linux or Open vSwitch bridge; a macvlan network names the host interface it "
    "enslaves in master",
    SRIOV: "bridgeName names a Linux or Open vSwitch bridge; an sriov network names its device plugin resource in "
    "resourceName",
}


def host_interface(network: Network) -> str | None:
    """What on the nodes a NetworkAttachmentDefinition made for ``network`` attaches the VM to: the Linux or
    Open vSwitch bridge, the macvlan master, or the SR-IOV resource. A bridge network without ``bridgeName`` uses
    a bridge named after the network (the plugin joins one that exists, or makes it); a macvlan network without
    a master enslaves the node's default-route interface, which is None here: it is the node's own network."""
    if network.type == BRIDGE:
        return network.bridge_name or network.name
    if network.type == MACVLAN:
        return network.master or network.bridge_name  # bridgeName: stored before master existed
    if network.type == SRIOV:
        return network.resource_name or network.bridge_name  # bridgeName: stored before resourceName existed
    return network.bridge_name


def host_field(network: Network) -> str:
    """The field of the entry that says what ``host_interface`` names (where a stored network said it)."""
    wanted = HOST_FIELD.get(network.type, "bridgeName")
    if network.type in (MACVLAN, SRIOV) and _own_field(network) is None and network.bridge_name:
        return "bridgeName"
    return wanted


def _own_field(network: Network) -> str | None:
    """The value of macvlan's ``master`` or sriov's ``resourceName``."""
    return {MACVLAN: network.master, SRIOV: network.resource_name}.get(network.type)


def problems(network: Network) -> list[Problem]:
    """Every combination in one network entry that cannot work. The schema checks each field on its own, and
    what concerns the list (unique names, none named like the pod network) is the caller's."""
    if network.nad_name:  # ipConfig still configures the guest (cloud-init); the rest is the named NAD's
        set_here = [
            ("bridgeName", network.bridge_name),
            ("master", network.master),
            ("resourceName", network.resource_name),
            ("vlanId", network.vlan_id),
        ]
        found = [(field, _NAD_NAME_ONLY) for field, value in set_here if value is not None]
        return found + (_ip_problems(network.ip_config) if network.ip_config is not None else [])
    found = _host_problems(network)
    if network.type == MACVLAN and network.vlan_id is not None:
        found.append(("vlanId", "macvlan has no VLAN setting: name a VLAN interface (like eth0.100) in master instead"))
    if network.ip_config is not None:
        found += _ip_problems(network.ip_config)
    return found


def _host_problems(network: Network) -> list[Problem]:
    found: list[Problem] = []
    for field, value, for_type in (("master", network.master, MACVLAN), ("resourceName", network.resource_name, SRIOV)):
        if value is not None and network.type != for_type:
            own = f"; a {network.type} network names its {_WHAT[network.type]} in {HOST_FIELD[network.type]}"
            found.append((field, f"only for {for_type} networks" + (own if network.type in _WHAT else "")))
    if network.type in (MACVLAN, SRIOV) and network.bridge_name and _own_field(network):
        found.append(("bridgeName", f"{MISPLACED_BRIDGE_NAME[network.type]}: set {HOST_FIELD[network.type]} only"))
    given, where = host_interface(network), host_field(network)
    if network.type == SRIOV:
        if given is None:
            found.append(
                ("resourceName", "required for sriov: the device plugin's resource, like intel.com/sriov_netdevice")
            )
        elif message := extended_resource_problem(given):
            found.append((where, message))
        return found
    if network.type == OVS and given is None:
        return [
            *found,
            ("bridgeName", "required for ovs: the Open vSwitch bridge on the nodes (ovs-cni does not create it)"),
        ]
    if network.type == BRIDGE and network.bridge_name is None and len(network.name) > IFNAME_MAX:
        return [
            *found,
            (
                "bridgeName",
                f"required when the network name is longer than {IFNAME_MAX} characters: the bridge is named "
                "after the network by default, and Linux interface names are shorter",
            ),
        ]
    explicit = network.bridge_name if network.type in (BRIDGE, OVS) else given
    if (
        network.type in (BRIDGE, MACVLAN, OVS)
        and explicit is not None
        and (message := _interface_name_problem(explicit))
    ):
        found.append((where, message))
    return found


_WHAT: Final = {
    BRIDGE: "Linux bridge",
    OVS: "Open vSwitch bridge",
    MACVLAN: "master interface",
    SRIOV: "device plugin resource",
}
_QUALIFIED_NAME_MAX: Final = 63
_DNS_SUBDOMAIN_MAX: Final = 253


def extended_resource_problem(name: str) -> str | None:
    """Why ``name`` is not a Kubernetes extended resource name (``<domain>/<name>``, outside kubernetes.io, as
    ``IsExtendedResourceName`` judges), or None: what a device plugin advertises and a pod may request."""
    domain, _, rest = name.partition("/")
    if (
        not _RESOURCE_NAME.fullmatch(name)
        or len(domain) > _DNS_SUBDOMAIN_MAX - len("requests.")  # its quota name, requests.<name>, must be valid too
        or len(rest) > _QUALIFIED_NAME_MAX
    ):
        return "must be an extended resource name, <domain>/<name>, like intel.com/sriov_netdevice"
    if domain == "kubernetes.io" or domain.endswith(".kubernetes.io"):
        return "kubernetes.io resources are Kubernetes' own, not a device plugin's; name the SR-IOV resource"
    return None


def _interface_name_problem(name: str) -> str | None:
    if len(name) > IFNAME_MAX:
        return f"must be no more than {IFNAME_MAX} characters: it names a Linux interface on the nodes"
    if name in (".", "..") or any(c in "/:" or c.isspace() for c in name):
        return "must be a Linux interface name: no '/', ':' or whitespace"
    return None


def _ip_problems(ip: IPConfig) -> list[Problem]:
    if ip.mode in (DHCP, NONE):
        why = "DHCP supplies it" if ip.mode == DHCP else "mode none gives the interface no address"
        set_here = [
            ("address", ip.address),
            ("gateway", ip.gateway),
            ("dnsServers", ip.dns_servers or None),
            ("routes", ip.routes or None),
        ]
        return [(f"ipConfig.{f}", f"only with mode static: {why}") for f, v in set_here if v is not None]
    if ip.mode != STATIC:
        return []  # the schema's enum reports it
    found: list[Problem] = []
    for i, server in enumerate(ip.dns_servers):
        if _ip_address(server) is None:
            found.append((f"ipConfig.dnsServers[{i}]", f"{server!r} is not an IP address"))
    interface = _ip_interface(ip.address) if ip.address else None
    if ip.address is None:
        found.append(("ipConfig.address", "required when mode is static"))
    elif interface is None:
        found.append(("ipConfig.address", "must be an address with a prefix length, like 192.0.2.10/24"))
    elif message := _host_address_problem(interface):
        found.append(("ipConfig.address", message))
    if ip.gateway is not None:
        gateway = _ip_address(ip.gateway)
        if gateway is None:
            found.append(("ipConfig.gateway", f"{ip.gateway!r} is not an IP address"))
        elif interface is not None and gateway not in interface.network:
            found.append(("ipConfig.gateway", f"must be in {interface.network}, the network of ipConfig.address"))
    elif ip.routes:
        found.append(("ipConfig.routes", "needs ipConfig.gateway, the next hop of these routes"))
    found += _route_problems(ip)
    return found


def _route_problems(ip: IPConfig) -> list[Problem]:
    gateway = _ip_address(ip.gateway) if ip.gateway else None
    found: list[Problem] = []
    for i, route in enumerate(ip.routes):
        where = f"ipConfig.routes[{i}]"
        try:
            network = ipaddress.ip_network(route, strict=True) if "/" in route else None
        except ValueError:
            network = None
        if network is None:
            found.append((where, f"{route!r} is not a network with a prefix length, like 198.51.100.0/24"))
        elif network.prefixlen == 0:
            found.append((where, "the pod network holds the guest's only default route; name narrower networks"))
        elif gateway is not None and network.version != gateway.version:
            found.append((where, f"is IPv{network.version} but ipConfig.gateway is IPv{gateway.version}"))
    return found


def _host_address_problem(interface: ipaddress.IPv4Interface | ipaddress.IPv6Interface) -> str | None:
    """IPv4 networks of more than two addresses keep the first for the network and the last for broadcast."""
    network = interface.network
    if network.version != 4 or network.prefixlen >= 31:
        return None
    if interface.ip == network.network_address:
        return f"{interface.ip} is the address of the network {network} itself, not one a host can take"
    if interface.ip == network.broadcast_address:
        return f"{interface.ip} is the broadcast address of {network}, not one a host can take"
    return None


def _ip_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _ip_interface(text: str) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface | None:
    """An address with an explicit prefix: ``ip_interface`` alone would read a bare address as a /32."""
    if "/" not in text:
        return None
    try:
        return ipaddress.ip_interface(text)
    except ValueError:
        return None
