"""Parse contributed files into normalised :class:`Record` s, with the ingest checks.

Pure apart from reading the given files: no store, no chain. Formats (by extension):

- ``.txt`` / ``.md``: strict UTF-8; paragraphs are separated by blank lines; in ``.md`` a
  heading stays with the paragraph after it and a fenced code block is kept whole;
  paragraphs are packed greedily into records of at most ``chunk_chars`` characters and a
  longer paragraph is split at sentence ends, else at whitespace, else hard.
- ``.jsonl``: one JSON object per non-blank line: ``{"text": ...}``, or ``{"prompt": ...,
  "completion": ...}``, or ``{"messages": [{"role": "system"|"user"|"assistant",
  "content": ...}, ...]}`` with at least one assistant message; other keys are ignored.
- ``.csv``: header row; ``column`` names the text column (default ``text``; without one,
  ``prompt`` and ``completion`` columns make prompt/completion records). Rows whose fields
  are all empty are skipped.
- ``.parquet``: like CSV, plus a ``messages`` column (list of ``{role, content}`` structs).

Every failure is an :class:`IngestError` whose message names the file, the line/row/record
and the rule, e.g. ``notes.jsonl line 7: malformed JSON (Expecting ',' delimiter at column
12). Fix: ...``; ``rule`` is a short id from :data:`RULES`.

Modules: :mod:`.errors` (the error and its rules), :mod:`.files` (file-level checks),
:mod:`.fields` (field values → checked record), :mod:`.text`, :mod:`.jsonl` and
:mod:`.tabular` (one per format); this module dispatches by extension and checks a whole
contribution.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from openledger.datanets.limits import IngestLimits
from openledger.datanets.parsers.errors import RULES, SERVICE_RULES, IngestError, error
from openledger.datanets.parsers.files import check_size, decode, unreadable
from openledger.datanets.parsers.jsonl import parse_jsonl
from openledger.datanets.parsers.tabular import parse_csv, parse_parquet
from openledger.datanets.parsers.text import parse_text, split_text
from openledger.datanets.records import Record
from openledger.errors import ValidationError

__all__ = [
    "RULES",
    "SERVICE_RULES",
    "SUPPORTED_EXTENSIONS",
    "IngestError",
    "check_duplicates",
    "parse_file",
    "parse_files",
    "split_text",
]

SUPPORTED_EXTENSIONS: tuple[str, ...] = (".txt", ".md", ".jsonl", ".csv", ".parquet")

_DEFAULT_LIMITS = IngestLimits()


def parse_file(
    path: Path,
    *,
    limits: IngestLimits = _DEFAULT_LIMITS,
    column: str | None = None,
    display_name: str | None = None,
) -> list[Record]:
    """Parse one file into normalised records (``column`` applies to .csv and .parquet)."""
    path = Path(path)
    name = display_name or path.name
    ext = path.suffix.lower()
    if ext not in SUPPORTED_EXTENSIONS:
        raise error(
            name,
            None,
            "unsupported_format",
            f'"{ext or "no extension"}"; supported: {", ".join(SUPPORTED_EXTENSIONS)}',
            fix="convert it to one of the supported formats (JSON → one object per line in "
            "a .jsonl file; spreadsheets → .csv).",
            value=ext,
        )
    check_size(path, name, limits)
    if ext == ".parquet":
        records = parse_parquet(path, name, limits, column)
    else:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise unreadable(name, exc) from exc
        if len(data) > limits.max_file_bytes:  # it grew after the size check
            check_size(path, name, limits, size=len(data))
        text = decode(data, name)
        if ext == ".jsonl":
            records = parse_jsonl(text, name, limits)
        elif ext == ".csv":
            records = parse_csv(text, name, limits, column)
        else:
            records = parse_text(text, name, limits, markdown=ext == ".md")
    if not records:
        raise error(
            name,
            None,
            "empty_file",
            "no records: the file is empty or holds only blank lines",
            fix="add content to the file, or leave it out of the contribution.",
        )
    return records


def parse_files(
    paths: Iterable[Path],
    *,
    limits: IngestLimits = _DEFAULT_LIMITS,
    column: str | None = None,
) -> list[Record]:
    """Parse the files of one contribution; a record repeated anywhere in it is rejected."""
    records: list[Record] = []
    for path in paths:
        records.extend(parse_file(Path(path), limits=limits, column=column))
    if not records:
        raise ValidationError(
            "A contribution needs at least one file.",
            field="files",
            fix="pass one or more .txt, .md, .jsonl, .csv or .parquet files.",
        )
    check_duplicates(records)
    return records


def check_duplicates(records: Iterable[Record]) -> None:
    """Raise ``duplicate_in_contribution`` for the first record whose hash was seen before."""
    seen: dict[str, Record] = {}
    for record in records:
        first = seen.setdefault(record.sha256, record)
        if first is not record:
            raise error(
                record.source,
                record.location,
                "duplicate_in_contribution",
                f"the same content as {first.source} {first.location} after normalisation",
                fix="remove one of the two copies; each record may appear once.",
                value=record.sha256,
            )
