"""A Wukong's secondary networks: the Multus NetworkAttachmentDefinitions made for them and the VM's interfaces.

A network either names an existing NetworkAttachmentDefinition (``nadName``), and then how the attachment is
made is that object's business, or describes one (``type``, the host field of its type, ``vlanId``,
``ipConfig``) that the reconciler makes, names ``<wukong>-<network>`` and has the Wukong own. ``type`` also picks
the VM interface's binding, so it matters with ``nadName`` too.

Each type names what its CNI plugin needs from the node in a field of its own (``networkrules.HOST_FIELD``):

- bridge (``bridgeName``): the Linux bridge; without one it is the network's name (the plugin creates a bridge
  that is missing).
- macvlan (``master``): the host interface to enslave; without one the plugin takes the default-route interface.
  macvlan has no VLAN setting: a VLAN is a VLAN interface (``eth0.100``) named here.
- sriov (``resourceName``): the SR-IOV device plugin's extended resource (``intel.com/sriov_netdevice``). It goes
  into the NAD's ``k8s.v1.cni.cncf.io/resourceName`` annotation, through which Multus makes the pod request a VF,
  so the scheduler only picks nodes that have one free -- and the launcher pod gets whatever device it names,
  which is why only a resource a WukongPolicy names is built.
- ovs (``bridgeName``): the Open vSwitch bridge, which must already exist on the nodes (ovs-cni does not create
  bridges).

A macvlan or sriov network stored before ``master`` and ``resourceName`` existed said them in ``bridgeName``, and
is built as it was (``networkrules.host_interface``); admission refuses that spelling in what it is given anew.

Pure: objects in, objects out. ``wukong.networkrules.problems`` lists the combinations that cannot work, as
(field, message) pairs relative to the network's entry (admission refuses them too); nothing here builds a config
for a network it lists problems for.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from reconciler.ownership import child_metadata
from wukong.cloudinit import mac_address
from wukong.manifests import Obj
from wukong.naming import LABEL_VALUE_MAX, POD_NETWORK
from wukong.networkrules import BRIDGE, DHCP, MACVLAN, OVS, SRIOV, STATIC, host_interface, problems
from wukong.spec import IPConfig, Network

NAD_API_VERSION: Final = "k8s.cni.cncf.io/v1"
NAD_KIND: Final = "NetworkAttachmentDefinition"
RESOURCE_NAME_ANNOTATION: Final = "k8s.v1.cni.cncf.io/resourceName"  # Multus makes it a pod resource request
CNI_VERSION: Final = "0.3.1"

_HASH_LENGTH: Final = 8


def nad_name(wukong_name: str, network: str) -> str:
    """``<wukong>-<network>``; past 63 characters, cut and ended with a hash of both names, so the name stays a
    DNS-1123 label and two long names that share a beginning still get different NADs."""
    name = f"{wukong_name}-{network}"
    if len(name) <= LABEL_VALUE_MAX:
        return name
    digest = hashlib.sha256(f"{wukong_name}/{network}".encode()).hexdigest()[:_HASH_LENGTH]
    return f"{name[: LABEL_VALUE_MAX - _HASH_LENGTH - 1].rstrip('-')}-{digest}"


def cni_config(network: Network, name: str) -> Obj:
    """The CNI configuration a NetworkAttachmentDefinition made for ``network`` holds; ``name`` is the CNI
    network name (the NAD's own, as Multus expects). Raises ValueError for a network ``problems`` refuses:
    building it anyway would drop what the user asked for (a macvlan VLAN would land the VM on the untagged
    network)."""
    if found := problems(network):
        raise ValueError(f"network {network.name!r} cannot be built: " + "; ".join(f"{f}: {m}" for f, m in found))
    plugin: Obj
    if network.type == BRIDGE:
        plugin = {"type": BRIDGE, "bridge": network.bridge_name or network.name}
    elif network.type == MACVLAN:
        plugin = {"type": MACVLAN, "mode": "bridge"}
        if master := host_interface(network):
            plugin["master"] = master
    elif network.type == SRIOV:
        plugin = {"type": SRIOV}
    elif network.type == OVS:
        plugin = {"type": OVS, "bridge": network.bridge_name}
    else:
        raise ValueError(f"network {network.name!r}: unknown type {network.type!r}")
    if network.vlan_id is not None:
        plugin["vlan"] = network.vlan_id
    return {"cniVersion": CNI_VERSION, "name": name, **plugin, "ipam": _ipam(network.ip_config)}


def _ipam(ip: IPConfig | None) -> Obj:
    """Without ipConfig, no IPAM: the interface comes up without an address and the guest gets one by itself."""
    if ip is None:
        return {}
    if ip.mode == DHCP:
        return {"type": DHCP}  # needs the CNI dhcp daemon running on the nodes
    address: Obj = {"address": ip.address}
    if ip.gateway:
        address["gateway"] = ip.gateway
    ipam: Obj = {"type": STATIC, "addresses": [address]}
    if ip.dns_servers:
        ipam["dns"] = {"nameservers": list(ip.dns_servers)}
    return ipam


def network_attachment_definition(wukong: Mapping[str, Any], network: Network) -> Obj:
    """The NAD the reconciler makes for a network without ``nadName``, in the Wukong's namespace and owned by it."""
    name = nad_name(wukong["metadata"]["name"], network.name)
    metadata = child_metadata(wukong, name)
    if network.type == SRIOV:
        metadata["annotations"] = {RESOURCE_NAME_ANNOTATION: host_interface(network)}
    return {
        "apiVersion": NAD_API_VERSION,
        "kind": NAD_KIND,
        "metadata": metadata,
        "spec": {"config": json.dumps(cni_config(network, name), sort_keys=True)},
    }


def nad_names(wukong_name: str, networks: Sequence[Network]) -> list[str]:
    """The NetworkAttachmentDefinition each network uses, in spec order: the one it names, else the one made for it."""
    return [n.nad_name or nad_name(wukong_name, n.name) for n in networks]


def vm_interfaces(namespace: str, wukong_name: str, networks: Sequence[Network]) -> tuple[list[Obj], list[Obj]]:
    """The VM template's ``domain.devices.interfaces`` and ``networks``: the pod network first, then one
    Multus network per entry, in spec order.

    With Multus networks the guest boots with cloud-init network-config, which finds each NIC by the MAC
    ``cloudinit.mac_address`` derives from the names, the pod network's included (once network-config is
    given, cloud-init no longer brings up the first NIC by itself); so every interface is given that MAC.
    Without networks there is no network-config and the pod interface keeps the MAC KubeVirt picks, as before."""
    pod: Obj = {"name": POD_NETWORK, "masquerade": {}}
    if networks:
        pod["macAddress"] = mac_address(namespace, wukong_name, POD_NETWORK)
    interfaces: list[Obj] = [pod]
    vm_networks: list[Obj] = [{"name": POD_NETWORK, "pod": {}}]
    for network in networks:
        binding = SRIOV if network.type == SRIOV else BRIDGE
        mac = mac_address(namespace, wukong_name, network.name)
        interfaces.append({"name": network.name, binding: {}, "macAddress": mac})
    for network, nad in zip(networks, nad_names(wukong_name, networks), strict=True):
        vm_networks.append({"name": network.name, "multus": {"networkName": nad}})
    return interfaces, vm_networks
