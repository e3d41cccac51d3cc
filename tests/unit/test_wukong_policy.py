"""WukongPolicy: reading policies, selecting namespaces, and judging one Wukong (create and update) against them."""

from __future__ import annotations

import copy
import dataclasses
import re
from typing import Any

import pytest

from tests.builders import disk, wukong
from wukong.labels import LabelSelector
from wukong.policy import (
    ALLOWED_ATTACHMENT_DEFINITIONS,
    ALLOWED_NODE_SELECTOR_KEYS,
    ALLOWED_TOLERATION_KEYS,
    HOST_NETWORKS,
    Policy,
    Violation,
    applying,
    default_class,
    evaluate,
)

NS = "team-a"
SHA256 = "0123456789abcdef" * 4
FEDORA = "docker://quay.io/containerdisks/fedora:40"


def policy(name: str = "team-limits", action: str = "deny", selector: Any = None, **sections: Any) -> Policy:
    spec = {"namespaceSelector": {} if selector is None else selector, "enforcementAction": action, **sections}
    return Policy.from_object({"metadata": {"name": name}, "spec": spec})


def judged(policies: Policy | list[Policy], new: dict, old: dict | None = None) -> list[Violation]:
    return evaluate(policies if isinstance(policies, list) else [policies], NS, new, old)


def said(policies: Policy | list[Policy], new: dict, old: dict | None = None) -> list[str]:
    """Each violation as the user reads it in kubectl, less the "Forbidden:" in the middle."""
    return [f"{v.path}: {v.detail}" for v in judged(policies, new, old)]


def grown(obj: dict, **spec: Any) -> dict:
    changed = copy.deepcopy(obj)
    changed["spec"].update(copy.deepcopy(spec))
    return changed


def imaged(image: Any) -> dict:
    return wukong(disk("system", "20Gi", boot=True, image=image))


# -- sizes, exactly ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("limit", "size", "refused"),
    [
        ("1Ti", "1Ti", False),
        ("1Ti", "1024Gi", False),
        ("1Ti", "1025Gi", True),
        ("1Ti", "1T", False),  # 10^12 < 2^40
        ("1Ti", "1100G", True),  # 1.1 * 10^12 > 2^40
        ("1.5Ti", "1536Gi", False),
        ("1.5Ti", "1537Gi", True),
        ("1536Gi", "1.5Ti", False),
        ("1099511627776", "1Ti", False),
    ],
)
def test_a_disk_size_is_compared_with_the_limit_exactly(limit, size, refused):
    found = judged(policy(storage={"maxDiskSize": limit}), wukong(disk("data", size)))
    assert [(v.rule, v.path) for v in found] == ([("storage.maxDiskSize", "spec.disks[0].size")] if refused else [])


def test_an_oversize_disk_is_refused_naming_the_policy_the_limit_and_the_namespace():
    assert said(policy(storage={"maxDiskSize": "1Ti"}), wukong(disk("system", "20Gi"), disk("data", "2Ti"))) == [
        'spec.disks[1].size: 2Ti exceeds 1Ti, the largest disk policy "team-limits" allows in namespace "team-a"'
    ]


def test_the_path_points_at_the_entry_the_user_wrote_even_after_entries_that_are_not_objects():
    obj = wukong(disk("data", "2Ti"))
    obj["spec"]["disks"].insert(0, "junk")
    assert [v.path for v in judged(policy(storage={"maxDiskSize": "1Ti"}), obj)] == ["spec.disks[1].size"]


@pytest.mark.parametrize(
    ("sizes", "refused"),
    [(["2Ti", "2Ti"], False), (["1Ti", "1024Gi", "2048Gi"], False), (["2Ti", "2Ti", "1Gi"], True)],
    ids=["at-the-limit", "at-the-limit-in-other-units", "one-gibibyte-over"],
)
def test_the_total_of_the_disks_is_summed_exactly(sizes, refused):
    obj = wukong(*(disk(f"d{i}", size) for i, size in enumerate(sizes)))
    found = judged(policy(storage={"maxTotalSize": "4Ti"}), obj)
    assert [(v.rule, v.path) for v in found] == ([("storage.maxTotalSize", "spec.disks")] if refused else [])


def test_a_total_over_the_limit_is_refused_with_the_sum_and_the_limit():
    obj = wukong(disk("system", "1Ti"), disk("data", "4Ti"))
    assert said(policy(storage={"maxTotalSize": "4Ti"}), obj) == [
        'spec.disks: disks total 5Ti, more than the 4Ti policy "team-limits" allows one Wukong in namespace "team-a"'
    ]


def test_too_many_disks_are_refused_and_as_many_as_the_limit_are_allowed():
    five = wukong(*(disk(f"d{i}") for i in range(5)))
    four = wukong(*(disk(f"d{i}") for i in range(4)))
    limits = policy(storage={"maxDisks": 4})
    assert said(limits, five) == [
        'spec.disks: 5 disks, more than the 4 policy "team-limits" allows in namespace "team-a"'
    ]
    assert said(limits, four) == []


# -- compute -----------------------------------------------------------------------------------------------------
def test_too_many_cpus_are_refused_and_the_limit_itself_is_allowed():
    limits = policy(compute={"maxCpu": 8})
    assert said(limits, wukong(disk("system"), cpu=16)) == [
        'spec.cpu: 16 CPUs exceed 8, the most policy "team-limits" allows in namespace "team-a"'
    ]
    assert said(limits, wukong(disk("system"), cpu=8)) == []


@pytest.mark.parametrize(
    ("memory", "refused"), [("32Gi", False), ("32768Mi", False), ("34359738368", False), ("32.5Gi", True)]
)
def test_memory_is_compared_with_the_limit_exactly(memory, refused):
    found = said(policy(compute={"maxMemory": "32Gi"}), wukong(disk("system"), memory=memory))
    expected = f'spec.memory: {memory} exceeds 32Gi, the most memory policy "team-limits" allows in namespace "team-a"'
    assert found == ([expected] if refused else [])


