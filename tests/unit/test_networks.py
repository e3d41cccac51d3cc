"""Secondary networks: the NADs built for them, the combinations refused, and the VM's interfaces."""

from __future__ import annotations

import dataclasses
import json
import re

import jsonschema
import pytest
import yaml

from reconciler import networks
from reconciler.observation import Observed
from reconciler.vm import virtual_machine
from tests import upstream
from tests.builders import disk, wukong
from wukong import cloudinit
from wukong.spec import IPConfig, Network

NAD_SCHEMA = "k8s.cni.cncf.io_networkattachmentdefinition_v1.json"
UID = "0f0f0f0f-1111-2222-3333-444444444444"
DNS_1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
LOCALLY_ADMINISTERED_UNICAST = re.compile(r"02(:[0-9a-f]{2}){5}")

NO_IP = None
DHCP = IPConfig("dhcp")
STATIC = IPConfig("static", "192.0.2.10/24", "192.0.2.1", ("192.0.2.53", "2001:db8::53"))
STATIC_ADDRESS_ONLY = IPConfig("static", "192.0.2.10/24")
IP_CONFIGS = {"no-ip": NO_IP, "dhcp": DHCP, "static": STATIC, "static-address-only": STATIC_ADDRESS_ONLY}

GOOD_NETWORKS = {
    "bridge": Network("data", "bridge"),
    "bridge-named-vlan": Network("data", "bridge", bridge_name="br1", vlan_id=100),
    "macvlan": Network("data", "macvlan"),
    "macvlan-master": Network("data", "macvlan", master="eth0.100"),
    "sriov": Network("data", "sriov", resource_name="intel.com/sriov_netdevice"),
    "sriov-vlan": Network("data", "sriov", resource_name="intel.com/sriov_netdevice", vlan_id=200),
    "ovs": Network("data", "ovs", bridge_name="br-ovs"),
    "ovs-vlan": Network("data", "ovs", bridge_name="br-ovs", vlan_id=300),
}


def live(name: str = "vm1") -> dict:
    obj = wukong(disk("system", "20Gi", boot=True), name=name)
    obj["metadata"]["uid"] = UID
    return obj


def with_ip(network: Network, ip: IPConfig | None) -> Network:
    return dataclasses.replace(network, ip_config=ip)


def config_of(nad: dict) -> dict:
    return json.loads(nad["spec"]["config"])


# -- the NetworkAttachmentDefinition -----------------------------------------------------------------------
@pytest.mark.parametrize("ip", IP_CONFIGS.values(), ids=IP_CONFIGS.keys())
@pytest.mark.parametrize("network", GOOD_NETWORKS.values(), ids=GOOD_NETWORKS.keys())
def test_every_nad_is_valid_for_the_upstream_schema_and_holds_a_json_cni_config(network, ip):
    nad = networks.network_attachment_definition(live(), with_ip(network, ip))

    jsonschema.validate(nad, upstream.strict_schema(NAD_SCHEMA))
    config = config_of(nad)
    assert config["cniVersion"] == "0.3.1"
    assert config["name"] == nad["metadata"]["name"] == "vm1-data"
    assert config["type"] == network.type
    assert "ipam" in config  # required by the plugins, empty when there is nothing to assign


