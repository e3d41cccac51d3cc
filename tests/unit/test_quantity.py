from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wukong.quantity import BINARY_SUFFIXES, DECIMAL_SUFFIXES, QuantityError, parse


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ("1Ti", "1024Gi"),
        ("1.5Gi", "1536Mi"),
        ("1k", "1000"),
        ("1e3", "1k"),
        ("1E3", "1000"),
        ("500m", "0.5"),
        (".5Gi", "512Mi"),
        ("5.", "5"),
        ("+2Gi", "2Gi"),
        ("0.1Ki", "102.4"),
        ("1E", "1e18"),
        ("1Ei", "1024Pi"),
    ],
    ids=lambda s: s,
)
def test_equal_quantities_compare_equal(left, right):
    assert parse(left) == parse(right)
    assert hash(parse(left)) == hash(parse(right))


@pytest.mark.parametrize(
    ("smaller", "larger"),
    [("2G", "2Gi"), ("1000Gi", "1Ti"), ("999m", "1"), ("1M", "1Mi"), ("-1", "0"), ("1023Mi", "1Gi"), ("1e-3", "2m")],
    ids=lambda s: s,
)
def test_ordering_is_exact(smaller, larger):
    assert parse(smaller) < parse(larger)
    assert not parse(larger) < parse(smaller)


@pytest.mark.parametrize(
    "text",
    ["", "abc", "Gi", "1gi", "1 Gi", "1.2.3", "1e", "1Gi ", "0x10", "1K", "1KiB", "--1", "1e1.5", "1" * 65],
    ids=repr,
)
def test_invalid_strings_say_what_a_quantity_looks_like(text):
    with pytest.raises(QuantityError, match=r"e\.g\. 500Gi"):
        parse(text)


def test_non_string_is_an_error_not_a_crash():
    with pytest.raises(QuantityError, match="must be a string, not int"):
        parse(5)  # type: ignore[arg-type]


def test_huge_exponent_is_refused_before_any_big_arithmetic():
    with pytest.raises(QuantityError, match="exponent"):
        parse("1e999999999")


@pytest.mark.parametrize(
    ("text", "canonical"),
    [("1024Gi", "1Ti"), ("1536Mi", "1536Mi"), ("1e9", "1G"), ("1000m", "1"), ("0.5", "500m"), ("0", "0")],
)
def test_canonical_spelling(text, canonical):
    assert parse(text).canonical() == canonical


def test_str_keeps_what_the_user_wrote():
    assert str(parse("1024Gi")) == "1024Gi"


# An oracle written out here, independent of the implementation's tables: what each suffix multiplies by.
MULTIPLIERS = {
    "": 1,
    "m": Fraction(1, 1000),
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}
suffixes = st.sampled_from(sorted(MULTIPLIERS))
numbers = st.decimals(min_value=0, max_value=10**6, places=3, allow_nan=False, allow_infinity=False)


def _text(number, suffix: str) -> str:
    return f"{number}{suffix}"


def _exact(number, suffix: str) -> Fraction:
    return Fraction(str(number)) * MULTIPLIERS[suffix]


def test_the_oracle_covers_every_suffix_the_parser_knows():
    assert set(MULTIPLIERS) == {*BINARY_SUFFIXES, *DECIMAL_SUFFIXES}


@given(numbers, suffixes)
def test_value_is_the_number_times_the_suffix(number, suffix):
    assert parse(_text(number, suffix)).value == _exact(number, suffix)


@given(numbers, suffixes)
def test_canonical_spelling_round_trips(number, suffix):
    quantity = parse(_text(number, suffix))
    assert parse(quantity.canonical()) == quantity


@given(numbers, suffixes, numbers, suffixes)
def test_ordering_agrees_with_the_exact_amounts(a, sa, b, sb):
    left, right = parse(_text(a, sa)), parse(_text(b, sb))
    assert (left < right) == (_exact(a, sa) < _exact(b, sb))
    assert (left == right) == (_exact(a, sa) == _exact(b, sb))
    assert (left > right) == (_exact(a, sa) > _exact(b, sb))
