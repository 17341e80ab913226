"""``.csv`` and ``.parquet``: one record per row.

``column`` names the text column (default ``text``; without one, ``prompt`` and
``completion`` columns make prompt/completion records). A CSV file has a header row and its
rows whose fields are all empty are skipped; a Parquet file may instead have a ``messages``
column (a list of ``{role, content}`` structs) for chat records.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

from openledger.datanets.limits import IngestLimits
from openledger.datanets.parsers.errors import IngestError, error
from openledger.datanets.parsers.fields import check_messages, error_at, make_record
from openledger.datanets.parsers.files import unreadable
from openledger.datanets.records import Record

__all__ = ["parse_csv", "parse_parquet"]


# --- .csv ------------------------------------------------------------------------------------


def _choose_columns(
    name: str, columns: Sequence[str], column: str | None, *, messages: bool
) -> tuple[str, ...]:
    """The columns to read: ``(text,)``, ``(prompt, completion)`` or ``("messages",)``."""
    listed = ", ".join(f'"{c}"' for c in columns) or "none"
    if column is not None:
        if column not in columns:
            raise error(
                name,
                None,
                "bad_column",
                f'no column "{column}"; the columns are: {listed}',
                fix="choose one of the columns above.",
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
    raise error(
        name,
        None,
        "bad_column",
        f"no text column chosen and none of {accepted}; the columns are: {listed}",
        fix="choose the column that holds the text.",
        field="column",
    )


def parse_csv(text: str, name: str, limits: IngestLimits, column: str | None) -> list[Record]:
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
            raise error(
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
            raise error(
                name,
                location,
                "missing_field",
                f"the row has {len(row)} fields but the header has {len(header)}; "
                f"no value for {missing}",
                fix="give every row as many fields as the header (quote fields with commas).",
            )
        values = [row[i] for i in indexes]
        if len(values) == 2:
            records.append(
                make_record(name, location, limits, prompt=values[0], completion=values[1])
            )
        else:
            records.append(make_record(name, location, limits, text=values[0]))
    return records


# --- .parquet --------------------------------------------------------------------------------


def parse_parquet(path: Path, name: str, limits: IngestLimits, column: str | None) -> list[Record]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except OSError as exc:
        if isinstance(exc, FileNotFoundError | PermissionError):
            raise unreadable(name, exc) from exc
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
            raise error(
                name,
                None,
                "bad_column",
                f'column "{col}" has type {data.type}, expected string (or, for chat, '
                "a list of {role, content} structs)",
                fix="choose a string column, or write the column as strings.",
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
                raise error(
                    name,
                    location,
                    "missing_field",
                    f'"{col}" is null',
                    fix="fill in the value or drop the row.",
                )
        if chat:
            records.append(
                make_record(
                    name,
                    location,
                    limits,
                    messages=check_messages(values[0], error_at(name, location)),
                )
            )
        elif len(wanted) == 2:
            records.append(
                make_record(name, location, limits, prompt=values[0], completion=values[1])
            )
        else:
            records.append(make_record(name, location, limits, text=values[0]))
    return records


def _bad_parquet(name: str, exc: Exception) -> IngestError:
    return error(
        name,
        None,
        "malformed_parquet",
        str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__,
        fix="write the file again with a Parquet writer (pyarrow, pandas.to_parquet, polars).",
    )
