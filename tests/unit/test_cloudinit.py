import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from wukong.cloudinit import (
    POD_NETWORK,
    group_problem,
    hash_password,
    mac_address,
    network_config,
    password_matches,
    shell_problem,
    user_data,
    user_name_problem,
)
from wukong.spec import CloudInitUser, IPConfig, Network

# Anything a user can type, with pieces of YAML syntax mixed in, that could break out of a value.
TRICKY = ["\n", "#", ": ", ":", "'", '"', "{", "}", "[", "]", "- ", "|", ">", "&a", "*a", "!!python/object", "---"]
char = st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))
text = st.lists(st.one_of(char, st.sampled_from(TRICKY)), min_size=1).map("".join)

HASH = "$6$abcdefghijklmnop$GRSTFj3H0pZ9BY1uhdqITG.qORbXkTk40qgaa1roNICfs/axSgdNnbKEYghuyLnrmnFXvSE09GdxJbCDOnxdc1"


def load(document: str) -> dict:
    first, _, rest = document.partition("\n")
    assert first == "#cloud-config"
    return yaml.safe_load(rest)


# --- user-data -----------------------------------------------------------------------------------------------------


@given(name=text, groups=st.lists(text, max_size=3), shell=text, sudo=text, hostname=text)
def test_any_user_values_come_back_as_the_same_values_and_add_no_key(name, groups, shell, sudo, hostname):
    user = CloudInitUser(name=name, groups=tuple(groups), shell=shell, sudo=sudo)
    expected_user = {"name": name, "shell": shell, "sudo": [sudo]} | ({"groups": groups} if groups else {})
    assert load(user_data(user, hostname, None)) == {"hostname": hostname, "users": [expected_user]}


@given(hostname=text, password_hash=text)
def test_any_hostname_and_hash_come_back_unchanged(hostname, password_hash):
    config = load(user_data(CloudInitUser(name="fedora"), hostname, password_hash))
    assert config == {
        "hostname": hostname,
        "users": [{"name": "fedora", "lock_passwd": False, "passwd": password_hash}],
        "ssh_pwauth": False,
    }


def test_without_a_user_only_the_hostname_is_set():
    assert load(user_data(None, "web", None)) == {"hostname": "web"}


def test_a_hash_without_a_user_enables_no_password_login():
    assert load(user_data(None, "web", HASH)) == {"hostname": "web"}


def test_the_plaintext_password_never_reaches_user_data():
    user = CloudInitUser(name="fedora", password="correct horse battery staple")
    document = user_data(user, "web", hash_password(user.password or ""))
    assert "correct horse" not in document
    assert load(document)["users"][0]["passwd"].startswith("$6$")


def test_a_user_without_a_password_is_left_locked_by_cloud_init_and_gets_no_password_login():
    config = load(user_data(CloudInitUser(name="fedora", groups=("wheel",)), "web", None))
    assert config == {"hostname": "web", "users": [{"name": "fedora", "groups": ["wheel"]}]}


@pytest.mark.parametrize(("given_lock", "written"), [(None, False), (False, False), (True, True)], ids=str)
def test_with_a_password_lock_passwd_defaults_to_false_so_the_password_works(given_lock, written):
    config = load(user_data(CloudInitUser(name="fedora", lock_passwd=given_lock), "web", HASH))
    assert config["users"][0]["lock_passwd"] is written
    assert config["ssh_pwauth"] is False


@pytest.mark.parametrize("asked", [False, True], ids=["not-asked", "asked"])
def test_password_login_over_ssh_is_enabled_only_when_asked_for(asked):
    config = load(user_data(CloudInitUser(name="fedora", ssh_password_auth=asked), "web", HASH))
    assert config["ssh_pwauth"] is asked


def test_an_explicit_lock_without_a_password_is_kept():
    config = load(user_data(CloudInitUser(name="fedora", lock_passwd=True), "web", None))
    assert config["users"] == [{"name": "fedora", "lock_passwd": True}]


def test_user_data_is_the_same_text_on_every_pass():
    user = CloudInitUser(name="fedora", groups=("wheel", "adm"), shell="/bin/bash", sudo="ALL=(ALL) NOPASSWD:ALL")
    assert user_data(user, "web", HASH) == user_data(user, "web", HASH)


# --- passwords -----------------------------------------------------------------------------------------------------


def test_a_hash_is_sha512_crypt_and_matches_only_its_password():
    hashed = hash_password("s3cret")
    assert hashed.startswith("$6$")
    assert password_matches("s3cret", hashed)
    assert not password_matches("s3cret ", hashed)


def test_random_salts_differ_a_given_salt_reproduces_the_hash():
    assert hash_password("s3cret") != hash_password("s3cret")
    assert hash_password("s3cret", salt="abc") == hash_password("s3cret", salt="abc")


def test_the_hash_is_the_one_glibc_crypt_gives():
    assert hash_password("pw", salt="abcdefghijklmnop") == HASH  # HASH came from crypt(3) on glibc