# -- storage classes ---------------------------------------------------------------------------------------------
def test_a_storage_class_not_listed_is_refused_with_the_classes_that_are():
    limits = policy(storage={"allowedClasses": ["longhorn", "standard"]})
    assert said(limits, wukong(disk("data", storageClassName="fast"))) == [
        'spec.disks[0].storageClassName: StorageClass "fast" is not one policy "team-limits" allows in namespace '
        '"team-a" (allowed: "longhorn", "standard")'
    ]
    assert said(limits, wukong(disk("data", storageClassName="standard"))) == []


def test_a_disk_without_a_storage_class_is_left_to_defaulting():
    assert said(policy(storage={"allowedClasses": ["longhorn"]}), wukong(disk("data"))) == []


def test_an_empty_list_of_classes_allows_none():
    assert said(policy(storage={"allowedClasses": []}), wukong(disk("data", storageClassName="longhorn"))) == [
        'spec.disks[0].storageClassName: StorageClass "longhorn" is not one policy "team-limits" allows in '
        'namespace "team-a" (allowed: none)'
    ]


# -- image sources -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("source", "image", "allowed"),
    [
        ("docker.io", "docker://docker.io/library/fedora:40", True),
        ("docker.io", "docker.io.evil.com/x", False),
        ("docker.io", "fedora:40", True),
        ("docker.io", "fedora", True),
        ("docker.io", "someone/fedora", True),
        ("docker.io", "quay.io/containerdisks/fedora", False),
        ("fedora", "fedora:40", True),
        ("fedora", f"docker.io/library/fedora@sha256:{SHA256}", True),
        ("fedora", "fedora-evil:40", False),
        ("fedora", "fedora/anything", False),
        ("docker.io/fedora", "fedora:40", True),
        ("docker.io/bitnami", "bitnami/redis", True),
        ("index.docker.io", "fedora", True),
        ("quay.io/containerdisks", "quay.io/containerdisks/fedora:40", True),
        ("quay.io/containerdisks", "quay.io/containerdisks-evil/x", False),
        ("quay.io/containerdisks", "quay.io/other/containerdisks", False),
        ("quay.io/containerdisks/", "quay.io/containerdisks/fedora", True),
        ("docker://quay.io/containerdisks", "quay.io/containerdisks/fedora", True),
        ("quay.io/containerdisks", "QUAY.IO/containerdisks/fedora", True),
        ("Quay.IO/containerdisks", "docker://quay.io/containerdisks/fedora", True),
        ("quay.io/containerdisks/fedora:40", "quay.io/containerdisks/fedora:40", True),
        ("quay.io/containerdisks/fedora:40", f"quay.io/containerdisks/fedora@sha256:{SHA256}", False),
        ("quay.io/containerdisks/fedora:40", "quay.io/containerdisks/fedora:400", False),
        ("registry:5000", "registry:5000/x", True),
        ("registry:5000", "registry:5001/x", False),
        ("registry:5000", "registry:50001/x", False),
        ("registry", "registry:5000/x", False),  # a bare name with no dot is a Docker Hub image, not a host
        ("localhost", "localhost/vm/disk", True),
        ("localhost:5000/vm", "localhost:5000/vm/disk:1", True),
        ("quay.io", "https://quay.io/containerdisks/fedora.qcow2", False),
        ("/", "quay.io/x", False),  # names nothing, so allows nothing
    ],
)
def test_a_registry_prefix_allows_whole_names_under_it_only(source, image, allowed):
    found = judged(policy(images={"allowedSources": [source]}), imaged(image))
    assert [v.rule for v in found] == ([] if allowed else ["images.allowedSources"])


@pytest.mark.parametrize(
    ("source", "image", "allowed"),
    [
        ("https://images.example.com/vm/", "https://images.example.com/vm/fedora.qcow2", True),
        ("https://images.example.com/vm/", "https://IMAGES.example.com/vm/fedora.qcow2", True),
        ("https://images.example.com/vm/", "https://images.example.com/vm/fedora.qcow2?token=1#x", True),
        ("https://images.example.com/vm/", "https://images.example.com.evil.com/vm/fedora.qcow2", False),
        ("https://images.example.com/vm/", "https://images.example.com@evil.com/vm/fedora.qcow2", False),
        ("https://images.example.com/vm/", "https://user@images.example.com/vm/fedora.qcow2", False),
        ("https://images.example.com/vm/", "http://images.example.com/vm/fedora.qcow2", False),
        ("https://images.example.com/vm/", "https://images.example.com:8443/vm/fedora.qcow2", False),
        ("https://images.example.com:443/vm/", "https://images.example.com/vm/fedora.qcow2", True),
        ("https://images.example.com/vm/", "https://images.example.com/other.qcow2?/vm/", False),
        ("https://images.example.com/vm/", "https://images.example.com/vm/../secret.qcow2", False),
        ("https://images.example.com/vm/", "https://images.example.com/vm/%2e%2e/secret.qcow2", False),
        ("https://images.example.com/vm", "https://images.example.com/vm", True),
        ("https://images.example.com/vm", "https://images.example.com/vm/fedora.qcow2", True),
        ("https://images.example.com/vm", "https://images.example.com/vmevil/fedora.qcow2", False),
        ("https://images.example.com", "https://images.example.com/anything/fedora.qcow2", True),
        ("https://images.example.com/", "https://images.example.com/anything/fedora.qcow2", True),
        ("https://images.example.com/", "docker://images.example.com/fedora", False),
    ],
)
def test_a_url_prefix_allows_the_same_scheme_host_and_port_under_its_path_only(source, image, allowed):
    found = judged(policy(images={"allowedSources": [source]}), imaged(image))
    assert [v.rule for v in found] == ([] if allowed else ["images.allowedSources"])


