"""Shared output helpers for the CLI.

With ``--json`` a command's stdout holds exactly one JSON document: its result (written by
:func:`print_json`) or, when it fails, the error (``{"error": TYPE, "message", "field",
"value", "fix"}``, as the API answers). Anything a command says along the way (progress,
notes) goes to stderr in that mode: :func:`set_json_mode` points ``out`` there.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

from openledger.units import fmt_open, parse_open

# Pipes and CI logs get a wide virtual terminal so tables of addresses are not truncated.
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)

_state = {"json": False, "written": 0}


def set_json_mode(on: bool) -> None:
    """``--json``: human output (``out``) goes to stderr, stdout keeps one JSON document."""
    _state["json"] = on
    _state["written"] = 0
    out.file = sys.stderr if on else None  # type: ignore[assignment]  # None: sys.stdout


def json_mode() -> bool:
    return bool(_state["json"])


def documents_written() -> int:
    """How many JSON documents this command wrote to stdout so far."""
    return int(_state["written"])


def print_json(doc: Any) -> None:
    """Write ``doc`` to stdout as one JSON document (plain text: no colours, no markup)."""
    sys.stdout.write(json.dumps(doc, indent=2, default=str, ensure_ascii=False) + "\n")
    sys.stdout.flush()
    _state["written"] = int(_state["written"]) + 1


__all__ = ["fmt_open", "json_mode", "out", "parse_open", "print_json", "set_json_mode"]
