"""Disk images: what a disk's ``image`` may say, and the CDI import source it becomes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

# A container image reference, as github.com/distribution/reference defines it (IPv6 hosts aside).
_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|-+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*(?::{_TAG})?(?:@{_DIGEST})?")

REGISTRY_SCHEME = "docker://"
HINT = "use docker://REF, http(s)://URL, or a registry reference such as quay.io/containerdisks/fedora:40"


class ImageError(ValueError):
    pass


@dataclass(frozen=True)
class ImageSource:
    """A CDI DataVolume source: ``registry`` (url is docker://REF) or ``http`` (url is the URL)."""

    kind: Literal["registry", "http"]
    url: str


def parse_image(image: str) -> ImageSource:
    if image.startswith(("http://", "https://")):
        parts = urlsplit(image)
        if not parts.netloc or any(c.isspace() for c in image):
            raise ImageError(f"not a valid URL; {HINT}")
        return ImageSource("http", image)
    reference = image.removeprefix(REGISTRY_SCHEME)
    if "://" in reference or not _REFERENCE.fullmatch(reference):
        raise ImageError(f"not a supported image; {HINT}")
    return ImageSource("registry", REGISTRY_SCHEME + reference)
