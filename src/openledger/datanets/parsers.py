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
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from openledger.datanets.limits import IngestLimits
from openledger.datanets.normalize import normalize_text
from openledger.datanets.records import ROLES, Record
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

_ACCEPTED_JSONL = (
    '"text", or "prompt" and "completion", or "messages" '
    '(a list of {"role": "system"|"user"|"assistant", "content": "..."})'
)
_FIX_JSONL_FIELDS = (
    'give each line a "text" string, or "prompt" and "completion" strings, or "messages": '
    '[{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}].'
)
_DEFAULT_LIMITS = IngestLimits()


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


def _error(
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


# --- entry points ------------------------------------------------------------------------


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
        raise _error(
            name,
            None,
            "unsupported_format",
            f'"{ext or "no extension"}"; supported: {", ".join(SUPPORTED_EXTENSIONS)}',
            fix="convert it to one of the supported formats (JSON → one object per line in "
            "a .jsonl file; spreadsheets → .csv).",
            value=ext,
        )
    _check_size(path, name, limits)
    if ext == ".parquet":
        records = _parse_parquet(path, name, limits, column)
    else:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise _unreadable(name, exc) from exc
        if len(data) > limits.max_file_bytes:  # it grew after the size check
            _check_size(path, name, limits, size=len(data))
        text = _decode(data, name)
        if ext == ".jsonl":
            records = _parse_jsonl(text, name, limits)
        elif ext == ".csv":
            records = _parse_csv(text, name, limits, column)
        else:
            records = _parse_text(text, name, limits, markdown=ext == ".md")
    if not records:
        raise _error(
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
            raise _error(
                record.source,
                record.location,
                "duplicate_in_contribution",
                f"the same content as {first.source} {first.location} after normalisation",
                fix="remove one of the two copies; each record may appear once.",
                value=record.sha256,
            )


# --- shared checks -------------------------------------------------------------------------


def _unreadable(name: str, exc: OSError) -> IngestError:
    return _error(
        name,
        None,
        "unreadable_file",
        exc.strerror or type(exc).__name__,
        fix="check the path and that it is a readable file.",
    )


def _check_size(path: Path, name: str, limits: IngestLimits, size: int | None = None) -> None:
    try:
        size = path.stat().st_size if size is None else size
    except OSError as exc:
        raise _unreadable(name, exc) from exc
    if not path.is_file():
        raise _error(
            name, None, "unreadable_file", "not a regular file", fix="pass a file, not a folder."
        )
    if size > limits.max_file_bytes:
        raise _error(
            name,
            None,
            "file_too_large",
            f"{size:,} bytes; the per-file cap is {limits.max_file_bytes:,} bytes",
            fix=f"split it into files of at most {limits.max_file_bytes:,} bytes and "
            "contribute them together.",
            value=size,
        )


def _decode(data: bytes, name: str) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        line = data.count(b"\n", 0, exc.start) + 1
        raise _error(
            name,
            f"line {line}",
            "not_utf8",
            f"byte 0x{data[exc.start]:02X} at byte offset {exc.start}, "
            f"byte {exc.start - line_start + 1} of the line: {exc.reason}",
            fix="save the file as UTF-8 (Save As → Encoding: UTF-8, or "
            "`iconv -f WINDOWS-1252 -t UTF-8 in.txt > out.txt`).",
            value=exc.start,
        ) from None
    return text[1:] if text.startswith("\ufeff") else text


def _make(
    name: str,
    location: str,
    limits: IngestLimits,
    *,
    text: str | None = None,
    prompt: str | None = None,
    completion: str | None = None,
    messages: Sequence[tuple[str, str]] | None = None,
) -> Record:
    """Normalise the fields, check emptiness and length, build the record."""

    def empty(what: str) -> IngestError:
        return _error(
            name,
            location,
            "empty_record",
            f"{what} is empty after normalisation (only whitespace or control characters)",
            fix="give it content or remove it.",
        )

    if messages is not None:
        pairs = []
        for i, (role, content) in enumerate(messages, 1):
            content = normalize_text(content)
            if not content:
                raise empty(f"message {i} ({role})")
            pairs.append((role, content))
        record = Record(kind="chat", messages=tuple(pairs), source=name, location=location)
    elif text is not None:
        text = normalize_text(text)
        if not text:
            raise empty("the record")
        record = Record(kind="text", text=text, source=name, location=location)
    else:
        assert prompt is not None and completion is not None
        prompt, completion = normalize_text(prompt), normalize_text(completion)
        if not completion:
            raise empty("the completion")
        record = Record(
            kind="prompt_completion",
            prompt=prompt,
            completion=completion,
            source=name,
            location=location,
        )
    if record.char_len > limits.max_record_chars:
        raise _error(
            name,
            location,
            "record_too_long",
            f"{record.char_len:,} characters; the cap is {limits.max_record_chars:,}",
            fix=f"split it into records of at most {limits.max_record_chars:,} characters "
            "(a .txt or .md file is split into records automatically).",
            value=record.char_len,
        )
    return record


def _at(name: str, location: str) -> Callable[[str, str, str, str], IngestError]:
    """An error factory for :func:`_messages` at ``location`` (plus a suffix)."""

    def err(suffix: str, rule: str, detail: str, fix: str) -> IngestError:
        return _error(name, location + suffix, rule, detail, fix=fix)

    return err


def _type_name(value: Any) -> str:
    return {
        type(None): "null",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def _messages(
    value: Any, err: Callable[[str, str, str, str], IngestError]
) -> list[tuple[str, str]]:
    """Check a chat ``messages`` value; ``err(location_suffix, rule, detail, fix)``."""
    fix_shape = (
        'write messages as [{"role": "user", "content": "..."}, '
        '{"role": "assistant", "content": "..."}].'
    )
    if not isinstance(value, list | tuple) or not value:
        got = "an empty list" if isinstance(value, list | tuple) else _type_name(value)
        raise err("", "bad_field", f'"messages" must be a non-empty list, got {got}', fix_shape)
    pairs = []
    for i, message in enumerate(value, 1):
        where = f", message {i}"
        if not isinstance(message, Mapping):
            raise err(
                where,
                "bad_field",
                f"a message must be an object, got {_type_name(message)}",
                fix_shape,
            )
        for key in ("role", "content"):
            if message.get(key) is None:
                raise err(where, "missing_field", f'no "{key}"', fix_shape)
        role, content = message["role"], message["content"]
        if role not in ROLES:
            raise err(
                where,
                "bad_field",
                f'"role" is {role!r}; accepted roles: {", ".join(ROLES)}',
                f"use one of {', '.join(ROLES)} as the role.",
            )
        if not isinstance(content, str):
            raise err(
                where,
                "bad_field",
                f'"content" must be a string, got {_type_name(content)}',
                fix_shape,
            )
        pairs.append((role, content))
    if not any(role == "assistant" for role, _ in pairs):
        raise err(
            "",
            "missing_field",
            "a chat needs at least one assistant message to learn from",
            'add the reply as {"role": "assistant", "content": "..."}.',
        )
    return pairs


# --- .jsonl --------------------------------------------------------------------------------


def _parse_jsonl(text: str, name: str, limits: IngestLimits) -> list[Record]:
    records = []
    loads = json.loads
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        location = f"line {number}"
        try:
            obj = loads(line)
        except json.JSONDecodeError as exc:
            raise _error(
                name,
                location,
                "malformed_json",
                f"{exc.msg} at column {exc.colno}",
                fix='make each line one complete JSON object, e.g. {"text": "..."}: '
                "double-quoted strings, no trailing commas, no line breaks inside an object.",
            ) from None
        if not isinstance(obj, dict):
            raise _error(
                name,
                location,
                "malformed_json",
                f"expected a JSON object, got {_type_name(obj)}",
                fix=_FIX_JSONL_FIELDS,
            )
        records.append(_jsonl_record(obj, name, location, limits))
    return records


def _jsonl_record(obj: dict[str, Any], name: str, location: str, limits: IngestLimits) -> Record:
    err = _at(name, location)
    if "messages" in obj:
        return _make(name, location, limits, messages=_messages(obj["messages"], err))
    if "prompt" in obj or "completion" in obj:
        for key in ("prompt", "completion"):
            if key not in obj:
                other = "completion" if key == "prompt" else "prompt"
                raise err(
                    "",
                    "missing_field",
                    f'"{other}" without "{key}"; accepted: {_ACCEPTED_JSONL}',
                    _FIX_JSONL_FIELDS,
                )
        fields = {}
        for key in ("prompt", "completion"):
            if not isinstance(obj[key], str):
                raise err(
                    "",
                    "bad_field",
                    f'"{key}" must be a string, got {_type_name(obj[key])}',
                    _FIX_JSONL_FIELDS,
                )
            fields[key] = obj[key]
        return _make(name, location, limits, **fields)
    if "text" in obj:
        if not isinstance(obj["text"], str):
            raise err(
                "",
                "bad_field",
                f'"text" must be a string, got {_type_name(obj["text"])}',
                _FIX_JSONL_FIELDS,
            )
        return _make(name, location, limits, text=obj["text"])
    keys = ", ".join(f'"{k}"' for k in list(obj)[:10]) or "none"
    raise err(
        "",
        "missing_field",
        f"no accepted field (the object's keys: {keys}); accepted: {_ACCEPTED_JSONL}",
        _FIX_JSONL_FIELDS,
    )


# --- .csv ------------------------------------------------------------------------------------


def _choose_columns(
    name: str, columns: Sequence[str], column: str | None, *, messages: bool
) -> tuple[str, ...]:
    """The columns to read: ``(text,)``, ``(prompt, completion)`` or ``("messages",)``."""
    listed = ", ".join(f'"{c}"' for c in columns) or "none"
    if column is not None:
        if column not in columns:
            raise _error(
                name,
                None,
                "bad_column",
                f'no column "{column}"; the columns are: {listed}',
                fix="pass --column with one of the columns above.",
                field="column",
                value=column,
            )
        return (column,)
    if "text" in columns:
        return ("text",)
    if "prompt" in columns and "completion" in columns:
        return ("prompt", "completion")
    if messages and "messages" in columns:
        return ("messages",)
    accepted = '"text", "prompt" and "completion"' + (', or "messages"' if messages else "")
    raise _error(
        name,
        None,
        "bad_column",
        f"no text column chosen and none of {accepted}; the columns are: {listed}",
        fix="pass --column NAME with the column that holds the text.",
        field="column",
    )


def _parse_csv(text: str, name: str, limits: IngestLimits, column: str | None) -> list[Record]:
    if csv.field_size_limit() < limits.max_file_bytes:
        csv.field_size_limit(limits.max_file_bytes)  # a long field is a record_too_long error
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)

    def read() -> list[str] | None:
        start = reader.line_num + 1
        try:
            return next(reader)
        except StopIteration:
            return None
        except csv.Error as exc:
            end = "" if reader.line_num <= start else f" (the row runs to line {reader.line_num})"
            raise _error(
                name,
                f"line {start}",
                "malformed_csv",
                f"{exc}{end}",
                fix="check the quotes in that row: a quoted field ends with a quote, and a "
                'quote inside a quoted field is doubled ("").',
            ) from None

    header = read()
    while header is not None and not any(h.strip() for h in header):
        header = read()
    if header is None:
        return []
    header = [h.strip() for h in header]
    wanted = _choose_columns(name, header, column, messages=False)
    indexes = [header.index(c) for c in wanted]
    records = []
    number = 0
    while True:
        start = reader.line_num + 1
        row = read()
        if row is None:
            break
        number += 1
        if not any(field.strip() for field in row):
            continue
        location = f"row {number} (line {start})"
        if max(indexes) >= len(row):
            missing = ", ".join(
                f'"{c}"' for c, i in zip(wanted, indexes, strict=True) if i >= len(row)
            )
            raise _error(
                name,
                location,
                "missing_field",
                f"the row has {len(row)} fields but the header has {len(header)}; "
                f"no value for {missing}",
                fix="give every row as many fields as the header (quote fields with commas).",
            )
        values = [row[i] for i in indexes]
        if len(values) == 2:
            records.append(_make(name, location, limits, prompt=values[0], completion=values[1]))
        else:
            records.append(_make(name, location, limits, text=values[0]))
    return records


# --- .parquet --------------------------------------------------------------------------------


def _parse_parquet(path: Path, name: str, limits: IngestLimits, column: str | None) -> list[Record]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except OSError as exc:
        if isinstance(exc, FileNotFoundError | PermissionError):
            raise _unreadable(name, exc) from exc
        raise _bad_parquet(name, exc) from None
    except (pa.ArrowException, ValueError) as exc:
        raise _bad_parquet(name, exc) from None
    wanted = _choose_columns(name, table.column_names, column, messages=True)
    columns = []
    chat = False
    for col in wanted:
        data = table.column(col)
        kind = data.type
        if pa.types.is_dictionary(kind):
            kind = kind.value_type
        if pa.types.is_list(kind) or pa.types.is_large_list(kind):
            chat = len(wanted) == 1  # a list column holds chat messages
        is_text = (
            pa.types.is_string(kind)
            or pa.types.is_large_string(kind)
            or pa.types.is_string_view(kind)
        )
        if not is_text and not chat:
            raise _error(
                name,
                None,
                "bad_column",
                f'column "{col}" has type {data.type}, expected string (or, for chat, '
                "a list of {role, content} structs)",
                fix="pass --column with a string column, or write the column as strings.",
                field="column",
                value=col,
            )
        try:
            columns.append(data.to_pylist())
        except (pa.ArrowException, UnicodeDecodeError) as exc:
            raise _bad_parquet(name, exc) from None
    records = []
    for row, values in enumerate(zip(*columns, strict=True), 1):
        location = f"row {row}"
        for col, value in zip(wanted, values, strict=True):
            if value is None:
                raise _error(
                    name,
                    location,
                    "missing_field",
                    f'"{col}" is null',
                    fix="fill in the value or drop the row.",
                )
        if chat:
            records.append(
                _make(name, location, limits, messages=_messages(values[0], _at(name, location)))
            )
        elif len(wanted) == 2:
            records.append(_make(name, location, limits, prompt=values[0], completion=values[1]))
        else:
            records.append(_make(name, location, limits, text=values[0]))
    return records


def _bad_parquet(name: str, exc: Exception) -> IngestError:
    return _error(
        name,
        None,
        "malformed_parquet",
        str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__,
        fix="write the file again with a Parquet writer (pyarrow, pandas.to_parquet, polars).",
    )


# --- .txt / .md ------------------------------------------------------------------------------

_BLANK_LINES = re.compile(r"\n(?:[^\S\n]*\n)+")
_SENTENCE_END = re.compile(r"[.!?…。！？][\"'”’»)\]]*(?=\s)")
_ATX_HEADING = re.compile(r" ?#{1,6}(?: |$)")
_SETEXT_UNDERLINE = re.compile(r" ?(?:=+|-+)")
_FENCE = re.compile(r"^ ?(?:```|~~~)", re.MULTILINE)


def _paragraphs(text: str) -> list[tuple[str, int, int]]:
    """Normalised non-empty paragraphs as ``(text, paragraph number, first line)``."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    out: list[tuple[str, int, int]] = []
    pos = 0
    line = 1
    pieces = [(m.start(), m.end()) for m in _BLANK_LINES.finditer(text)]
    pieces.append((len(text), len(text)))
    for sep_start, sep_end in pieces:
        raw = text[pos:sep_start]
        para = normalize_text(raw)
        if para:
            lead = len(raw) - len(raw.lstrip())
            out.append((para, len(out) + 1, line + raw.count("\n", 0, lead)))
        line += text.count("\n", pos, sep_end)
        pos = sep_end
    return out


def _is_heading(para: str) -> bool:
    lines = para.split("\n")
    if all(_ATX_HEADING.match(line) for line in lines):
        return True
    return (
        len(lines) == 2
        and _SETEXT_UNDERLINE.fullmatch(lines[1]) is not None
        and not _ATX_HEADING.match(lines[0])
    )


def _markdown_units(
    paragraphs: list[tuple[str, int, int]],
) -> list[tuple[str, int, int, int]]:
    """Keep fenced code blocks whole and headings with the paragraph after them.

    Returns ``(text, first paragraph, last paragraph, first line)``.
    """
    blocks: list[tuple[str, int, int, int]] = []
    i = 0
    while i < len(paragraphs):
        text, first, line = paragraphs[i]
        while len(_FENCE.findall(text)) % 2 == 1 and i + 1 < len(paragraphs):
            i += 1
            text = f"{text}\n\n{paragraphs[i][0]}"
        blocks.append((text, first, paragraphs[i][1], line))
        i += 1
    units: list[tuple[str, int, int, int]] = []
    pending: tuple[str, int, int, int] | None = None
    for block in blocks:
        if pending is not None:
            block = (f"{pending[0]}\n\n{block[0]}", pending[1], block[2], pending[3])
            pending = None
        if _is_heading(block[0].rsplit("\n\n", 1)[-1]):
            pending = block
        else:
            units.append(block)
    if pending is not None:
        units.append(pending)
    return units


def split_text(text: str, limit: int) -> list[str]:
    """Split normalised ``text`` into pieces of at most ``limit`` characters.

    Each cut is after the last sentence end that fits, else at the last whitespace that
    fits, else hard (never just before a combining mark).
    """
    pieces = []
    pos, n = 0, len(text)
    while n - pos > limit:
        window = text[pos : pos + limit + 1]
        cut = 0
        for match in _SENTENCE_END.finditer(window, 0, limit + 1):
            if match.end() <= limit:
                cut = match.end()
        if cut == 0:
            cut = max(window.rfind(" ", 0, limit + 1), window.rfind("\n", 0, limit + 1))
        if cut <= 0:
            cut = limit
            while cut > 1 and unicodedata.combining(window[cut]):
                cut -= 1
        piece = window[:cut].strip()
        if piece:
            pieces.append(piece)
        pos += cut
        while pos < n and text[pos] in " \n":
            pos += 1
    tail = text[pos:].strip()
    if tail:
        pieces.append(tail)
    return pieces


def _span(first: int, last: int, line: int) -> str:
    if first == last:
        return f"paragraph {first} (line {line})"
    return f"paragraphs {first}-{last} (line {line})"


def _parse_text(text: str, name: str, limits: IngestLimits, *, markdown: bool) -> list[Record]:
    paragraphs = _paragraphs(text)
    if markdown:
        units = _markdown_units(paragraphs)
    else:
        units = [(t, number, number, line) for t, number, line in paragraphs]
    limit = limits.chunk_chars
    records: list[Record] = []
    packed: list[tuple[str, int, int, int]] = []
    size = 0

    def flush() -> None:
        nonlocal packed, size
        if packed:
            body = "\n\n".join(u[0] for u in packed)
            location = _span(packed[0][1], packed[-1][2], packed[0][3])
            records.append(_make(name, location, limits, text=body))
        packed, size = [], 0

    for unit in units:
        length = len(unit[0])
        if length > limit:
            flush()
            parts = split_text(unit[0], limit)
            for k, part in enumerate(parts, 1):
                where = _span(unit[1], unit[2], unit[3])
                location = where.replace(" (", f", part {k} of {len(parts)} (", 1)
                records.append(_make(name, location, limits, text=part))
            continue
        if packed and size + 2 + length > limit:
            flush()
        packed.append(unit)
        size = length if len(packed) == 1 else size + 2 + length
    flush()
    return records