def test_the_nad_lives_beside_its_wukong_carries_its_labels_and_is_owned_by_it():
    nad = networks.network_attachment_definition(live(), GOOD_NETWORKS["bridge"])

    assert nad["apiVersion"] == "k8s.cni.cncf.io/v1"
    assert nad["kind"] == "NetworkAttachmentDefinition"
    assert nad["metadata"]["namespace"] == "default"
    assert nad["metadata"]["labels"] == {
        "vm.novasphere.dev/wukong": "vm1",
        "app.kubernetes.io/managed-by": "wukong-reconciler",
    }
    [owner] = nad["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == ("Wukong", "vm1", UID, True)
    assert "annotations" not in nad["metadata"]


def test_an_sriov_nad_names_its_resource_so_the_pod_is_scheduled_where_a_vf_is_free():
    nad = networks.network_attachment_definition(live(), GOOD_NETWORKS["sriov"])

    assert nad["metadata"]["annotations"] == {"k8s.v1.cni.cncf.io/resourceName": "intel.com/sriov_netdevice"}


def test_the_config_is_written_with_sorted_keys_so_rebuilding_it_changes_nothing():
    first = networks.network_attachment_definition(live(), with_ip(GOOD_NETWORKS["ovs-vlan"], STATIC))
    second = networks.network_attachment_definition(live(), with_ip(GOOD_NETWORKS["ovs-vlan"], STATIC))

    assert first["spec"]["config"] == second["spec"]["config"]
    assert first["spec"]["config"] == json.dumps(config_of(first), sort_keys=True)


@pytest.mark.parametrize(
    ("network", "plugin"),
    [
        (Network("data", "bridge"), {"type": "bridge", "bridge": "data"}),
        (Network("data", "bridge", bridge_name="br1", vlan_id=100), {"type": "bridge", "bridge": "br1", "vlan": 100}),
        (Network("data", "macvlan"), {"type": "macvlan", "mode": "bridge"}),
        (Network("data", "macvlan", master="bond0"), {"type": "macvlan", "mode": "bridge", "master": "bond0"}),
        (Network("data", "sriov", resource_name="intel.com/sriov_netdevice"), {"type": "sriov"}),
        (
            Network("data", "sriov", resource_name="intel.com/sriov_netdevice", vlan_id=200),
            {"type": "sriov", "vlan": 200},
        ),
        (Network("data", "ovs", bridge_name="br-ovs"), {"type": "ovs", "bridge": "br-ovs"}),
        (Network("data", "ovs", bridge_name="br-ovs", vlan_id=300), {"type": "ovs", "bridge": "br-ovs", "vlan": 300}),
    ],
    ids=[
        "bridge-named-after-the-network",
        "bridge-with-vlan",
        "macvlan-on-the-default-route-interface",
        "macvlan-on-a-master",
        "sriov",
        "sriov-with-vlan",
        "ovs",
        "ovs-with-vlan",
    ],
)
def test_each_type_gets_the_plugin_settings_it_needs(network, plugin):
    assert networks.cni_config(network, "vm1-data") == {"cniVersion": "0.3.1", "name": "vm1-data", **plugin, "ipam": {}}


@pytest.mark.parametrize(
    ("ip", "ipam"),
    [
        (NO_IP, {}),
        (DHCP, {"type": "dhcp"}),
        (
            STATIC,
            {
                "type": "static",
                "addresses": [{"address": "192.0.2.10/24", "gateway": "192.0.2.1"}],
                "dns": {"nameservers": ["192.0.2.53", "2001:db8::53"]},
            },
        ),
        (STATIC_ADDRESS_ONLY, {"type": "static", "addresses": [{"address": "192.0.2.10/24"}]}),
    ],
    ids=["none-the-guest-configures-itself", "dhcp", "static", "static-without-gateway-or-dns"],
)
def test_ip_config_becomes_the_ipam_section(ip, ipam):
    assert networks.cni_config(with_ip(Network("data", "bridge"), ip), "vm1-data")["ipam"] == ipam


def test_a_network_with_problems_gets_no_config_rather_than_one_missing_what_was_asked():
    with pytest.raises(ValueError, match="vlanId"):
        networks.cni_config(Network("data", "macvlan", vlan_id=100), "vm1-data")


# -- names -------------------------------------------------------------------------------------------------
def test_the_nad_is_named_after_the_wukong_and_the_network():
    assert networks.nad_name("vm1", "data") == "vm1-data"


LONGEST_WUKONG = "w" * 60  # the longest name admission lets through (the VM's name, <name>-vm, is a label value)


@pytest.mark.parametrize(
    ("wukong_name", "network"),
    [
        (LONGEST_WUKONG, "data"),
        (LONGEST_WUKONG, "n" * 63),
        ("a" * 58, "bbbb"),  # 63 characters: fits exactly
        ("a" * 53, "network-10"),  # the cut falls just after the hyphen between the names
    ],
    ids=["longest-wukong", "both-long", "just-fits", "cut-at-a-hyphen"],
)
def test_nad_names_are_dns_1123_labels_of_at_most_63_characters(wukong_name, network):
    name = networks.nad_name(wukong_name, network)

    assert len(name) <= 63
    assert DNS_1123_LABEL.fullmatch(name), name


def test_a_name_of_63_characters_is_kept_as_it_is():
    assert networks.nad_name("a" * 58, "bbbb") == "a" * 58 + "-bbbb"


def test_long_names_that_share_a_beginning_still_get_different_nads():
    assert networks.nad_name(LONGEST_WUKONG, "storage-a") != networks.nad_name(LONGEST_WUKONG, "storage-b")


def test_a_cut_name_is_the_same_on_every_pass():
    assert networks.nad_name(LONGEST_WUKONG, "storage") == networks.nad_name(LONGEST_WUKONG, "storage")


def test_a_nad_for_a_long_wukong_name_has_a_valid_name():
    nad = networks.network_attachment_definition(live(LONGEST_WUKONG), Network("data", "bridge", bridge_name="br1"))

    assert DNS_1123_LABEL.fullmatch(nad["metadata"]["name"])
    assert len(nad["metadata"]["name"]) <= 63
    assert config_of(nad)["name"] == nad["metadata"]["name"]


# -- problems ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "network",
    [
        *GOOD_NETWORKS.values(),
        *(with_ip(Network("data", "bridge"), ip) for ip in IP_CONFIGS.values()),
        Network("data", "bridge", ip_config=IPConfig("static", "2001:db8::10/64", "2001:db8::1", ("2001:db8::53",))),
        Network("data", "bridge", ip_config=IPConfig("static", "192.0.2.0/31")),  # point-to-point: both usable
        Network("data", "bridge", nad_name="corporate-lan"),
        Network("data", "sriov", nad_name="other-namespace/sriov-lan"),
        Network("data", "bridge", ip_config=IPConfig("static", "192.0.2.10/24", "192.0.2.1", routes=("10.0.0.0/8",))),
        Network("data", "bridge", nad_name="corporate-lan", ip_config=IPConfig("none")),
    ],
    ids=[
        *GOOD_NETWORKS.keys(),
        *(f"bridge-{key}" for key in IP_CONFIGS),
        "static-ipv6",
        "static-slash-31",
        "nad-name-alone",
        "nad-name-in-another-namespace",
        "static-with-routes",
        "nad-name-mode-none",
    ],
)
def test_networks_that_can_work_have_no_problems(network):
    assert networks.problems(network) == []


