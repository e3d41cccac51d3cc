"""Exact Kubernetes resource quantities (``500Gi``, ``1.5Ti``, ``2G``, ``1e9``, ``250m``).

Values are held as exact fractions, never floats, so ``1Ti == 1024Gi`` and ``1.5Gi == 1536Mi`` hold and
``2G < 2Gi`` is decided the way the API server decides it. The grammar is the one of
k8s.io/apimachinery/pkg/api/resource: a signed decimal number followed by a binary suffix (Ki..Ei), a
decimal suffix (m, k, M..E) or a decimal exponent (``e3``, ``E-2``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache, total_ordering

BINARY_SUFFIXES = {"Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4, "Pi": 1024**5, "Ei": 1024**6}
DECIMAL_SUFFIXES = {
    "m": Fraction(1, 1000),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}
# Bounds that keep a hostile string from making us build a gigantic integer.
MAX_TEXT_LENGTH = 64
MAX_EXPONENT = 64

# ASCII digits only, as the API server's parser: Arabic-Indic or full-width digits make no quantity.
_GRAMMAR = re.compile(
    r"(?P<sign>[+-]?)(?P<number>[0-9]+\.?[0-9]*|\.[0-9]+)"
    r"(?:(?P<binary>Ki|Mi|Gi|Ti|Pi|Ei)|[eE](?P<exponent>[+-]?[0-9]+)|(?P<decimal>[mkMGTPE]?))",
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


@lru_cache(maxsize=4096)
def _parse_text(text: str) -> Quantity:
    """A few distinct sizes recur in every request (and in every policy rule judging them): parsed once each."""
    match = _GRAMMAR.fullmatch(text)
    if match is None:
        raise QuantityError(f"not a quantity; {HINT}")
    number = _decimal_fraction(match["number"])
    if match["binary"]:
        value = number * BINARY_SUFFIXES[match["binary"]]
    elif match["exponent"] is not None:
        exponent = int(match["exponent"])
        if abs(exponent) > MAX_EXPONENT:
            raise QuantityError(f"the exponent must lie within ±{MAX_EXPONENT}; {HINT}")
        value = number * Fraction(10) ** exponent
    else:
        value = number * DECIMAL_SUFFIXES[match["decimal"]]
    if match["sign"] == "-":
        value = -value
    return Quantity(value=value, text=text, binary=bool(match["binary"]))


def _decimal_fraction(number: str) -> Fraction:
    whole, _, decimals = number.partition(".")
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
