"""Shared output helpers for the CLI."""

from __future__ import annotations

import sys
from decimal import Decimal

from rich.console import Console

from openledger.chain.bindings import OPEN

# Pipes and CI logs get a wide virtual terminal so tables of addresses are not truncated.
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)


def fmt_open(wei: int) -> str:
    """18-decimal wei as OPEN, trailing zeros trimmed: 1500000000000000000 -> '1.5'."""
    text = format(Decimal(wei) / Decimal(OPEN), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def parse_open(text: str) -> int:
    """'1.5' -> 1500000000000000000 (exact)."""
    value = Decimal(text) * OPEN
    if value != value.to_integral_value() or value < 0:
        raise ValueError(f"{text!r} is not a non-negative amount with at most 18 decimals")
    return int(value)