def test_an_image_from_elsewhere_is_refused_with_the_sources_that_are_allowed():
    limits = policy("p", images={"allowedSources": ["docker.io", "https://images.example.com/vm/"]})
    assert said(limits, imaged("docker://docker.io.evil.com/x")) == [
        'spec.disks[0].image: image "docker://docker.io.evil.com/x" is not from a source policy "p" allows in '
        'namespace "team-a" (allowed: "docker.io", "https://images.example.com/vm/")'
    ]


def test_os_image_is_judged_where_the_user_wrote_it():
    obj = wukong(disk("system", boot=True), osImage="docker.io.evil.com/x")
    assert [(v.path, v.rule) for v in judged(policy(images={"allowedSources": ["docker.io"]}), obj)] == [
        ("spec.osImage", "images.allowedSources")
    ]


def test_an_image_that_does_not_parse_is_left_to_validation():
    assert judged(policy(images={"allowedSources": ["docker.io"], "requireDigest": True}), imaged("ftp://x/y")) == []


# -- digests -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("image", "pinned"),
    [
        (FEDORA, False),
        (f"quay.io/containerdisks/fedora@sha256:{SHA256}", True),
        (f"quay.io/containerdisks/fedora@sha512:{SHA256 * 2}", True),
        (f"quay.io/containerdisks/fedora@sha384:{SHA256}{SHA256[:32]}", False),  # neither sha256 nor sha512
    ],
)
def test_required_digests_pin_registry_images(image, pinned):
    found = judged(policy(images={"requireDigest": True}), imaged(image))
    assert [v.rule for v in found] == ([] if pinned else ["images.requireDigest"])


def test_an_unpinned_image_is_refused_with_how_to_pin_it():
    assert said(policy("p", images={"requireDigest": True}), imaged(FEDORA)) == [
        f'spec.disks[0].image: image "{FEDORA}" is not pinned by digest, which policy "p" requires in namespace '
        '"team-a"; use @sha256:<digest>'
    ]


def test_an_http_image_cannot_be_pinned_and_is_refused_when_digests_are_required():
    (found,) = said(policy("p", images={"requireDigest": True}), imaged("https://images.example.com/vm/x.qcow2"))
    assert "cannot be pinned by digest" in found
    assert found.endswith("use a registry image with @sha256:<digest>")


def test_tags_are_fine_when_digests_are_not_required():
    assert judged(policy(images={"requireDigest": False, "allowedSources": ["quay.io"]}), imaged(FEDORA)) == []


# -- networks ----------------------------------------------------------------------------------------------------
def networked(*networks: dict) -> dict:
    return wukong(disk("system"), networks=list(networks))


def test_a_network_type_not_listed_is_refused():
    limits = policy(networks={"allowedTypes": ["bridge"]})
    assert said(limits, networked({"name": "data", "type": "macvlan", "nadName": "data-net"})) == [
        'spec.networks[0].type: network type "macvlan" is not one policy "team-limits" allows in namespace '
        '"team-a" (allowed: "bridge")'
    ]
    assert said(limits, networked({"name": "data", "type": "bridge", "nadName": "data-net"})) == []


def test_an_empty_list_of_network_types_allows_no_secondary_network():
    found = judged(policy(networks={"allowedTypes": []}), networked({"name": "data", "type": "bridge", "nadName": "x"}))
    assert [v.path for v in found] == ["spec.networks[0].type"]


def test_a_named_attachment_definition_must_be_listed_and_one_left_out_is_not_judged():
    limits = policy(networks={"allowedAttachmentDefinitions": ["data-net"]})
    assert said(limits, networked({"name": "data", "type": "bridge", "nadName": "other"})) == [
        'spec.networks[0].nadName: NetworkAttachmentDefinition "other" is not one policy "team-limits" allows in '
        'namespace "team-a" (allowed: "data-net"); name one of those, or leave nadName out to have one made for '
        "this network"
    ]
    assert said(limits, networked({"name": "data", "type": "bridge", "nadName": "data-net"})) == []
    assert said(limits, networked({"name": "data", "type": "bridge", "nadName": f"{NS}/data-net"})) == []
    made_here = judged(limits, networked({"name": "data", "type": "bridge"}))
    assert [v.rule for v in made_here] == [HOST_NETWORKS], "a NAD made for the network is the host rule's to judge"


def test_an_unchanged_network_is_not_judged_but_a_changed_or_added_one_is():
    limits = policy(networks={"allowedTypes": ["bridge"]})
    old = networked({"name": "legacy", "type": "ovs", "bridgeName": "br-ovs"})
    assert judged(limits, copy.deepcopy(old), old) == [], "made before the rules: kept as it is"
    retyped = networked({"name": "legacy", "type": "macvlan", "nadName": "legacy-net"})
    assert [v.path for v in judged(limits, retyped, old)] == ["spec.networks[0].type"]
    added = networked(
        {"name": "legacy", "type": "ovs", "bridgeName": "br-ovs"}, {"name": "more", "type": "sriov", "nadName": "x"}
    )
    assert [v.path for v in judged(limits, added, old)] == ["spec.networks[1].type"]


# -- host networks: refused unless a policy names them ------------------------------------------------------------
LAN = {"type": "bridge", "interface": "br-lan", "vlans": ["100", "200-299"]}
HOSTS = policy(name="network-team", networks={"hostNetworks": [LAN, {"type": "macvlan", "interface": "eth1.300"}]})


