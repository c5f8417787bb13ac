"""Kubernetes resource quantities ("100m", "1Gi", "2", "1e3") as exact fractions."""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

_RX = re.compile(r"^([+-]?[0-9.]+)([eE][+-]?[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")
_SUFFIX = {
    "": Fraction(1),
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 1000),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
    "Ki": Fraction(2**10),
    "Mi": Fraction(2**20),
    "Gi": Fraction(2**30),
    "Ti": Fraction(2**40),
    "Pi": Fraction(2**50),
    "Ei": Fraction(2**60),
}


class QuantityError(ValueError):
    pass


def parse_quantity(q: Any) -> Fraction:
    if isinstance(q, bool):
        raise QuantityError(f"quantities must match the regular expression: {q!r}")
    if isinstance(q, int | float):
        return Fraction(q)
    m = _RX.match(str(q).strip()) if isinstance(q, str) else None
    if not m or m.group(1) in (".", "+", "-"):
        raise QuantityError(
            f"quantities must match the regular expression "
            f"'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$': {q!r}"
        )
    try:
        val = Fraction(m.group(1))
    except ValueError:
        raise QuantityError(f"invalid quantity {q!r}") from None
    if m.group(2):
        val *= Fraction(10) ** int(m.group(2)[1:])
    return val * _SUFFIX[m.group(3) or ""]


def format_quantity(v: Fraction) -> str:
    if v.denominator == 1:
        return str(v.numerator)
    milli = v * 1000
    if milli.denominator == 1:
        return f"{milli.numerator}m"
    return str(float(v))
