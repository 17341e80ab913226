"""``.txt`` / ``.md``: one record per paragraph.

Paragraphs are separated by blank lines; paragraphs shorter than ``pack_chars`` are joined
with the following ones until the record has that many characters (never beyond
``chunk_chars``), so records are small enough for near-duplicate checks and attribution to
name the passage that matters; in ``.md`` a heading stays with the paragraph
after it and a fenced code block is kept whole; a paragraph longer than the limit is split
by :func:`split_text`.
"""

from __future__ import annotations

import re
import unicodedata

from openledger.datanets.limits import IngestLimits
from openledger.datanets.normalize import normalize_text
from openledger.datanets.parsers.fields import make_record
from openledger.datanets.records import Record

__all__ = ["parse_text", "split_text"]

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


def parse_text(text: str, name: str, limits: IngestLimits, *, markdown: bool) -> list[Record]:
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
            records.append(make_record(name, location, limits, text=body))
        packed, size = [], 0

    for unit in units:
        length = len(unit[0])
        if length > limit:
            flush()
            parts = split_text(unit[0], limit)
            for k, part in enumerate(parts, 1):
                where = _span(unit[1], unit[2], unit[3])
                location = where.replace(" (", f", part {k} of {len(parts)} (", 1)
                records.append(make_record(name, location, limits, text=part))
            continue
        if packed and (size >= limits.pack_chars or size + 2 + length > limit):
            flush()
        packed.append(unit)
        size = length if len(packed) == 1 else size + 2 + length
    flush()
    return records