@pytest.mark.parametrize(
    "network",
    [
        pytest.param({"type": "bridge", "bridgeName": "cni0"}, id="the-pod-network-bridge"),
        pytest.param({"type": "bridge"}, id="a-bridge-named-after-the-network"),
        pytest.param({"type": "macvlan", "master": "eth0"}, id="macvlan-over-the-node-interface"),
        pytest.param({"type": "ovs", "bridgeName": "br-int", "vlanId": 4000}, id="an-ovs-bridge-with-a-vlan"),
        pytest.param({"type": "sriov", "resourceName": "intel.com/sriov_netdevice"}, id="an-sriov-resource"),
    ],
)
def test_a_network_over_a_host_interface_no_policy_names_is_refused_by_default(network):
    found = evaluate([], NS, networked({"name": "lan", **network}))
    named_in = (
        next(key for key in ("bridgeName", "master", "resourceName") if key in network)
        if len(network) > 1
        else "bridgeName"
    )
    assert [(v.policy, v.action, v.rule, v.path) for v in found] == [
        ("", "deny", HOST_NETWORKS, f"spec.networks[0].{named_in}")
    ]
    assert "networks.hostNetworks: [{type: " in found[0].detail
    assert f'no WukongPolicy on namespace "{NS}" allows it' in found[0].detail


def test_macvlan_without_a_master_is_refused_even_where_a_policy_names_interfaces():
    found = judged(HOSTS, networked({"name": "lan", "type": "macvlan"}))
    assert [(v.rule, v.path) for v in found] == [(HOST_NETWORKS, "spec.networks[0].master")]
    assert "default-route interface" in found[0].detail


@pytest.mark.parametrize(
    "network",
    [
        {"type": "bridge", "bridgeName": "br-lan", "vlanId": 100},
        {"type": "bridge", "bridgeName": "br-lan", "vlanId": 250},
        {"type": "macvlan", "master": "eth1.300"},
    ],
    ids=["a-listed-vlan", "a-vlan-in-a-listed-range", "a-listed-macvlan-master"],
)
def test_a_host_network_a_policy_names_is_allowed(network):
    assert judged(HOSTS, networked({"name": "lan", **network})) == []


@pytest.mark.parametrize(
    "network, shown",
    [
        ({"type": "bridge", "bridgeName": "br-lan", "vlanId": 300}, "bridge br-lan VLAN 300"),
        ({"type": "bridge", "bridgeName": "br-lan"}, "bridge br-lan"),
        ({"type": "ovs", "bridgeName": "br-lan", "vlanId": 100}, "ovs br-lan VLAN 100"),
        ({"type": "macvlan", "master": "eth1"}, "macvlan eth1"),
    ],
    ids=["a-vlan-outside-the-ranges", "untagged-where-vlans-are-listed", "another-type", "another-master"],
)
def test_a_host_network_outside_what_a_policy_names_is_refused(network, shown):
    key = "master" if network["type"] == "macvlan" else "bridgeName"
    assert said(HOSTS, networked({"name": "lan", **network})) == [
        f'spec.networks[0].{key}: host network "{shown}" reaches the nodes\' own network; no WukongPolicy on '
        f'namespace "{NS}" allows it: a cluster admin allows it with networks.hostNetworks: '
        + (
            f'[{{type: {network["type"]}, interface: {network[key]}, vlans: ["{network["vlanId"]}"]}}]'
            if "vlanId" in network
            else f"[{{type: {network['type']}, interface: {network[key]}}}]"
        )
        + " in a WukongPolicy selecting this namespace, or name an existing NetworkAttachmentDefinition with nadName"
        + ' (allowed here: "bridge br-lan VLAN 100,200-299", "macvlan eth1.300")'
    ]


def test_every_policy_listing_host_networks_must_allow_the_one_asked_for():
    narrower = policy(name="security", networks={"hostNetworks": [{"type": "bridge", "interface": "br-lan"}]})
    found = judged(
        [HOSTS, narrower], networked({"name": "lan", "type": "bridge", "bridgeName": "br-lan", "vlanId": 100})
    )
    assert [(v.policy, v.rule) for v in found] == [("security", HOST_NETWORKS)]
    assert 'is not one policy "security" allows' in found[0].detail


def test_a_warn_policy_naming_a_host_network_admits_it_and_warns_for_others():
    warned = policy(name="trial", action="warn", networks={"hostNetworks": [{"type": "bridge", "interface": "br-a"}]})
    assert judged(warned, networked({"name": "lan", "type": "bridge", "bridgeName": "br-a"})) == []
    found = judged([warned, HOSTS], networked({"name": "lan", "type": "macvlan", "master": "eth1.300"}))
    assert [(v.policy, v.action) for v in found] == [("trial", "warn")]
    refused = judged(warned, networked({"name": "lan", "type": "bridge", "bridgeName": "cni0"}))
    assert [(v.policy, v.action) for v in refused] == [("", "deny")], "named by no policy: refused, not warned"


@pytest.mark.parametrize("vlans", [["0"], ["4095"], ["300-200"], ["1e3"], [7]], ids=str)
def test_a_malformed_vlan_entry_allows_nothing(vlans):
    odd = policy(networks={"hostNetworks": [{"type": "bridge", "interface": "br-lan", "vlans": vlans}]})
    found = judged(odd, networked({"name": "lan", "type": "bridge", "bridgeName": "br-lan", "vlanId": 300}))
    assert [v.rule for v in found] == [HOST_NETWORKS]


# -- another namespace's NetworkAttachmentDefinition ----------------------------------------------------------------
def test_a_nad_in_the_wukongs_own_namespace_needs_no_policy():
    assert evaluate([], NS, networked({"name": "lan", "type": "bridge", "nadName": "lan-net"})) == []
    assert evaluate([], NS, networked({"name": "lan", "type": "bridge", "nadName": f"{NS}/lan-net"})) == []