@pytest.mark.parametrize(
    ("network", "fields"),
    [
        (Network("data", "bridge", ip_config=IPConfig("static")), ["ipConfig.address"]),
        (Network("data", "bridge", ip_config=IPConfig("static", "192.0.2.10")), ["ipConfig.address"]),
        (Network("data", "bridge", ip_config=IPConfig("static", "192.0.2.300/24")), ["ipConfig.address"]),
        (Network("data", "bridge", ip_config=IPConfig("static", "not-an-address/24")), ["ipConfig.address"]),
        (Network("data", "bridge", ip_config=IPConfig("static", "192.0.2.0/24")), ["ipConfig.address"]),
        (Network("data", "bridge", ip_config=IPConfig("static", "192.0.2.255/24")), ["ipConfig.address"]),
        (Network("data", "bridge", ip_config=IPConfig("static", "192.0.2.10/24", "gw")), ["ipConfig.gateway"]),
        (
            Network("data", "bridge", ip_config=IPConfig("static", "192.0.2.10/24", "198.51.100.1")),
            ["ipConfig.gateway"],
        ),
        (Network("data", "bridge", ip_config=IPConfig("static", "192.0.2.10/24", "2001:db8::1")), ["ipConfig.gateway"]),
        (
            Network("data", "bridge", ip_config=IPConfig("static", "192.0.2.10/24", dns_servers=("1.1.1.1", "dns"))),
            ["ipConfig.dnsServers[1]"],
        ),
        (
            Network("data", "bridge", ip_config=IPConfig("dhcp", "192.0.2.10/24", "192.0.2.1", ("192.0.2.53",))),
            ["ipConfig.address", "ipConfig.gateway", "ipConfig.dnsServers"],
        ),
        (
            Network("data", "bridge", ip_config=IPConfig("none", "192.0.2.10/24", routes=("10.0.0.0/8",))),
            ["ipConfig.address", "ipConfig.routes"],
        ),
        (
            Network("data", "bridge", ip_config=IPConfig("static", "192.0.2.10/24", routes=("10.0.0.0/8",))),
            ["ipConfig.routes"],
        ),
        *(
            (Network("data", "bridge", ip_config=IPConfig("static", "192.0.2.10/24", "192.0.2.1", routes=(r,))), [f])
            for r, f in [
                ("0.0.0.0/0", "ipConfig.routes[0]"),  # the pod network's
                ("10.0.0.1/8", "ipConfig.routes[0]"),  # host bits set: not a network
                ("10.0.0.0", "ipConfig.routes[0]"),
                ("2001:db8::/32", "ipConfig.routes[0]"),  # another family than the gateway's
            ]
        ),
        (Network("data", "macvlan", vlan_id=100), ["vlanId"]),
        (Network("data", "sriov"), ["resourceName"]),
        (Network("data", "sriov", resource_name="sriov_netdevice"), ["resourceName"]),
        (Network("data", "ovs"), ["bridgeName"]),
        (Network("storage-replication", "bridge"), ["bridgeName"]),
        (Network("data", "bridge", bridge_name="a-very-long-bridge"), ["bridgeName"]),
        (Network("data", "macvlan", master="eth0:1"), ["master"]),
        (Network("data", "bridge", nad_name="lan", bridge_name="br1"), ["bridgeName"]),
        (Network("data", "bridge", nad_name="lan", vlan_id=100), ["vlanId"]),
        (Network("data", "bridge", nad_name="lan", ip_config=IPConfig("static")), ["ipConfig.address"]),
    ],
    ids=[
        "static-without-address",
        "address-without-prefix",
        "address-out-of-range",
        "address-not-an-ip",
        "address-is-the-network",
        "address-is-the-broadcast",
        "gateway-not-an-ip",
        "gateway-outside-the-network",
        "gateway-of-the-other-family",
        "dns-server-not-an-ip",
        "static-settings-with-dhcp",
        "static-settings-with-none",
        "routes-without-gateway",
        "route-to-default",
        "route-with-host-bits",
        "route-without-prefix",
        "route-of-the-other-family",
        "vlan-on-macvlan",
        "sriov-without-resource-name",
        "sriov-resource-name-without-domain",
        "ovs-without-bridge",
        "bridge-defaulting-to-a-network-name-too-long-for-linux",
        "bridge-name-too-long-for-linux",
        "master-with-a-colon",
        "nad-name-with-bridge-name",
        "nad-name-with-vlan",
        "nad-name-with-a-static-ip-config-without-address",
    ],
)
def test_combinations_that_cannot_work_are_reported_on_their_fields(network, fields):
    found = networks.problems(network)

    assert [field for field, _ in found] == fields
    assert all(message for _, message in found)


