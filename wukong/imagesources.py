"""Where a disk image may come from, as a WukongPolicy's images.allowedSources says, and whether it is pinned.

Prefixes match whole names and path segments only: docker.io allows docker.io/library/x, not docker.io.evil.com/x;
https://images.example.com/vm/ allows neither https://images.example.com.evil.com/ nor
https://images.example.com@evil.com/ nor /vm/../secret.
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import unquote, urlsplit

from wukong.image import REGISTRY_SCHEME, ImageSource

_DEFAULT_DOMAIN = "docker.io"
_LEGACY_DEFAULT_DOMAIN = "index.docker.io"  # Docker reads it as docker.io
_DEFAULT_PORTS = {"http": 80, "https": 443}
_DIGEST = re.compile(r"@(?P<algorithm>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*):(?P<hex>[0-9a-fA-F]{32,})\Z")
_SHA256_HEX = 64


def allows(prefix: str, source: ImageSource) -> bool:
    """Whether an allowedSources entry allows an image. Prefixes match whole names and path segments only:
    docker.io allows docker.io/library/x, not docker.io.evil.com/x."""
    if prefix.startswith(("http://", "https://")):
        return source.kind == "http" and _url_allows(prefix, source.url)
    if source.kind != "registry":
        return False
    reference = _normalized_reference(source.url.removeprefix(REGISTRY_SCHEME))
    return any(
        reference == named or (reference.startswith(named) and reference[len(named)] in "/:@")
        for named in _registry_prefixes(prefix)
    )


def _has_domain(component: str) -> bool:
    """Docker's test for whether a reference's first component is a registry host."""
    return "." in component or ":" in component or component == "localhost" or component != component.lower()


@lru_cache(maxsize=1024)
def _normalized_reference(reference: str) -> str:
    """A reference as Docker resolves it: fedora:40 is docker.io/library/fedora:40; domains in lower case."""
    first, slash, rest = reference.partition("/")
    domain, remainder = (first.lower(), rest) if slash and _has_domain(first) else (_DEFAULT_DOMAIN, reference)
    if domain == _LEGACY_DEFAULT_DOMAIN:
        domain = _DEFAULT_DOMAIN
    if domain == _DEFAULT_DOMAIN and "/" not in remainder:
        remainder = f"library/{remainder}"
    return f"{domain}/{remainder}"


@lru_cache(maxsize=1024)
def _registry_prefixes(prefix: str) -> tuple[str, ...]:
    """The normalized names a registry prefix stands for. A bare first component that looks like a host is a
    registry (docker.io, registry:5000); one that does not is a Docker Hub name (fedora). docker.io/fedora names
    both the fedora organisation and the official image docker.io/library/fedora, as Docker reads it."""
    text = prefix.removeprefix(REGISTRY_SCHEME).rstrip("/")
    if not text:
        return ()  # names nothing: allows nothing
    first, _, rest = text.partition("/")
    if not _has_domain(first):
        return (_normalized_reference(text),)
    domain = _DEFAULT_DOMAIN if first.lower() == _LEGACY_DEFAULT_DOMAIN else first.lower()
    if not rest:
        return (domain,)
    if domain == _DEFAULT_DOMAIN and "/" not in rest:
        return (f"{domain}/{rest}", f"{domain}/library/{rest}")
    return (f"{domain}/{rest}",)


def _url_allows(prefix: str, url: str) -> bool:
    allowed, image = _url_parts(prefix), _url_parts(url)
    if allowed is None or image is None or allowed[:3] != image[:3]:
        return False
    base, path = allowed[3].rstrip("/"), image[3]
    if not base:
        return True  # the prefix names a whole host
    segments = unquote(path).replace("\\", "/").split("/")
    if "." in segments or ".." in segments:
        return False  # /vm/../secret would leave the prefix once the server resolves it
    return path == base or path.startswith(f"{base}/")


def _url_parts(url: str) -> tuple[str, str, int | None, str] | None:
    """(scheme, host, port, path), or None for a URL that names no host plainly: one with userinfo
    (https://images.example.com@evil.com/ goes to evil.com) or an unreadable port."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if "@" in parts.netloc or not parts.hostname:
        return None
    return parts.scheme, parts.hostname, port if port is not None else _DEFAULT_PORTS.get(parts.scheme), parts.path


def pinned(source: ImageSource) -> bool:
    match = _DIGEST.search(source.url)
    return match is not None and (match["algorithm"] != "sha256" or len(match["hex"]) == _SHA256_HEX)