def test_another_namespaces_nad_is_refused_unless_a_policy_lists_it():
    other = networked({"name": "lan", "type": "bridge", "nadName": "net-system/prod-vlan"})
    found = evaluate([], NS, other)
    assert [(v.policy, v.rule, v.path) for v in found] == [
        ("", ALLOWED_ATTACHMENT_DEFINITIONS, "spec.networks[0].nadName")
    ]
    assert 'is in namespace "net-system"' in found[0].detail
    assert "networks.allowedAttachmentDefinitions: [net-system/prod-vlan]" in found[0].detail
    assert judged(policy(networks={"allowedAttachmentDefinitions": ["net-system/prod-vlan"]}), other) == []
    assert [v.rule for v in judged(policy(networks={"allowedAttachmentDefinitions": ["prod-vlan"]}), other)] == [
        ALLOWED_ATTACHMENT_DEFINITIONS
    ], "a name without a namespace means the Wukong's own namespace"


# -- placement ------------------------------------------------------------------------------------------------------
def placed(**high_availability: Any) -> dict:
    return wukong(disk("system"), highAvailability=high_availability)


def test_a_toleration_of_every_taint_is_refused_whatever_the_policies_say():
    anything = policy(placement={"allowedTolerationKeys": ["node-role.kubernetes.io/control-plane", "dedicated"]})
    for policies in ([], [anything]):
        found = evaluate(policies, NS, placed(tolerations=[{"operator": "Exists"}]))
        assert [(v.policy, v.rule, v.path) for v in found] == [
            ("", ALLOWED_TOLERATION_KEYS, "spec.highAvailability.tolerations[0].key")
        ]
        assert "tolerates every taint" in found[0].detail


@pytest.mark.parametrize("key", ["node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master"])
def test_control_plane_placement_is_refused_unless_a_policy_names_the_key(key):
    aimed = placed(tolerations=[{"key": key, "operator": "Exists"}], nodeSelector={key: ""})
    assert [(v.rule, v.path) for v in evaluate([], NS, aimed)] == [
        (ALLOWED_TOLERATION_KEYS, "spec.highAvailability.tolerations[0].key"),
        (ALLOWED_NODE_SELECTOR_KEYS, f"spec.highAvailability.nodeSelector[{key}]"),
    ]
    opened = policy(placement={"allowedTolerationKeys": [key], "allowedNodeSelectorKeys": [key]})
    assert judged(opened, aimed) == []


def test_placement_keys_are_free_until_a_policy_lists_them():
    usual = placed(tolerations=[{"key": "dedicated", "operator": "Equal", "value": "vms"}], nodeSelector={"pool": "vm"})
    assert evaluate([], NS, usual) == []
    listed = policy(placement={"allowedTolerationKeys": ["gpu"], "allowedNodeSelectorKeys": ["zone"]})
    assert said(listed, usual) == [
        'spec.highAvailability.tolerations[0].key: taint key "dedicated" is not one policy "team-limits" allows in '
        'namespace "team-a" (allowed: "gpu")',
        'spec.highAvailability.nodeSelector[pool]: node label key "pool" is not one policy "team-limits" allows in '
        'namespace "team-a" (allowed: "zone")',
    ]


def test_unchanged_placement_is_not_judged_again():
    old = placed(tolerations=[{"operator": "Exists"}], nodeSelector={"node-role.kubernetes.io/master": ""})
    assert evaluate([], NS, copy.deepcopy(old), old) == []


# -- disk removal ------------------------------------------------------------------------------------------------
def test_removing_a_disk_is_refused_when_a_policy_forbids_it():
    old = wukong(disk("system"), disk("data"), disk("logs"))
    new = wukong(disk("system"))
    assert said(policy(storage={"allowDiskRemoval": False}), new, old) == [
        f'spec.disks: disk "{name}" cannot be removed: policy "team-limits" forbids removing disks in namespace '
        '"team-a" (storage.allowDiskRemoval: false); keep it in spec.disks'
        for name in ("data", "logs")
    ]


def test_removing_a_disk_is_allowed_by_default():
    assert judged(policy(storage={}), wukong(disk("system")), wukong(disk("system"), disk("data"))) == []


# -- updates judge only what changed -----------------------------------------------------------------------------
LIMITS = policy(
    storage={"maxDiskSize": "1Ti", "maxTotalSize": "4Ti", "maxDisks": 4, "allowedClasses": ["longhorn"]},
    compute={"maxCpu": 8, "maxMemory": "32Gi"},
    images={"allowedSources": ["quay.io/containerdisks"]},
)
# Created before the policy: every value breaks it.
GRANDFATHERED = wukong(
    disk("system", "2Ti", storageClassName="fast", image="docker.io/library/fedora"),
    *(disk(f"d{i}", "1Ti", storageClassName="fast") for i in range(4)),
    cpu=16,
    memory="64Gi",
    osImage="docker.io/library/fedora",
)


def test_a_wukong_that_broke_a_new_policy_may_stay_as_it_is():
    assert judged(LIMITS, copy.deepcopy(GRANDFATHERED), GRANDFATHERED) == []


def test_a_wukong_that_broke_a_new_policy_may_shrink():
    smaller = copy.deepcopy(GRANDFATHERED)
    smaller["spec"]["disks"][0]["size"] = "1.5Ti"
    smaller["spec"]["disks"].pop()
    smaller["spec"].update(cpu=12, memory="48Gi")
    assert judged(LIMITS, smaller, GRANDFATHERED) == []


def test_growth_past_a_limit_is_refused_like_creation():
    bigger = grown(GRANDFATHERED, cpu=17, memory="65Gi")
    bigger["spec"]["disks"][1]["size"] = "1025Gi"
    assert [(v.path, v.rule) for v in judged(LIMITS, bigger, GRANDFATHERED)] == [
        ("spec.cpu", "compute.maxCpu"),
        ("spec.memory", "compute.maxMemory"),
        ("spec.disks", "storage.maxTotalSize"),
        ("spec.disks[1].size", "storage.maxDiskSize"),
    ]


