"""Exact Kubernetes resource quantities (``500Gi``, ``1.5Ti``, ``2G``, ``1e9``, ``250m``, ``16000000000n``).

Values are held as exact fractions, never floats, so ``1Ti == 1024Gi`` and ``1.5Gi == 1536Mi`` hold and
``2G < 2Gi`` is decided the way the API server decides it. The grammar and the value are those of
k8s.io/apimachinery's ``resource.ParseQuantity`` (what the CRDs' CEL ``isQuantity``/``quantity`` call): a sign, a
decimal number whose digits may all be left out (``Gi``, ``+``, ``.`` are zero), and a binary suffix (Ki..Ei), a
decimal suffix (n, u, m, k, M..E) or a decimal exponent (``e3``, ``E-2``). Like the API server, a value is rounded
up (away from zero) to a whole nano, and one written with a suffix is capped at 2^63-1.

One bound the API server's parser lacks, which the CRDs' rules set too: an exponent has at most three digits
(``1e999``, ``1e-999``; not ``1e1000`` nor ``1e0005``). ParseQuantity and its comparisons build the whole number,
so ``1e999999999`` would cost the API server (and us) gigabytes and minutes; within the bound every value is exact.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache, total_ordering
from typing import Any

BINARY_SUFFIXES = {"Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4, "Pi": 1024**5, "Ei": 1024**6}
DECIMAL_SUFFIXES = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 1000),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}
# The powers of ten of the decimal suffixes, as ParseQuantity's fast path reads them.
_DECIMAL_EXPONENTS = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BINARY_EXPONENTS = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
NANO = Fraction(1, 10**9)
MAX_SUFFIXED = 2**63 - 1  # the API server caps a quantity with a suffix (not an exponent) here
# Bounds that keep a hostile string from making anyone build a gigantic integer (the CRDs' maxLength and rules).
MAX_TEXT_LENGTH = 64
MAX_EXPONENT_DIGITS = 3

# ASCII digits only, as the API server's parser: Arabic-Indic or full-width digits make no quantity.
_GRAMMAR = re.compile(
    r"(?P<sign>[+-]?)(?P<whole>[0-9]*)(?:\.(?P<fraction>[0-9]*))?"
    r"(?:[eE](?P<exponent>[+-]?[0-9]+)|(?P<binary>Ki|Mi|Gi|Ti|Pi|Ei)|(?P<decimal>[numkMGTPE]?))",
    re.ASCII,
)
HINT = "use a number with an optional suffix, e.g. 500Gi, 1.5Ti, 2G or 1e9"


class QuantityError(ValueError):
    """A string that is not a Kubernetes quantity; the message says what one looks like."""


@total_ordering
@dataclass(frozen=True, eq=False)
class Quantity:
    """A parsed quantity: its exact value, and the text it was written as (kept for messages)."""

    value: Fraction
    text: str = field(default="")
    binary: bool = False

    def __str__(self) -> str:
        return self.text or self.canonical()

    def __repr__(self) -> str:
        return f"Quantity({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Quantity) and self.value == other.value

    def __lt__(self, other: Quantity) -> bool:
        return self.value < other.value

    def __hash__(self) -> int:
        return hash(self.value)

    def canonical(self) -> str:
        """The shortest exact spelling, binary suffixes for binary input as Kubernetes does."""
        if self.binary and self.value.denominator == 1 and self.value != 0:
            for suffix, multiple in reversed(BINARY_SUFFIXES.items()):
                if self.value % multiple == 0:
                    return f"{self.value // multiple}{suffix}"
        if self.value.denominator == 1:
            whole = self.value.numerator
            for suffix in ("E", "P", "T", "G", "M", "k"):
                multiple = DECIMAL_SUFFIXES[suffix].numerator
                if whole != 0 and whole % multiple == 0:
                    return f"{whole // multiple}{suffix}"
            return str(whole)
        milli = self.value * 1000
        if milli.denominator == 1:
            return f"{milli.numerator}m"
        return _exact_decimal(self.value)


def parse(text: str) -> Quantity:
    """Parse a quantity exactly, or raise QuantityError saying what a valid one looks like."""
    if not isinstance(text, str):
        raise QuantityError(f"a quantity must be a string, not {type(text).__name__}; {HINT}")
    if len(text) > MAX_TEXT_LENGTH:
        raise QuantityError(f"longer than {MAX_TEXT_LENGTH} characters; {HINT}")
    return _parse_text(text)


def parse_or_none(value: Any) -> Quantity | None:
    """``value`` parsed, or None when it is not a valid quantity (of any JSON type): for readers that leave
    saying what is wrong with it to the schema check and validation."""
    try:
        return parse(value)
    except QuantityError:
        return None


def total(sizes: Sequence[Quantity]) -> Quantity:
    """The sum of quantities, binary when every one is (so it prints as 3Gi, not 3221225472)."""
    return Quantity(
        value=sum((q.value for q in sizes), Fraction(0)), binary=bool(sizes) and all(q.binary for q in sizes)
    )


@lru_cache(maxsize=4096)
def _parse_text(text: str) -> Quantity:
    """A few distinct sizes recur in every request (and in every policy rule judging them): parsed once each."""
    match = _GRAMMAR.fullmatch(text)
    if match is None or not text:
        raise QuantityError(f"not a quantity; {HINT}")
    whole, fraction = match["whole"], match["fraction"] or ""
    if match["exponent"] is not None:
        if len(match["exponent"].lstrip("+-")) > MAX_EXPONENT_DIGITS:
            raise QuantityError(f"the exponent has more than {MAX_EXPONENT_DIGITS} digits; {HINT}")
        power = int(match["exponent"])
    else:
        power = _DECIMAL_EXPONENTS.get(match["decimal"] or "", 0)
    if not whole and not fraction and not _fast_zero(match, power):
        # ParseQuantity reads a number without digits as 0 where its integer fast path applies, and refuses it
        # where it must fall back to its decimal parser (which wants a digit).
        raise QuantityError(f"not a quantity (no digits); {HINT}")
    number = _decimal_fraction(whole, fraction)
    if match["binary"]:
        value = number * BINARY_SUFFIXES[match["binary"]]
    elif match["exponent"] is not None:
        value = number * Fraction(10) ** power
    else:
        value = number * DECIMAL_SUFFIXES[match["decimal"]]
    if (value * 10**9).denominator != 1:
        value = Fraction(-((-value.numerator * 10**9) // value.denominator), 10**9)  # up to a whole nano
    if match["exponent"] is None:
        value = min(value, Fraction(MAX_SUFFIXED))
    if match["sign"] == "-":
        value = -value
    return Quantity(value=value, text=text, binary=bool(match["binary"]))


def _fast_zero(match: re.Match[str], power: int) -> bool:
    """Whether ParseQuantity's int64 fast path takes a number without digits (so reads it as 0): for a binary
    suffix while 15 - 1 - int(exponent*0.3) - 1 >= 0 (up to Ti), for a decimal one while the scale is >= nano."""
    if match["binary"]:
        return 15 - 1 - int(_BINARY_EXPONENTS[match["binary"]] * 3 / 10) - 1 >= 0
    return power >= -9


def _decimal_fraction(whole: str, decimals: str) -> Fraction:
    digits = (whole or "0") + decimals
    return Fraction(int(digits), 10 ** len(decimals))


def _exact_decimal(value: Fraction) -> str:
    """Every parsed value is a terminating decimal (denominators are 2^a·5^b), so this is exact."""
    sign = "-" if value < 0 else ""
    value = abs(value)
    places = 0
    while (value * 10**places).denominator != 1:
        places += 1
    scaled = str((value * 10**places).numerator).rjust(places + 1, "0")
    return f"{sign}{scaled[:-places]}.{scaled[-places:]}"
