"""OPEN amounts: 18-decimal wei <-> human text, exact (Decimal, never float)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from openledger.errors import ValidationError

OPEN = 10**18  # wei per OPEN


def fmt_open(wei: int) -> str:
    """18-decimal wei as OPEN, trailing zeros trimmed: 1500000000000000000 -> '1.5'."""
    text = format(Decimal(wei) / Decimal(OPEN), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def parse_open(text: str, *, field: str = "amount") -> int:
    """'1.5' -> 1500000000000000000; anything else is a ValidationError naming ``field``."""
    try:
        value = Decimal(str(text).strip()) * OPEN
        ok = value.is_finite() and value >= 0 and value == value.to_integral_value()
    except (InvalidOperation, ValueError):
        ok = False
    if not ok:
        raise ValidationError(
            f"{field} {text!r} is not an amount of OPEN.",
            field=field,
            value=text,
            fix="write a non-negative number with at most 18 decimals, e.g. 25 or 0.5.",
        )
    return int(value)