def test_a_disk_added_to_a_grandfathered_wukong_is_judged_on_its_own_and_for_the_count_and_total():
    added = copy.deepcopy(GRANDFATHERED)
    added["spec"]["disks"].append(disk("more", "2Ti", storageClassName="fast", image=FEDORA))
    assert [(v.path, v.rule) for v in judged(LIMITS, added, GRANDFATHERED)] == [
        ("spec.disks", "storage.maxDisks"),
        ("spec.disks", "storage.maxTotalSize"),
        ("spec.disks[5].size", "storage.maxDiskSize"),
        ("spec.disks[5].storageClassName", "storage.allowedClasses"),
    ]


def test_a_changed_class_or_image_is_judged_and_an_unchanged_one_is_not():
    changed = copy.deepcopy(GRANDFATHERED)
    changed["spec"]["disks"][1]["storageClassName"] = "faster"
    changed["spec"]["osImage"] = "docker.io/library/debian"
    assert [(v.path, v.rule) for v in judged(LIMITS, changed, GRANDFATHERED)] == [
        ("spec.disks[1].storageClassName", "storage.allowedClasses"),
        ("spec.osImage", "images.allowedSources"),
    ]


def test_a_disk_grown_from_within_the_limit_past_it_is_refused():
    old = wukong(disk("data", "1Ti"))
    assert [v.path for v in judged(LIMITS, wukong(disk("data", "1.5Ti")), old)] == ["spec.disks[0].size"]
    assert judged(LIMITS, wukong(disk("data", "1024Gi")), old) == []


# -- several policies: the strictest wins ------------------------------------------------------------------------
def test_the_smallest_limit_is_judged_and_named_with_how_many_policies_set_one():
    policies = [
        policy("a", storage={"maxDiskSize": "2Ti"}),
        policy("c", storage={"maxDiskSize": "1Ti"}),
        policy("b", storage={"maxDiskSize": "1024Gi"}),  # the same limit as "c": the first by name is named
    ]
    assert said(policies, wukong(disk("data", "1.5Ti"))) == [
        'spec.disks[0].size: 1.5Ti exceeds 1024Gi, the largest disk policy "b" allows in namespace "team-a" '
        '(the strictest of 3 policies on namespace "team-a")'
    ]
    assert said(list(reversed(policies)), wukong(disk("data", "1.5Ti"))) == said(
        policies, wukong(disk("data", "1.5Ti"))
    )


def test_a_limit_no_policy_breaks_is_no_violation_however_many_set_it():
    policies = [policy("a", compute={"maxCpu": 8}), policy("b", compute={"maxCpu": 4})]
    assert judged(policies, wukong(disk("system"), cpu=4)) == []


def test_a_warn_policy_warns_and_a_deny_violation_hides_the_warning_for_the_same_field():
    policies = [
        policy("strict", action="deny", compute={"maxCpu": 8}),
        policy("soon", action="warn", compute={"maxCpu": 4}),
    ]
    assert [(v.policy, v.action) for v in judged(policies, wukong(disk("system"), cpu=16))] == [("strict", "deny")]
    (warning,) = judged(policies, wukong(disk("system"), cpu=6))
    assert (warning.policy, warning.action, warning.rule, warning.path) == (
        "soon",
        "warn",
        "compute.maxCpu",
        "spec.cpu",
    )
    assert warning.detail == (
        '6 CPUs exceed 4, the most policy "soon" allows in namespace "team-a" '
        '(the strictest of 2 policies on namespace "team-a")'
    )


def test_a_value_must_be_in_every_allowed_list_and_the_first_refusing_policy_is_named():
    policies = [
        policy("b", storage={"allowedClasses": ["longhorn"]}),
        policy("a", storage={"allowedClasses": ["longhorn", "standard"]}),
    ]
    assert [v.policy for v in judged(policies, wukong(disk("data", storageClassName="standard")))] == ["b"]
    assert [v.policy for v in judged(policies, wukong(disk("data", storageClassName="fast")))] == ["a"]
    assert judged(policies, wukong(disk("data", storageClassName="longhorn"))) == []


def test_a_class_refused_by_deny_and_warn_lists_is_denied_only_and_one_refused_by_warn_alone_is_warned():
    policies = [
        policy("deny", storage={"allowedClasses": ["longhorn", "standard"]}),
        policy("warn", action="warn", storage={"allowedClasses": ["longhorn"]}),
    ]
    assert [v.action for v in judged(policies, wukong(disk("data", storageClassName="fast")))] == ["deny"]
    assert [v.action for v in judged(policies, wukong(disk("data", storageClassName="standard")))] == ["warn"]


def test_a_removal_forbidden_by_deny_and_warn_policies_is_denied_only():
    policies = [
        policy("x", action="warn", storage={"allowDiskRemoval": False}),
        policy("y", storage={"allowDiskRemoval": False}),
    ]
    found = judged(policies, wukong(disk("system")), wukong(disk("system"), disk("data")))
    assert [(v.policy, v.action) for v in found] == [("y", "deny")]


# -- selecting namespaces ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("selector", "labels", "selected"),
    [
        ({}, {}, True),
        ({}, {"team": "a"}, True),
        ({"matchLabels": {"team": "a"}}, {"team": "a", "env": "prod"}, True),
        ({"matchLabels": {"team": "a"}}, {"team": "b"}, False),
        ({"matchLabels": {"team": "a"}}, {}, False),
        ({"matchLabels": {"team": "a", "env": "prod"}}, {"team": "a"}, False),
        ({"matchExpressions": [{"key": "team", "operator": "In", "values": ["a", "b"]}]}, {"team": "b"}, True),
        ({"matchExpressions": [{"key": "team", "operator": "In", "values": ["a", "b"]}]}, {"team": "c"}, False),
        ({"matchExpressions": [{"key": "team", "operator": "In", "values": ["a"]}]}, {}, False),
        ({"matchExpressions": [{"key": "team", "operator": "NotIn", "values": ["a"]}]}, {}, True),
        ({"matchExpressions": [{"key": "team", "operator": "NotIn", "values": ["a"]}]}, {"team": "b"}, True),
        ({"matchExpressions": [{"key": "team", "operator": "NotIn", "values": ["a"]}]}, {"team": "a"}, False),
        ({"matchExpressions": [{"key": "team", "operator": "Exists"}]}, {"team": ""}, True),
        ({"matchExpressions": [{"key": "team", "operator": "Exists"}]}, {}, False),
        ({"matchExpressions": [{"key": "team", "operator": "DoesNotExist"}]}, {}, True),
        ({"matchExpressions": [{"key": "team", "operator": "DoesNotExist"}]}, {"team": "a"}, False),
        (
            {"matchLabels": {"env": "prod"}, "matchExpressions": [{"key": "team", "operator": "Exists"}]},
            {"env": "prod"},
            False,
        ),
    ],
)
def test_a_namespace_selector_selects_as_kubernetes_does(selector, labels, selected):
    assert policy(selector=selector).selects(labels) is selected


