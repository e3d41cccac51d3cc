"""The quantity parser agrees with the API server's: generated sizes judged by both, the CRD's CEL rule
``isQuantity(self) && quantity(self).isGreaterThan(quantity('0'))`` (behind its regex, which bounds the exponent to 3
digits) on one side and ``wukong.quantity`` on the other.

Judged in kube-system, where the webhooks do not apply, so the verdict is the API server's alone.
"""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from kubeclient.rest import ApiError, Kube
from tests.builders import disk, wukong
from wukong.api import WUKONGS
from wukong.quantity import QuantityError, parse

# ASCII digits, and digits of other scripts that Python's \d would take: Arabic-Indic, full-width, Devanagari.
DIGITS = "0123456789" + "\u0660\u0661\u0665" + "\uff10\uff11\uff15" + "\u0966\u0967"
PIECES = [*DIGITS, ".", "+", "-", "e", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "m", "k", "M", "G", "T", "P", " ", "i"]
SIZES = st.lists(st.sampled_from(PIECES), min_size=1, max_size=7).map("".join)
PER_REQUEST = 16  # a Wukong holds at most 16 disks: 16 sizes judged per request


def ours(size: str) -> bool:
    try:
        return parse(size).value > 0
    except QuantityError:
        return False


def the_api_servers(admin: Kube, sizes: list[str]) -> list[bool]:
    disks = [disk(f"d{i}", size, storageClassName="longhorn", boot=i == 0) for i, size in enumerate(sizes)]
    obj = wukong(*disks, name="quantities")
    obj["metadata"]["namespace"] = "kube-system"
    try:
        admin.create(WUKONGS, obj, dry_run=True)
    except ApiError as error:
        assert error.status == 422, error
        refused = {int(i) for i in re.findall(r"spec\.disks\[(\d+)\]\.size", error.message)}
        return [i not in refused for i in range(len(sizes))]
    return [True] * len(sizes)


@settings(max_examples=40, deadline=None, database=None)
@given(sizes=st.lists(SIZES, min_size=PER_REQUEST, max_size=PER_REQUEST))
def test_generated_sizes_get_the_same_verdict_from_the_parser_and_the_api_server(admin, sizes):
    verdicts = the_api_servers(admin, sizes)
    disagreements = [(s, v) for s, v in zip(sizes, verdicts, strict=True) if ours(s) != v]
    assert disagreements == [], "sizes the API server judged otherwise (size, its verdict)"


def test_known_vectors_including_other_scripts_digits(admin):
    vectors = ["10Gi", "1.5Ti", "2G", "1e9", "250m", ".5", "5.", "+1", "-1", "0", "0Gi", "1E3", "1EB", "1Gb"]
    vectors += ["\u0661\u0660Gi", "\uff11\uff10Gi", "1\u0660Gi", "1 Gi", " 1Gi"]
    vectors += ["1e999", "1e-999", "9.5E+999", "1e1000", "1e0001", "1e999999999", "1e-999999999", "4e4294967305"]
    for batch in (vectors[:PER_REQUEST], vectors[PER_REQUEST:]):
        verdicts = the_api_servers(admin, batch)
        assert [(s, ours(s)) for s in batch] == list(zip(batch, verdicts, strict=True))
