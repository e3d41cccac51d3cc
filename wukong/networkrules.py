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


def host_interface(network: Network) -> str | None:
    """What on the nodes a NetworkAttachmentDefinition made for ``network`` attaches the VM to: the Linux or
    Open vSwitch bridge, the macvlan master, or the SR-IOV resource. A bridge network without ``bridgeName`` uses
    a bridge named after the network (the plugin joins one that exists, or makes it); a macvlan network without
    one enslaves the node's default-route interface, which is None here: it is the node's own network."""
    if network.type == BRIDGE:
        return network.bridge_name or network.name
    return network.bridge_name


def problems(network: Network) -> list[Problem]:
    """Every combination in one network entry that cannot work. The schema checks each field on its own, and
    what concerns the list (unique names, none named like the pod network) is the caller's."""
    if network.nad_name:  # ipConfig still configures the guest (cloud-init); the rest is the named NAD's
        set_here = [("bridgeName", network.bridge_name), ("vlanId", network.vlan_id)]
        found = [(field, _NAD_NAME_ONLY) for field, value in set_here if value is not None]
        return found + (_ip_problems(network.ip_config) if network.ip_config is not None else [])
    found = _bridge_name_problems(network)
    if network.type == MACVLAN and network.vlan_id is not None:
        found.append(
            ("vlanId", "macvlan has no VLAN setting: name a VLAN interface (like eth0.100) in bridgeName instead")
        )
    if network.ip_config is not None:
        found += _ip_problems(network.ip_config)
    return found


def _bridge_name_problems(network: Network) -> list[Problem]:
    given = network.bridge_name
    if network.type == SRIOV:
        if given is None:
            return [("bridgeName", "required for sriov: the SR-IOV resource name, like intel.com/sriov_netdevice")]
        if not _RESOURCE_NAME.fullmatch(given):
            return [("bridgeName", "must be an SR-IOV resource name, <domain>/<name>, like intel.com/sriov_netdevice")]
        return []
    if network.type == OVS and given is None:
        return [("bridgeName", "required for ovs: the Open vSwitch bridge on the nodes (ovs-cni does not create it)")]
    if network.type == BRIDGE and given is None and len(network.name) > IFNAME_MAX:
        return [
            (
                "bridgeName",
                f"required when the network name is longer than {IFNAME_MAX} characters: the bridge is named "
                "after the network by default, and Linux interface names are shorter",
            )
        ]
    if network.type in (BRIDGE, MACVLAN, OVS) and given is not None and (message := _interface_name_problem(given)):
        return [("bridgeName", message)]
    return []


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
