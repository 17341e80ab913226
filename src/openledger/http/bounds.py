"""Bounded integers for paths, queries and bodies: every id, offset and count the API takes
fits a signed 64-bit column, so an out-of-range number is a 422 that names the field, never
a database overflow."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query
from pydantic import Field

MAX_INT = 2**63 - 1
MAX_PAGE = 500

IdPath = Annotated[int, Path(ge=0, le=MAX_INT, description="A number ≤ 2^63−1.")]
Offset = Annotated[int, Query(ge=0, le=MAX_INT, description="Rows to skip.")]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"Rows to return (≤ {MAX_PAGE}).")]
IdField = Annotated[int, Field(ge=0, le=MAX_INT)]
Text = Annotated[str, Field(max_length=10_000)]
Name = Annotated[str, Field(max_length=200)]
AsField = Annotated[
    str | None,
    Field(
        alias="as",
        max_length=64,
        description="The account to act for: only the operator token may name one of the "
        "node's accounts (the operator; on the devnet a dev account). Any other credential "
        "acts for its own account; naming another is a 403.",
    ),
]