def test_a_hash_with_other_rounds_is_still_recognised():
    glibc = "Zu2Vknok2/f53APfN687ADnzeNBLcsEgTwvcBHMD2./07rZQAt8vsuKVufD15dyZh.LOLB/uZKf6I3GyON4bp/"
    assert password_matches("Hello world!", "$6$rounds=1000$saltstring$" + glibc)


@pytest.mark.parametrize(
    "hashed",
    [
        "",
        "pw",
        "$6$",
        "$6$abc",
        "$6$abc$short",
        "$6$rounds=abc$abc$" + "a" * 86,
        "$1$abc$xyz",
        "$2b$12$" + "a" * 53,
        "$y$j9T$abc$def",
        HASH + "x",
    ],
    ids=repr,
)
def test_anything_but_a_valid_sha512_crypt_hash_does_not_match(hashed):
    assert password_matches("pw", hashed) is False


@given(password=st.text(), hashed=st.text())
def test_password_matches_never_raises(password, hashed):
    assert password_matches(password, hashed) in (True, False)


@pytest.mark.parametrize(
    ("password", "salt"), [("a\x00b", None), ("pw", "bad!"), ("pw", "a" * 17), ("x" * 4097, None)], ids=repr
)
def test_what_crypt_cannot_take_is_a_value_error(password, salt):
    with pytest.raises(ValueError):
        hash_password(password, salt=salt)


# --- network-config ------------------------------------------------------------------------------------------------


ROOT = Path(__file__).resolve().parents[2]
NETWORK_CONFIG_V2 = json.loads((ROOT / "schemas" / "upstream" / "cloud-init_network-config_v2.json").read_text())


def ethernets(networks, namespace="ns", wukong="web"):
    document = network_config(networks, namespace, wukong)
    assert document is not None
    config = yaml.safe_load(document)
    jsonschema.validate(config, NETWORK_CONFIG_V2)  # what cloud-init checks a network-config against
    assert config["version"] == 2
    assert set(config) == {"version", "ethernets"}
    return config["ethernets"]


def test_no_networks_means_no_network_config():
    assert network_config([], "ns", "web") is None


def test_a_static_network_gets_its_address_its_routes_through_the_gateway_and_dns():
    ip = IPConfig(
        mode="static",
        address="192.0.2.10/24",
        gateway="192.0.2.1",
        dns_servers=("192.0.2.53", "9.9.9.9"),
        routes=("198.51.100.0/24", "10.0.0.0/8"),
    )
    assert ethernets([Network("storage", "bridge", ip_config=ip)])["storage"] == {
        "match": {"macaddress": mac_address("ns", "web", "storage")},
        "addresses": ["192.0.2.10/24"],
        "routes": [{"to": "198.51.100.0/24", "via": "192.0.2.1"}, {"to": "10.0.0.0/8", "via": "192.0.2.1"}],
        "nameservers": {"addresses": ["192.0.2.53", "9.9.9.9"]},
    }


def default_routes(config):
    return [
        (name, route)
        for name, entry in config.items()
        for route in entry.get("routes", [])
        if route["to"] in ("0.0.0.0/0", "::/0", "default")
    ]


@pytest.mark.parametrize(
    "ip",
    [
        IPConfig(mode="static", address="192.0.2.10/24", gateway="192.0.2.1", routes=("198.51.100.0/24",)),
        IPConfig(mode="static", address="2001:db8::10/64", gateway="2001:db8::1", routes=("2001:db8:1::/48",)),
        IPConfig(mode="static", address="192.0.2.10/24", gateway="192.0.2.1"),  # stored before routes existed
    ],
    ids=["ipv4", "ipv6", "gateway-alone"],
)
def test_the_pod_networks_dhcp_is_the_guests_only_default_route(ip):
    config = ethernets([Network("storage", "bridge", ip_config=ip)])
    assert default_routes(config) == []
    assert config[POD_NETWORK]["dhcp4"] is True
    assert all("gateway4" not in e and "gateway6" not in e for e in config.values())


def test_a_static_network_without_gateway_or_dns_gets_only_its_address():
    ip = IPConfig(mode="static", address="10.0.0.5/16")
    assert ethernets([Network("backend", "macvlan", ip_config=ip)])["backend"] == {
        "match": {"macaddress": mac_address("ns", "web", "backend")},
        "addresses": ["10.0.0.5/16"],
    }


def test_a_dhcp_network_asks_for_dhcp4():
    assert ethernets([Network("lan", "bridge", ip_config=IPConfig(mode="dhcp"))])["lan"] == {
        "match": {"macaddress": mac_address("ns", "web", "lan")},
        "dhcp4": True,
    }


