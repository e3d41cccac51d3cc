"""Container image references, read as the container runtime reads them.

The grammar is github.com/distribution/reference's (regexp.go, with ParseNormalizedNamed's Docker Hub rules and
go-digest's check of the digest), written out here rather than taken from PyPI: the one package that follows it
(docker-image-py) needs the ``regex`` C extension for a dozen lines of patterns, is untyped, and still leaves the
host, the port and the digest's algorithm for the caller to take apart. The parts are what policies compare: a
registry on another port is another registry, and a host differs from another only by more than letter case.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from functools import lru_cache

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"  # Docker reads it as docker.io
OFFICIAL_REPOSITORY = "library"
NAME_MAX = 255  # distribution's NameTotalLengthMax, on the path
# go-digest's algorithms and the lengths of their hex encodings; anything else is refused by the runtime.
DIGEST_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_REMOTE_NAME = rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])"
_DOMAIN_AND_PORT = rf"{_HOST}(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
# Go's \w is ASCII; so is this one.
_REFERENCE = re.compile(rf"({_REMOTE_NAME})(?::({_TAG}))?(?:@({_DIGEST}))?", re.ASCII)
_DOMAIN = re.compile(rf"({_HOST})(?::([0-9]+))?", re.ASCII)
_IDENTIFIER = re.compile(r"[a-f0-9]{64}")
_DIGEST_DIGITS = {algorithm: re.compile(f"[a-f0-9]{{{length}}}") for algorithm, length in DIGEST_LENGTHS.items()}


class InvalidReference(ValueError):
    pass


@dataclass(frozen=True)
class Reference:
    """A normalized reference: ``fedora:40`` is host docker.io, path library/fedora, tag 40. ``host`` is in lower
    case (DNS names are), ``port`` None where none is written (the registry's default)."""

    host: str
    port: int | None
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def algorithm(self) -> str | None:
        return self.digest.partition(":")[0] if self.digest else None


def looks_like_domain(component: str) -> bool:
    """Docker's test for whether a name's first component is a registry host (splitDockerDomain)."""
    return "." in component or ":" in component or component == "localhost" or component != component.lower()


@lru_cache(maxsize=4096)
def parse(text: str) -> Reference:
    """``text`` as ParseNormalizedNamed reads it (no ``docker://``); InvalidReference says why it is not one."""
    if _IDENTIFIER.fullmatch(text):
        raise InvalidReference("a 64-character hex string is an image ID, not a reference")
    first, slash, rest = text.partition("/")
    if slash and first == LEGACY_DEFAULT_DOMAIN:
        domain, remainder = DEFAULT_DOMAIN, rest
    elif slash and looks_like_domain(first):
        domain, remainder = first, rest
    else:
        domain, remainder = DEFAULT_DOMAIN, text
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = f"{OFFICIAL_REPOSITORY}/{remainder}"
    host, port = registry(domain)
    found = _REFERENCE.fullmatch(remainder)
    if found is None:
        lower = remainder.partition(":")[0]
        if lower != lower.lower():
            raise InvalidReference("the repository name must be in lower case")
        raise InvalidReference("not a reference by the distribution grammar (HOST[:PORT]/PATH[:TAG][@DIGEST])")
    path, tag, digest = found.groups()
    if len(path) > NAME_MAX:
        raise InvalidReference(f"the repository name must be at most {NAME_MAX} characters")
    if digest is not None:
        _check_digest(digest)
    return Reference(host, port, path, tag, digest)


def registry(domain: str) -> tuple[str, int | None]:
    """(host in lower case, port) of a reference's domain; index.docker.io is docker.io."""
    found = _DOMAIN.fullmatch(domain)
    if found is None:
        raise InvalidReference(f"{json.dumps(domain[:100])} is not a registry host (HOST or HOST:PORT)")
    host, port = found.groups()
    if port is not None and (len(port) > 5 or not 0 < int(port) <= 65535):
        raise InvalidReference("the registry port must be a number from 1 to 65535")
    if host.startswith("["):
        try:
            host = f"[{ipaddress.IPv6Address(host[1:-1])}]"
        except ValueError:
            raise InvalidReference(f"{json.dumps(host[:100])} is not an IPv6 address") from None
    host = host.lower()
    return DEFAULT_DOMAIN if host == LEGACY_DEFAULT_DOMAIN else host, int(port) if port is not None else None


def _check_digest(digest: str) -> None:
    """go-digest's Parse: a known algorithm, its length of lower-case hex."""
    algorithm, _, digits = digest.partition(":")
    pattern = _DIGEST_DIGITS.get(algorithm)
    if pattern is None:
        raise InvalidReference(
            f"digest algorithm {json.dumps(algorithm[:20])} is not one registries accept (sha256, sha384, sha512)"
        )
    if not pattern.fullmatch(digits):
        raise InvalidReference(f"a {algorithm} digest is {DIGEST_LENGTHS[algorithm]} lower-case hex digits (0-9, a-f)")
