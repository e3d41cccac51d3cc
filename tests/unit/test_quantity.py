import math
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
    ["", "abc", "Pi", "e-10", "1gi", "1 Gi", "1.2.3", "1e", "1Gi ", "0x10", "1K", "1KiB", "--1", "1e1.5", "1" * 65],
    ids=repr,
)
def test_invalid_strings_say_what_a_quantity_looks_like(text):
    with pytest.raises(QuantityError, match=r"e\.g\. 500Gi"):
        parse(text)


def test_non_string_is_an_error_not_a_crash():
    with pytest.raises(QuantityError, match="must be a string, not int"):
        parse(5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text", ["1e1000", "1e-1000", "1E+1000", "1e0005", "1e999999999", "1e-999999999", "1e2147483647", "1e2147483648"]
)
def test_an_exponent_of_more_than_three_digits_is_refused_as_the_crds_refuse_it(text):
    with pytest.raises(QuantityError, match=r"exponent has more than 3 digits.*e\.g\. 500Gi"):
        parse(text)


def test_three_exponent_digits_are_read_exactly():
    assert parse("1e999").value == 10**999
    assert parse("9" * 60 + "e999") > parse("1e999") > parse("9" * 60 + "e900")
    assert parse("+1.5E+999").value == 15 * 10**998
    assert parse("1e-999") == parse("1n")  # rounded up to a nano, as the API server does
    assert parse("-1e-999") == parse("-1n")
    assert parse("1e005").value == 10**5


@pytest.mark.parametrize("text", ["Gi", "+", "-", ".", "+.", "k", "E", "Ti", "e3", "e-9", "n"], ids=repr)
def test_a_number_without_digits_reads_as_zero_where_the_api_server_reads_it_so(text):
    assert parse(text).value == 0


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("16000000000000000000n", 16 * 10**9),
        ("1.5n", Fraction(2, 10**9)),
        ("-1.5n", Fraction(-2, 10**9)),
        ("16Ei", 2**63 - 1),
        ("99999999999999999999", 2**63 - 1),
        ("-16Ei", -(2**63 - 1)),
        ("1e19", 10**19),
        ("1u", Fraction(1, 10**6)),
    ],
    ids=lambda v: str(v),
)
def test_nano_round_up_and_the_int64_cap_of_suffixed_values(text, value):
    assert parse(text).value == value


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
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
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
    """The API server's value: rounded up to a whole nano, capped at 2^63-1 (a suffixed quantity)."""
    nanos = math.ceil(Fraction(str(number)) * MULTIPLIERS[suffix] * 10**9)
    return min(Fraction(nanos, 10**9), Fraction(2**63 - 1))


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