@pytest.mark.parametrize(
    "selector",
    [
        None,
        "team=a",
        ["team"],
        {"matchLabels": "team=a"},
        {"matchLabels": {"team": 1}},
        {"matchExpressions": {"key": "team", "operator": "Exists"}},
        {"matchExpressions": ["team"]},
        {"matchExpressions": [{"key": "team", "operator": "Equals", "values": ["a"]}]},
        {"matchExpressions": [{"key": "team", "operator": "NotIn"}]},
        {"matchExpressions": [{"key": "team", "operator": "Exists", "values": ["a"]}]},
        {"matchExpressions": [{"key": "team", "operator": "NotIn", "values": [1]}]},
        {"matchExpressions": [{"operator": "DoesNotExist"}]},
    ],
    ids=repr,
)
def test_a_malformed_selector_selects_nothing(selector):
    obj = {"metadata": {"name": "p"}, "spec": {"namespaceSelector": selector}}
    assert not Policy.from_object(obj).selects({"team": "b"})
    assert LabelSelector.from_dict(selector).malformed


def test_the_policies_applying_to_a_namespace_are_those_selecting_it_by_name():
    policies = [
        policy("z-all"),
        policy("b-team", selector={"matchLabels": {"team": "a"}}),
        policy("a-other", selector={"matchLabels": {"team": "b"}}),
        policy("a-team", selector={"matchExpressions": [{"key": "team", "operator": "In", "values": ["a"]}]}),
    ]
    assert [p.name for p in applying(policies, {"team": "a"})] == ["a-team", "b-team", "z-all"]


# -- reading policies --------------------------------------------------------------------------------------------
def test_a_policy_reads_every_rule():
    read = policy(
        "p",
        action="warn",
        storage={
            "allowedClasses": ["longhorn"],
            "defaultClass": "longhorn",
            "maxDiskSize": "1Ti",
            "maxTotalSize": "4Ti",
            "maxDisks": 4,
            "allowDiskRemoval": False,
        },
        compute={"maxCpu": 8, "maxMemory": "32Gi"},
        images={"allowedSources": ["quay.io"], "requireDigest": True},
        networks={"allowedTypes": ["bridge"], "allowedAttachmentDefinitions": []},
    )
    assert (read.name, read.action, read.allowed_classes, read.default_class) == (
        "p",
        "warn",
        ("longhorn",),
        "longhorn",
    )
    assert (str(read.max_disk_size), str(read.max_total_size), read.max_disks) == ("1Ti", "4Ti", 4)
    assert (read.allow_disk_removal, read.max_cpu, str(read.max_memory)) == (False, 8, "32Gi")
    assert (read.allowed_sources, read.require_digest) == (("quay.io",), True)
    assert (read.allowed_network_types, read.allowed_attachment_definitions) == (("bridge",), ())


def test_a_policy_that_sets_nothing_allows_anything_and_denies_by_default():
    read = Policy.from_object({"metadata": {"name": "p"}, "spec": {"namespaceSelector": {}}})
    assert read.action == "deny"
    assert (read.allow_disk_removal, read.require_digest) == (True, False)
    assert judged(read, GRANDFATHERED) == []


@pytest.mark.parametrize(
    "obj",
    [
        None,
        [],
        "policy",
        {"spec": []},
        {"metadata": "p", "spec": {"storage": "big", "compute": [], "images": 1, "networks": None}},
    ],
    ids=["null", "list", "string", "spec-a-list", "sections-of-every-type"],
)
def test_a_policy_of_the_wrong_shape_reads_as_setting_nothing(obj):
    read = Policy.from_object(obj)
    assert (read.name, read.action, read.allow_disk_removal, read.require_digest) == ("", "deny", True, False)
    limits = (read.max_disk_size, read.max_total_size, read.max_disks, read.max_cpu, read.max_memory)
    lists = (
        read.allowed_classes,
        read.allowed_sources,
        read.allowed_network_types,
        read.allowed_attachment_definitions,
    )
    assert limits == (None,) * 5
    assert lists == (None,) * 4
    assert read.default_class is None


WRONG_TYPES = {
    "metadata": {"name": 7},
    "spec": {
        "enforcementAction": "audit",
        "storage": {
            "allowedClasses": "fast",
            "defaultClass": 3,
            "maxDiskSize": 1099511627776,
            "maxTotalSize": "lots",
            "maxDisks": "4",
            "allowDiskRemoval": "no",
        },
        "compute": {"maxCpu": True, "maxMemory": "1Gb"},
        "images": {"allowedSources": {"quay.io": True}, "requireDigest": "yes"},
        "networks": {"allowedTypes": "bridge", "allowedAttachmentDefinitions": 0},
    },
}


