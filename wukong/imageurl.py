"""http(s) image URLs: read strictly, and judged for where CDI's importer would send its request.

The importer runs inside the cluster, so a URL naming the node's metadata service, the API server or any service
fetches from inside and writes the answer onto a disk the tenant's VM reads. ``internal`` says why a host is such a
place; it judges what the URL says (names and IP literals in every spelling a resolver accepts), not what a name
resolves to: a public name pointing at an internal address, a redirect, or DNS rebinding pass it, and the
importer's NetworkPolicy is the fence for those.

Only URLs whose host is plain are accepted: a DNS name or an IP literal, no percent-encoding, no zone id, IPv4 as
four decimal numbers (``2852039166``, ``0xa9fea9fe`` and ``0251.0376.0251.0376`` are 169.254.169.254 to some
resolvers and names to others).
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from functools import lru_cache

SCHEMES = {"http": 80, "https": 443}
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_DECIMAL_OCTET = re.compile(r"0|[1-9][0-9]?|1[0-9][0-9]|2[0-4][0-9]|25[0-5]")
_NUMERIC_LABEL = re.compile(r"[0-9]+|0[xX][0-9a-fA-F]*")  # WHATWG: a host ending in one is an IPv4 address
_FORBIDDEN = re.compile(r"[\x00-\x20\x7f-\x9f\\]")
_HOST_MAX = 253

# Names that lead inside the cluster or the node, whatever the cluster's domain: RFC 6761's localhost, the
# private-use .local (the default cluster.local) and .internal (cloud metadata, e.g. metadata.google.internal).
_INTERNAL_SUFFIXES = ("localhost", "local", "internal")
# Kubernetes DNS names are <service>.<namespace>.svc.<domain> and <ip>.<namespace>.pod.<domain> (headless services'
# pods one label further): a svc or pod label after the first two is the cluster's, under any cluster domain.
_CLUSTER_LABELS = frozenset({"svc", "pod"})
_API_SERVER_NAMES = frozenset({"kubernetes.default"})


class InvalidURL(ValueError):
    pass


Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Location:
    """Where a URL sends its request. ``host`` is as it is compared: in lower case, without the trailing dot that
    makes a name absolute, an IP literal in its canonical form (IPv6 without brackets); ``address`` is set for an
    IP literal; ``port`` is the one written or the scheme's."""

    scheme: str
    host: str
    address: Address | None
    port: int
    path: str  # without the query and the fragment
    userinfo: bool  # user@ or user:password@ before the host


@lru_cache(maxsize=4096)
def parse(url: str) -> Location:
    """InvalidURL says what is wrong. Never another exception, whatever the string."""
    if _FORBIDDEN.search(url):
        raise InvalidURL("a URL has no spaces, control characters or backslashes")
    scheme, separator, rest = url.partition("://")
    if not separator or scheme not in SCHEMES:
        raise InvalidURL("the scheme must be http or https, in lower case")
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, path = rest[:end], re.split("[?#]", rest[end:], maxsplit=1)[0]
    _, at, hostport = authority.rpartition("@")
    host, port = _host_and_port(hostport, SCHEMES[scheme])
    address = _address(host)
    shown = host.lower().removesuffix(".") if address is None else str(address)
    return Location(scheme, shown, address, port, path, bool(at))


def _host_and_port(text: str, default: int) -> tuple[str, int]:
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise InvalidURL("an IPv6 host is written [ADDRESS], and this one has no closing bracket")
        host, after = text[: close + 1], text[close + 1 :]
    else:
        host, colon, port = text.partition(":")
        after = colon + port
    if not after:
        port_number = default
    elif not after.startswith(":") or not after[1:].isdecimal() or not after[1:].isascii():
        raise InvalidURL("the port must be a number from 1 to 65535")
    else:
        port_number = int(after[1:7])
        if not 0 < port_number <= 65535 or len(after) > 6:
            raise InvalidURL("the port must be a number from 1 to 65535")
    if not host:
        raise InvalidURL("the URL names no host")
    return host, port_number


def _address(host: str) -> Address | None:
    """The IP literal a host is, if it is one; InvalidURL for a host that is neither a plain name nor a plain IP."""
    if host.startswith("["):
        inside = host[1:-1]
        if "%" in inside:
            raise InvalidURL("an IPv6 host may not carry a zone id (%)")
        try:
            return ipaddress.IPv6Address(inside)
        except ValueError:
            raise InvalidURL(f"{_quoted(host)} is not an IPv6 address") from None
    if "%" in host:
        raise InvalidURL("the host may not be percent-encoded; write it plainly")
    if not host.isascii():  # before lower(), which makes the Kelvin sign a k
        raise InvalidURL("the host must be ASCII; write an international name in its xn-- form")
    name = host.lower()
    labels = name.removesuffix(".").split(".")
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        if len(labels) == 4 and all(_DECIMAL_OCTET.fullmatch(label) for label in labels) and name[-1] != ".":
            return ipaddress.IPv4Address(name)
        raise InvalidURL(
            f"{_quoted(host)} reads as an IPv4 address in a form resolvers disagree on; write it as four decimal "
            "numbers from 0 to 255 (a.b.c.d) without leading zeros"
        )
    if len(name) > _HOST_MAX + 1 or not all(_LABEL.fullmatch(label) for label in labels):
        raise InvalidURL(f"{_quoted(host)} is not a host name (letters, digits, - and _ in dot-separated labels)")
    return None


@lru_cache(maxsize=4096)
def internal(location: Location) -> str | None:
    """Why the URL's host is inside the cluster or the node (None: not as far as its spelling says)."""
    if location.address is not None:
        return _internal_address(location.address)
    name = location.host
    labels = name.split(".")
    if name == "localhost":
        return '"localhost" is the importer\'s own pod'
    if len(labels) == 1:
        return f"{_quoted(name)} is a single-label name, which the importer's DNS search path resolves to a service"
    if name in _API_SERVER_NAMES:
        return f"{_quoted(name)} is the Kubernetes API server"
    if labels[-1] in _INTERNAL_SUFFIXES:
        return f"names under .{labels[-1]} are the node's or the cluster's own"
    if _CLUSTER_LABELS.intersection(labels[2:]):
        return f"{_quoted(name)} is a Kubernetes service or pod name"
    return None


def _internal_address(address: Address) -> str | None:
    if isinstance(address, ipaddress.IPv6Address):
        carried = address.ipv4_mapped or address.sixtofour or (address.teredo or (None, None))[1]
        if carried is None and address in _NAT64:
            carried = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if carried is not None:
            reason = _internal_address(carried)
            return f"it carries the IPv4 address {carried}, and {reason}" if reason else None
    if address.is_loopback:
        return f"{address} is a loopback address"
    if address.is_link_local:
        return f"{address} is a link-local address (the node's, and cloud metadata services')"
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return f"{address} is a site-local address"
    if address.is_multicast:
        return f"{address} is a multicast address"
    if address.is_unspecified:
        return f"{address} is the unspecified address, which reaches the importer's own node"
    if not address.is_global:
        return f"{address} is a private or reserved address, where the cluster's pods, services and nodes are"
    return None


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _quoted(text: str) -> str:
    return json.dumps(text if len(text) <= 100 else f"{text[:100]}...")
