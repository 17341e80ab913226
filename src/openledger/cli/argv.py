"""Numbers on the command line checked before any command runs.

Ids, epochs, offsets and counts are stored as signed 64-bit integers, and amounts, ids and
counts are never negative: a number outside that range would otherwise reach the database
(an overflow) or be taken for an option (``deposit -5``). Each refusal names the argument,
the value and the fix.
"""

from __future__ import annotations

import re

from openledger.errors import ValidationError

MAX_INT = 2**63 - 1
_INT = re.compile(r"^[0-9]+$")
_NEGATIVE = re.compile(r"^-[0-9]+(\.[0-9]*)?$")


def check_numbers(argv: list[str]) -> None:
    """Refuse a negative number or an integer above 2^63−1 anywhere in ``argv``."""
    for i, tok in enumerate(argv):
        before = argv[i - 1] if i else ""
        where = before if before.startswith("--") else f"argument {i + 1}"
        if _NEGATIVE.match(tok):
            raise ValidationError(
                f"{where}: {tok} is negative; amounts, ids and counts are 0 or more.",
                field=where,
                value=tok,
                fix=f"give a positive number (e.g. {tok[1:]}).",
            )
        if _INT.match(tok) and int(tok) > MAX_INT:
            raise ValidationError(
                f"{where}: {tok[:40]}{'…' if len(tok) > 40 else ''} is larger than "
                f"{MAX_INT:,} (2^63−1), the largest id, epoch or count there is.",
                field=where,
                value=tok[:40],
                fix="use an id the matching `list` command shows (e.g. `openledger jobs "
                "list`, `openledger epoch list`).",
            )