def test_limits_of_the_wrong_type_fail_closed_and_other_fields_read_as_not_set():
    """Changed: a limit set to what cannot be read once read as no limit; it now refuses what it limits."""
    read = Policy.from_object(WRONG_TYPES)
    assert (read.name, read.action, read.require_digest) == ("", "deny", False)
    assert read.allow_disk_removal is False
    assert dict(read.unreadable) == {
        "storage.maxDiskSize": "1099511627776",
        "storage.maxTotalSize": '"lots"',
        "storage.maxDisks": '"4"',
        "compute.maxCpu": "true",
        "compute.maxMemory": '"1Gb"',
    }
    assert (read.allowed_classes, read.allowed_sources, read.allowed_network_types) == (None, None, None)


# -- the default class -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("policies", "expected"),
    [
        ([], None),
        ([policy("p", storage={"allowedClasses": ["longhorn"]})], None),
        ([policy("p", storage={"defaultClass": "longhorn"})], ("longhorn", "p")),
        (
            [policy("b", storage={"defaultClass": "standard"}), policy("a", storage={"defaultClass": "longhorn"})],
            ("longhorn", "a"),
        ),
        (
            [
                policy("a", storage={"defaultClass": "fast"}),
                policy("b", storage={"defaultClass": "longhorn", "allowedClasses": ["longhorn", "standard"]}),
            ],
            ("longhorn", "b"),  # "fast" is not one "b" allows
        ),
        (
            [
                policy("a", storage={"defaultClass": "fast", "allowedClasses": ["fast"]}),
                policy("b", storage={"allowedClasses": ["longhorn"]}),
            ],
            None,
        ),
    ],
    ids=["no-policy", "no-default", "one", "first-by-name", "first-every-list-allows", "none-every-list-allows"],
)
def test_the_default_class_is_the_first_every_policy_allows(policies, expected):
    assert default_class(policies) == expected


# -- hostile input -----------------------------------------------------------------------------------------------
EVERYTHING = policy(
    storage={
        "maxDiskSize": "1Ti",
        "maxTotalSize": "4Ti",
        "maxDisks": 4,
        "allowedClasses": ["longhorn"],
        "allowDiskRemoval": False,
    },
    compute={"maxCpu": 8, "maxMemory": "32Gi"},
    images={"allowedSources": ["quay.io/containerdisks"], "requireDigest": True},
    networks={"allowedTypes": ["bridge"], "allowedAttachmentDefinitions": ["data-net"]},
)
EVERYTHING_BUT_REMOVAL = dataclasses.replace(EVERYTHING, allow_disk_removal=True)
HOSTILE = {
    "null": None,
    "a-list": [],
    "spec-a-string": {"spec": "x"},
    "disks-a-string": {"spec": {"disks": "x", "networks": "y"}},
    "sizes-of-every-type": {
        "spec": {"disks": [{"name": "a", "size": 5}, {"name": "b", "size": ["1Ti"]}, {"name": "c", "size": None}]}
    },
    "names-of-every-type": {"spec": {"disks": [{"name": 1, "size": "1Gi"}, {"name": ["x"], "size": "1Gi"}]}},
    "cpu-a-bool": {"spec": {"cpu": True}},
    "cpu-a-float": {"spec": {"cpu": 16.5}},
    "memory-beyond-any-number": {"spec": {"memory": "1e9999999999"}},  # past int32: no quantity
    "images-as-objects": {"spec": {"osImage": {"a": 1}, "disks": [{"name": "a", "image": {"url": "x"}}]}},
    "networks-of-every-type": {"spec": {"networks": [None, 1, {"name": {}, "type": [], "nadName": 5}]}},
    "disks-of-every-type": {"spec": {"disks": [None, 1, "x", [], {"storageClassName": {"a": 1}}]}},
}


@pytest.mark.parametrize("old", [None, *HOSTILE.values()], ids=["create", *(f"from-{k}" for k in HOSTILE)])
@pytest.mark.parametrize("new", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_input_is_judged_without_raising_and_unreadable_values_are_not_judged(new, old):
    assert evaluate([EVERYTHING_BUT_REMOVAL], NS, new, old) == []


@pytest.mark.parametrize("new", HOSTILE.values(), ids=HOSTILE.keys())
def test_disks_lost_in_a_hostile_update_are_removals(new):
    found = evaluate([EVERYTHING], NS, new, wukong(disk("system", storageClassName="longhorn"), disk("data")))
    assert {(v.rule, v.path) for v in found} == {("storage.allowDiskRemoval", "spec.disks")}


def test_a_huge_cpu_count_is_refused_with_a_message_that_can_be_printed():
    (found,) = judged(EVERYTHING, wukong(disk("system", storageClassName="longhorn"), cpu=10**5000))
    assert found.path == "spec.cpu"
    assert found.detail.startswith("more than 18446744073709551616 CPUs exceed 8")


def test_ten_thousand_disks_are_judged_one_by_one_and_as_a_whole():
    many = wukong(*(disk(f"d{i}", "2Ti") for i in range(10_000)))
    found = judged(policy(storage={"maxDiskSize": "1Ti", "maxDisks": 4}), many, many)
    assert found == []  # nothing changed
    found = judged(policy(storage={"maxDiskSize": "1Ti", "maxDisks": 4}), many)
    assert len(found) == 10_001
    assert found[0].detail.startswith("10000 disks, more than the 4 policy")


def test_every_detail_stays_well_under_a_thousand_characters():
    name = "p" * 253
    sources = [f"registry.example.com/{'x' * 480}/{i}" for i in range(64)]
    limits = Policy.from_object(
        {
            "metadata": {"name": name},
            "spec": {"namespaceSelector": {}, "images": {"allowedSources": sources, "requireDigest": True}},
        }
    )
    image = f"{'h' * 1000}.example.com/" + "/".join(["a" * 60] * 4) + ":" + "t" * 128  # the longest parts
    found = evaluate([limits], "n" * 63, imaged(image))
    assert [v.rule for v in found] == ["images.allowedSources", "images.requireDigest"]
    assert all(len(v.detail) < 1000 for v in found), [len(v.detail) for v in found]
    assert re.search(r" and \d+ more\)$", found[0].detail)