def test_settings_beside_nad_name_are_all_reported_and_say_where_they_belong():
    """ipConfig stays allowed: it configures the guest through cloud-init, whatever NAD carries the traffic."""
    network = Network("data", "bridge", bridge_name="br1", nad_name="lan", vlan_id=7, ip_config=DHCP)

    found = networks.problems(network)

    assert [field for field, _ in found] == ["bridgeName", "vlanId"]
    assert all("set them there or drop nadName" in message for _, message in found)


# -- the VM's interfaces -----------------------------------------------------------------------------------
SPEC_NETWORKS = (
    Network("data", "bridge", bridge_name="br1"),
    Network("fast", "sriov", resource_name="intel.com/sriov_netdevice"),
    Network("lan", "bridge", nad_name="corporate-lan"),
)


def test_the_pod_network_comes_first_then_the_networks_in_spec_order():
    interfaces, vm_networks = networks.vm_interfaces("default", "vm1", SPEC_NETWORKS)

    assert [i["name"] for i in interfaces] == ["default", "data", "fast", "lan"]
    assert {k: v for k, v in interfaces[0].items() if k != "macAddress"} == {"name": "default", "masquerade": {}}
    assert vm_networks == [
        {"name": "default", "pod": {}},
        {"name": "data", "multus": {"networkName": "vm1-data"}},
        {"name": "fast", "multus": {"networkName": "vm1-fast"}},
        {"name": "lan", "multus": {"networkName": "corporate-lan"}},
    ]


