"""The cloud-init documents a Wukong's guest boots with: user-data, network-config, and the rules they impose.

Everything here is built as data and serialised with ``yaml.safe_dump``, never by pasting user values into text:
a user name, group or sudo rule holding a newline, ``#`` or ``: `` stays a string value and cannot add a key.
SSH keys are not here: they reach the guest through KubeVirt's accessCredentials.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence
from typing import Any, Final

import yaml
from passlib.hash import sha512_crypt  # type: ignore[import-untyped]

from wukong.naming import POD_NETWORK
from wukong.spec import CloudInitUser, Network

USER_DATA_HEADER: Final = "#cloud-config\n"

# The KubeVirt network (and interface) name of the pod network, the VM's first NIC.

# 5000 is glibc's implicit default, what `openssl passwd -6` and `passwd` on a SHA-512 system produce: the hash is
# no weaker than the guest's own, and costs milliseconds instead of passlib's 656000 rounds (about half a second),
# which the reconciler would pay per Wukong. The plaintext sits in the Wukong itself, so more rounds buy little.
SHA512_CRYPT_ROUNDS: Final = 5000

# useradd's and groupadd's default NAME_REGEX, with their 32-character limit.
_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
_NAME_RULE: Final = 'must be 1-32 characters: lowercase letters, digits, "_" and "-", starting with a letter or "_"'

# Accounts the base system already has (Debian's base-passwd and Fedora's setup package). cloud-init does not
# create a user that exists: it ignores ``passwd`` and changes that account's lock and sudo rights instead.
# fmt: off
RESERVED_USER_NAMES: Final = frozenset({
    "root", "daemon", "bin", "sys", "adm", "sync", "shutdown", "halt", "operator", "games", "man", "lp", "mail",
    "news", "uucp", "proxy", "www-data", "backup", "list", "irc", "gnats", "ftp", "nobody", "_apt",
})
# fmt: on


def user_data(user: CloudInitUser | None, hostname: str, password_hash: str | None) -> str:
    """cloud-init user-data: the hostname and, when given, the one user the Wukong asks for.

    ``password_hash`` is a crypt hash (``user.password_hash``, or ``hash_password(user.password)``): the plaintext
    never reaches the guest's metadata disk. With a password, ``lock_passwd`` defaults to false (cloud-init would
    otherwise lock the password it has just set), and ``ssh_pwauth`` says whether sshd accepts it: only with
    ``sshPasswordAuth: true``, else false -- written, not left to the image, whose default varies -- so a password
    is for the console unless SSH login with it was asked for.
    """
    config: dict[str, Any] = {"hostname": hostname}
    if user is not None:
        config["users"] = [_user_entry(user, password_hash)]
        if password_hash:
            config["ssh_pwauth"] = user.ssh_password_auth
    return USER_DATA_HEADER + yaml.safe_dump(config, sort_keys=False)


def _user_entry(user: CloudInitUser, password_hash: str | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": user.name}
    if user.groups:
        entry["groups"] = list(user.groups)
    if user.shell:
        entry["shell"] = user.shell
    if user.sudo:
        entry["sudo"] = [user.sudo]
    lock = user.lock_passwd if user.lock_passwd is not None else (False if password_hash else None)
    if lock is not None:
        entry["lock_passwd"] = lock
    if password_hash:
        entry["passwd"] = password_hash
    return entry


def network_config(networks: Sequence[Network], namespace: str, wukong: str) -> str | None:
    """cloud-init network-config (version 2) for the pod network and every Multus network; None without the latter.

    Each entry is keyed by its network name and finds its NIC by ``mac_address``, which the VM's interface must
    be given: guest NIC names (eth1, enp2s0, ...) depend on the image and the PCI layout, a chosen MAC does not.
    Once a datasource provides network-config, cloud-init no longer DHCPs the first NIC by itself, so the pod
    network is listed too, and its DHCP gives the guest its only default route. A network with a static
    ``ipConfig`` gets its address, a route through its gateway to each of its ``routes`` (never a default route: a
    second one beside the pod network's would send the guest's traffic either way) and its DNS servers; one with
    DHCP gets ``dhcp4`` (and the routes its DHCP server gives); one with mode ``none`` or without ``ipConfig`` --
    an existing NAD's (``nadName``) too -- is brought up with no address.
    """
    if not networks:
        return None
    pod = {"match": {"macaddress": mac_address(namespace, wukong, POD_NETWORK)}, "dhcp4": True}
    ethernets: dict[str, Any] = {POD_NETWORK: pod}
    for network in networks:
        ethernets[network.name] = _ethernet(network, mac_address(namespace, wukong, network.name))
    return yaml.safe_dump({"version": 2, "ethernets": ethernets}, sort_keys=False)


def _ethernet(network: Network, mac: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"match": {"macaddress": mac}}
    ip = network.ip_config
    if ip is None:
        return entry
    if ip.mode == "static":
        if ip.address:
            entry["addresses"] = [ip.address]
        if ip.gateway and ip.routes:
            entry["routes"] = [{"to": route, "via": ip.gateway} for route in ip.routes]
    elif ip.mode == "dhcp":
        entry["dhcp4"] = True
    if ip.dns_servers:
        entry["nameservers"] = {"addresses": list(ip.dns_servers)}
    return entry


def mac_address(namespace: str, wukong: str, network: str) -> str:
    """A stable MAC for one interface of one Wukong: locally administered (no vendor's), unicast, and derived from
    the names, so the network-config and the VM agree on it without storing it anywhere."""
    digest = hashlib.sha256(f"{namespace}/{wukong}/{network}".encode()).digest()
    return ":".join(f"{b:02x}" for b in (0x02, *digest[:5]))


def hash_password(password: str, salt: str | None = None) -> str:
    """SHA-512 crypt (``$6$...``), the scheme every Linux guest's login understands.

    ``salt`` (up to 16 characters of ``./0-9A-Za-z``) makes the hash reproducible, so a caller can rebuild the same
    Secret on every pass; without one, a random salt is drawn. Raises ValueError for a password holding a NUL or
    longer than 4096 characters, and for an invalid salt.
    """
    hasher = sha512_crypt.using(rounds=SHA512_CRYPT_ROUNDS, **({} if salt is None else {"salt": salt}))
    return str(hasher.hash(password))


def password_matches(password: str, hashed: str) -> bool:
    """Whether ``hashed`` is a SHA-512 crypt hash of ``password``; False for anything else, so a hash kept from an
    earlier pass is reused only when it is valid and still right."""
    try:
        return bool(sha512_crypt.verify(password, hashed))
    except (ValueError, TypeError):
        return False


def user_name_problem(name: str) -> str | None:
    """Why useradd (through cloud-init) would refuse or misuse this user name; None when it is fine."""
    if not _NAME.fullmatch(name):
        return _NAME_RULE
    if name in RESERVED_USER_NAMES:
        return "names an account the guest already has (such as root or nobody): cloud-init would change it"
    return None


def group_problem(group: str) -> str | None:
    """Why groupadd would refuse this group name; None when it is fine (existing groups such as wheel are)."""
    return None if _NAME.fullmatch(group) else _NAME_RULE


def shell_problem(shell: str) -> str | None:
    """Why this login shell cannot go into /etc/passwd; None when it is fine. A ``:`` would split the entry."""
    if not shell.startswith("/") or any(c.isspace() or c == ":" or unicodedata.category(c) == "Cc" for c in shell):
        return 'must be an absolute path (e.g. /bin/bash) without whitespace, ":" or control characters'
    return None
