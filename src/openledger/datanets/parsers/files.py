"""File-level ingest checks: readable, a regular file, within the size cap, UTF-8."""

from __future__ import annotations

from pathlib import Path

from openledger.datanets.limits import IngestLimits
from openledger.datanets.parsers.errors import IngestError, error

__all__ = ["check_size", "decode", "unreadable"]


def unreadable(name: str, exc: OSError) -> IngestError:
    return error(
        name,
        None,
        "unreadable_file",
        exc.strerror or type(exc).__name__,
        fix="check the path and that it is a readable file.",
    )


def check_size(path: Path, name: str, limits: IngestLimits, size: int | None = None) -> None:
    try:
        size = path.stat().st_size if size is None else size
    except OSError as exc:
        raise unreadable(name, exc) from exc
    if not path.is_file():
        raise error(
            name, None, "unreadable_file", "not a regular file", fix="pass a file, not a folder."
        )
    if size > limits.max_file_bytes:
        raise error(
            name,
            None,
            "file_too_large",
            f"{size:,} bytes; the per-file cap is {limits.max_file_bytes:,} bytes",
            fix=f"split it into files of at most {limits.max_file_bytes:,} bytes and "
            "contribute them together.",
            value=size,
        )


def decode(data: bytes, name: str) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        line = data.count(b"\n", 0, exc.start) + 1
        raise error(
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
