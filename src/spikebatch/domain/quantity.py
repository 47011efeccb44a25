"""Kubernetes resource quantities ("500m", "8Gi", "1.5", "2e3") parsed exactly."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

# [0-9], not \d (which also matches e.g. fullwidth or Arabic-Indic digits), and used with
# fullmatch ("$" would also match before a trailing newline).
_QUANTITY = re.compile(
    r"(?P<num>[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+))(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?"
)
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}


def parse_quantity(text: str) -> Decimal:
    """The value of a Kubernetes quantity; raises ValueError naming the accepted forms."""
    match = _QUANTITY.fullmatch(str(text).strip())
    if not match:
        raise ValueError(
            f"{text!r} is not a Kubernetes quantity; use forms like '500m', '2', '8Gi' or '512Mi'"
        )
    try:
        number = Decimal(match.group("num"))
    except InvalidOperation as exc:  # pragma: no cover - the regex admits only decimals
        raise ValueError(f"{text!r} is not a number") from exc
    suffix = match.group("suffix") or ""
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix in _DECIMAL:
        return number * _DECIMAL[suffix]
    return number * (Decimal(10) ** int(suffix[1:]))


def cpu_quantity(text: str) -> str:
    """Validate a CPU quantity: positive, and no memory-style binary suffix."""
    value = parse_quantity(text)
    stripped = str(text).strip()
    if stripped.endswith(tuple(_BINARY)):
        raise ValueError(f"CPU {text!r} has a memory suffix; use cores ('2') or millicores ('500m')")
    if value <= 0:
        raise ValueError(f"CPU {text!r} must be greater than zero")
    return stripped


def memory_quantity(text: str) -> str:
    """Validate a memory quantity: a whole, positive number of bytes."""
    value = parse_quantity(text)
    stripped = str(text).strip()
    if value <= 0:
        raise ValueError(f"memory {text!r} must be greater than zero")
    if stripped.endswith(("m", "u", "n")):
        raise ValueError(f"memory {text!r} uses a milli/micro/nano suffix; use 'Mi' or 'Gi'")
    if value != value.to_integral_value():
        raise ValueError(
            f"memory {text!r} is not a whole number of bytes; use e.g. '512Mi', '1.5Gi' or '2G'"
        )
    return stripped