def test_sriov_networks_get_the_sriov_binding_and_the_others_the_bridge_binding():
    interfaces, _ = networks.vm_interfaces("default", "vm1", SPEC_NETWORKS)

    assert [next(k for k in i if k not in ("name", "macAddress")) for i in interfaces] == [
        "masquerade",
        "bridge",
        "sriov",
        "bridge",
    ]


def test_each_interface_keeps_a_locally_administered_unicast_mac_across_calls():
    first, _ = networks.vm_interfaces("default", "vm1", SPEC_NETWORKS)
    again, _ = networks.vm_interfaces("default", "vm1", SPEC_NETWORKS)

    macs = [i["macAddress"] for i in first]
    assert first == again
    assert all(LOCALLY_ADMINISTERED_UNICAST.fullmatch(mac) for mac in macs), macs
    assert len(set(macs)) == len(macs)


def test_every_nic_has_the_mac_cloud_init_network_config_finds_it_by():
    interfaces, _ = networks.vm_interfaces("default", "vm1", SPEC_NETWORKS)
    config = yaml.safe_load(cloudinit.network_config(SPEC_NETWORKS, "default", "vm1"))

    matched = {name: entry["match"]["macaddress"] for name, entry in config["ethernets"].items()}
    assert {i["name"]: i["macAddress"] for i in interfaces} == matched


def test_without_networks_the_pod_interface_is_left_as_the_vm_has_it_today():
    obj = live()
    vm = virtual_machine(Observed(obj), None)
    template = vm["spec"]["template"]["spec"]

    interfaces, vm_networks = networks.vm_interfaces("default", "vm1", ())

    assert (interfaces, vm_networks) == (template["domain"]["devices"]["interfaces"], template["networks"])


def test_the_same_network_in_another_wukong_or_namespace_gets_another_mac():
    network = (SPEC_NETWORKS[0],)
    macs = {
        networks.vm_interfaces(namespace, name, network)[0][1]["macAddress"]
        for namespace, name in [("default", "vm1"), ("default", "vm2"), ("other", "vm1")]
    }

    assert len(macs) == 3


def test_a_vm_with_the_interfaces_is_valid_for_the_real_kubevirt_schema():
    obj = live()
    vm = virtual_machine(Observed(obj), None)
    template = vm["spec"]["template"]["spec"]

    template["domain"]["devices"]["interfaces"], template["networks"] = networks.vm_interfaces(
        "default", "vm1", SPEC_NETWORKS
    )

    jsonschema.validate(vm, upstream.strict_schema(upstream.VIRTUAL_MACHINE))
