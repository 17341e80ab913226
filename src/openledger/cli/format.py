"""Shared output helpers for the CLI."""

from __future__ import annotations

import sys

from rich.console import Console

from openledger.units import fmt_open, parse_open

# Pipes and CI logs get a wide virtual terminal so tables of addresses are not truncated.
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)

__all__ = ["fmt_open", "out", "parse_open"]
