"""Where a disk image may come from, as a WukongPolicy's images.allowedSources says, and whether it is pinned.

Images and prefixes are compared by their parsed parts, never as strings. A registry prefix names a host, a port
(none written: none allowed but the registry's default), and path segments: docker.io allows docker.io/library/x,
not docker.io.evil.com/x nor docker.io:31337/x. A URL prefix names a scheme, a host, a port and path segments:
https://images.example.com/vm/ allows neither https://images.example.com.evil.com/ nor
https://images.example.com@evil.com/ nor /vm/../secret.
"""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import unquote

from wukong import imageurl, reference
from wukong.image import REGISTRY_SCHEME, ImageSource
from wukong.imageurl import Location
from wukong.reference import DEFAULT_DOMAIN, LEGACY_DEFAULT_DOMAIN, OFFICIAL_REPOSITORY, Reference

PINNING_ALGORITHMS = ("sha256", "sha512")


def allows(prefix: str, source: ImageSource) -> bool:
    """Whether an allowedSources entry allows an image."""
    if prefix.startswith(("http://", "https://")):
        return source.location is not None and _url_allows(prefix, source.location)
    if source.reference is None:
        return False
    return any(_under(source.reference, named) for named in _registry_prefixes(prefix))


def _under(image: Reference, prefix: Reference) -> bool:
    """The same registry (host and port), and the prefix's path segments first; a tag or digest in the prefix
    names that one image only."""
    if (image.host, image.port) != (prefix.host, prefix.port):
        return False
    if prefix.tag is not None or prefix.digest is not None:
        return image.path == prefix.path and prefix.tag in (None, image.tag) and prefix.digest in (None, image.digest)
    return not prefix.path or image.path == prefix.path or image.path.startswith(f"{prefix.path}/")


@lru_cache(maxsize=1024)
def _registry_prefixes(prefix: str) -> tuple[Reference, ...]:
    """The references a registry prefix stands for (a path of "" for a whole registry). A bare first component
    that looks like a host is a registry (docker.io, registry:5000); one that does not is a Docker Hub name
    (fedora). docker.io/fedora names both the fedora organisation and the official image docker.io/library/fedora,
    as Docker reads it. A prefix that is not a reference allows nothing."""
    text = prefix.removeprefix(REGISTRY_SCHEME).rstrip("/")
    first, slash, rest = text.partition("/")
    try:
        if text and not slash and reference.looks_like_domain(first):
            host, port = reference.registry(first)
            return (Reference(host, port, ""),)
        named = reference.parse(text) if text else None
    except reference.InvalidReference:
        return ()
    if named is None:
        return ()
    if named.host == DEFAULT_DOMAIN and first in (DEFAULT_DOMAIN, LEGACY_DEFAULT_DOMAIN) and "/" not in rest:
        organisation = Reference(named.host, named.port, named.path.removeprefix(f"{OFFICIAL_REPOSITORY}/"))
        return (named, organisation)
    return (named,)


def _url_allows(prefix: str, image: Location) -> bool:
    try:
        allowed = imageurl.parse(prefix)
    except imageurl.InvalidURL:
        return False
    if allowed.userinfo or image.userinfo:
        return False  # https://images.example.com@evil.com/ goes to evil.com: a reader cannot tell the host
    if (allowed.scheme, allowed.host, allowed.port) != (image.scheme, image.host, image.port):
        return False
    base, path = allowed.path.rstrip("/"), image.path
    if not base:
        return True  # the prefix names a whole host
    segments = unquote(path).replace("\\", "/").split("/")
    if "." in segments or ".." in segments:
        return False  # /vm/../secret would leave the prefix once the server resolves it
    return path == base or path.startswith(f"{base}/")


def unpinned(source: ImageSource) -> str | None:
    """Why a registry image is not pinned to one content (None: it is). The reference's digest was checked by
    parsing (its algorithm's length of lower-case hex, and no tag beside it); pinning asks for sha256 or sha512."""
    ref = source.reference
    if ref is None or ref.digest is None:
        return "is not pinned by digest"
    if ref.algorithm not in PINNING_ALGORITHMS:
        return f"is pinned by {ref.algorithm}, not sha256 or sha512"
    return None
