"""The ingest error, its rule ids and the one way the parsers build it."""

from __future__ import annotations

from typing import Any

from openledger.errors import ValidationError

__all__ = ["RULES", "SERVICE_RULES", "IngestError", "error"]

# rule id -> the words that name it in messages
RULES: dict[str, str] = {
    "unsupported_format": "unsupported format",
    "unreadable_file": "unreadable file",
    "file_too_large": "file too large",
    "not_utf8": "not UTF-8",
    "malformed_json": "malformed JSON",
    "malformed_csv": "malformed CSV",
    "malformed_parquet": "malformed Parquet",
    "missing_field": "missing field",
    "bad_field": "bad field",
    "bad_column": "bad column",
    "empty_record": "empty record",
    "record_too_long": "record too long",
    "empty_file": "empty file",
    "duplicate_in_contribution": "duplicate record in this contribution",
}
# Raised by the datanet service against records already in the datanet, not by the parsers.
SERVICE_RULES: tuple[str, ...] = ("exact_duplicate", "near_duplicate")


class IngestError(ValidationError):
    """A contributed file breaks an ingest rule.

    ``file`` is the file's display name, ``location`` where in it ("line 7", "row 3 (line
    4)", "paragraph 2 (line 5)"; None for the whole file) and ``rule`` a short id (the
    parsers' ids are the keys of :data:`RULES`). The message names all three.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str,
        location: str | None = None,
        rule: str,
        fix: str | None = None,
        field: str | None = None,
        value: Any = None,
    ) -> None:
        self.file = file
        self.location = location
        self.rule = rule
        super().__init__(message, field=field, value=value, fix=fix)

    def to_dict(self) -> dict[str, Any]:
        body = super().to_dict()
        body.update(file=self.file, location=self.location, rule=self.rule)
        return body


def error(
    file: str,
    location: str | None,
    rule: str,
    detail: str,
    *,
    fix: str,
    field: str | None = None,
    value: Any = None,
) -> IngestError:
    """``<file> <location>: <rule in words> (<detail>).`` as an :class:`IngestError`."""
    where = f"{file} {location}" if location else file
    return IngestError(
        f"{where}: {RULES[rule]} ({detail}).",
        file=file,
        location=location,
        rule=rule,
        fix=fix,
        field=field,
        value=value,
    )
