"""Disk images: what a disk's ``image`` may say, and the CDI import source it becomes.

A registry reference is read by the distribution grammar (``wukong.reference``), less what CDI's importer
(containers/image) refuses on top of it: a tag beside a digest. A URL is read strictly (``wukong.imageurl``).
Whatever the string, the only exception is ImageError, whose message says what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

from wukong import imageurl, reference
from wukong.imageurl import Location
from wukong.reference import Reference

REGISTRY_SCHEME = "docker://"
HINT = "use docker://REF, http(s)://URL, or a registry reference such as quay.io/containerdisks/fedora:40"


class ImageError(ValueError):
    pass


@dataclass(frozen=True)
class ImageSource:
    """A CDI DataVolume source: ``registry`` (url is docker://REF) or ``http`` (url is the URL), with its parts as
    the importer reads them (``reference`` for a registry image, ``location`` for a URL)."""

    kind: Literal["registry", "http"]
    url: str
    reference: Reference | None = field(default=None, compare=False, repr=False)
    location: Location | None = field(default=None, compare=False, repr=False)


@lru_cache(maxsize=4096)
def parse_image(image: str) -> ImageSource:
    if image.startswith(("http://", "https://")):
        try:
            return ImageSource("http", image, location=imageurl.parse(image))
        except imageurl.InvalidURL as error:
            raise ImageError(f"not a valid URL: {error}; {HINT}") from None
    text = image.removeprefix(REGISTRY_SCHEME)
    if "://" in text:
        raise ImageError(f"not a supported image; {HINT}")
    try:
        parsed = reference.parse(text)
    except reference.InvalidReference as error:
        raise ImageError(f"not a supported image: {error}; {HINT}") from None
    if parsed.tag is not None and parsed.digest is not None:
        raise ImageError(
            f'not a supported image: it names tag "{parsed.tag}" beside its digest, which CDI\'s importer refuses '
            f'(the digest is what would be pulled; the tag only misleads a reader); drop ":{parsed.tag}"'
        )
    return ImageSource("registry", REGISTRY_SCHEME + text, reference=parsed)