@pytest.mark.parametrize(
    "network",
    [
        Network("raw", "sriov"),
        Network("raw", "sriov", ip_config=IPConfig(mode="none")),
        Network("raw", "bridge", nad_name="corporate-lan"),
        Network("raw", "bridge", nad_name="corporate-lan", ip_config=IPConfig(mode="none")),
    ],
    ids=["no-ip-config", "mode-none", "nad-name", "nad-name-mode-none"],
)
def test_a_network_without_ip_config_or_with_mode_none_is_brought_up_without_an_address(network):
    assert ethernets([network])["raw"] == {"match": {"macaddress": mac_address("ns", "web", "raw")}}


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        (IPConfig(mode="dhcp"), {"dhcp4": True}),
        (IPConfig(mode="static", address="10.1.0.5/16"), {"addresses": ["10.1.0.5/16"]}),
    ],
    ids=["dhcp", "static"],
)
def test_a_nad_name_network_is_addressed_as_its_ip_config_says(ip, expected):
    entry = ethernets([Network("corp", "bridge", nad_name="corporate-lan", ip_config=ip)])["corp"]
    assert entry == {"match": {"macaddress": mac_address("ns", "web", "corp")}, **expected}


def test_the_pod_network_keeps_dhcp_once_network_config_replaces_cloud_inits_fallback():
    config = ethernets([Network("lan", "bridge", ip_config=IPConfig(mode="dhcp"))])
    assert list(config) == [POD_NETWORK, "lan"]
    assert config[POD_NETWORK] == {"match": {"macaddress": mac_address("ns", "web", POD_NETWORK)}, "dhcp4": True}


@given(address=text, gateway=text, dns=st.lists(text, max_size=3), route=text)
def test_any_ip_values_come_back_unchanged(address, gateway, dns, route):
    ip = IPConfig(mode="static", address=address, gateway=gateway, dns_servers=tuple(dns), routes=(route,))
    entry = ethernets([Network("lan", "bridge", ip_config=ip)])["lan"]
    assert entry["addresses"] == [address]
    assert entry["routes"] == [{"to": route, "via": gateway}]
    assert entry.get("nameservers", {}).get("addresses", []) == dns


# --- MAC addresses -------------------------------------------------------------------------------------------------


def test_a_mac_never_changes_for_the_same_interface():
    # Pinned: a new derivation would give every running VM a new MAC, so a change here must be deliberate.
    assert mac_address("default", "web", "storage") == "02:85:6e:b9:35:18"


@given(namespace=text, wukong=text, network=text)
def test_macs_are_locally_administered_unicast(namespace, wukong, network):
    mac = mac_address(namespace, wukong, network)
    assert re.fullmatch(r"02(:[0-9a-f]{2}){5}", mac)
    first = int(mac[:2], 16)
    assert first & 0x02 and not first & 0x01


def test_macs_differ_between_networks_wukongs_and_namespaces():
    macs = {
        mac_address("ns", "web", "a"),
        mac_address("ns", "web", "b"),
        mac_address("ns", "db", "a"),
        mac_address("other", "web", "a"),
        mac_address("ns", "web", POD_NETWORK),
    }
    assert len(macs) == 5


# --- names the guest accepts ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["fedora", "_svc", "a-b_1", "a", "a" * 32], ids=repr)
def test_user_names_useradd_accepts(name):
    assert user_name_problem(name) is None


@pytest.mark.parametrize(
    "name", ["Root", "a b", "a\nb", "fedora\n", "1abc", "-x", "a" * 33, "", "ünï", "a.b"], ids=repr
)
def test_user_names_useradd_refuses_say_what_a_name_looks_like(name):
    assert user_name_problem(name) == (
        'must be 1-32 characters: lowercase letters, digits, "_" and "-", starting with a letter or "_"'
    )


@pytest.mark.parametrize("name", ["root", "nobody", "bin", "daemon"])
def test_system_accounts_are_refused_because_cloud_init_would_change_them(name):
    assert "already has" in (user_name_problem(name) or "")


@pytest.mark.parametrize("group", ["wheel", "adm", "docker", "_ssh", "a-b_1"])
def test_group_names_groupadd_accepts_including_system_groups(group):
    assert group_problem(group) is None


@pytest.mark.parametrize("group", ["Wheel", "a,b", "a:b", "1x", "", "a" * 33, "a\n"], ids=repr)
def test_group_names_groupadd_refuses(group):
    assert group_problem(group) is not None


@pytest.mark.parametrize("shell", ["/bin/bash", "/usr/bin/zsh", "/sbin/nologin"])
def test_absolute_shell_paths_are_fine(shell):
    assert shell_problem(shell) is None


@pytest.mark.parametrize(
    "shell",
    ["bash", "", "/bin/ba sh", "/bin/bash\n", "/bin/\tsh", "/bin:/sh", "/bin/\x07sh", "/bin/\u2028sh"],
    ids=repr,
)
def test_relative_or_unprintable_shells_are_refused(shell):
    assert (
        shell_problem(shell)
        == 'must be an absolute path (e.g. /bin/bash) without whitespace, ":" or control characters'
    )
