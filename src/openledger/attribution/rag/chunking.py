"""Snapshot rows → chunks of bounded size, each keeping the ids of the row it came from.

A row's text is, by its ``kind``:

- ``text``: ``text``;
- ``prompt_completion``: ``prompt``, a newline, ``completion``;
- ``chat``: the messages' contents, one per line (roles are left out).

Chunking rule (:func:`split_text`): the text is split into words (runs of non-whitespace)
and sentences (a sentence ends after a word ending in ``.``, ``!`` or ``?``, possibly
followed by closing quotes or brackets, or at a line break). Whole sentences are packed,
in order, into a chunk while it holds at most ``max_words`` words and ``max_chars``
characters; a sentence longer than that is cut into pieces of at most ``max_words`` words
(and a single word longer than ``max_chars`` into pieces of ``max_chars`` characters).
Chunks do not overlap: every word of a row is in exactly one chunk, so a chunk's credit
belongs to exactly one record. A chunk's text is its words joined by single spaces.

The defaults (80 words, 600 characters) stay below the embedding model's 256-wordpiece
limit (English runs at about 1.3 wordpieces per word), so no chunk is silently cut when
it is embedded, and leave room for several chunks in a small model's context.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from openledger.errors import ValidationError

KINDS = ("text", "prompt_completion", "chat")
#: The fields every row needs besides its text (see ``openledger.datanets.snapshots.SCHEMA``).
ROW_FIELDS = ("record", "sha256", "kind", "contribution", "contributor")
_SENTENCE_END = re.compile(r"[.!?][\"'”’)\]]*$")


@dataclass(frozen=True)
class ChunkingParams:
    """How rows are cut into chunks (saved in the index's meta.json)."""

    max_words: int = 80
    max_chars: int = 600

    def validate(self) -> None:
        for name, value, least in (
            ("max_words", self.max_words, 1),
            ("max_chars", self.max_chars, 16),
        ):
            if not isinstance(value, int) or value < least:
                raise ValidationError(
                    f"chunking {name}={value!r} is invalid: it must be an integer ≥ {least}.",
                    field=name,
                    value=value,
                    fix=f"pass {name} ≥ {least} (default {getattr(ChunkingParams, name)}).",
                )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Chunk:
    """One retrievable passage and the snapshot row it came from.

    ``id`` is the chunk's position in the index (its FAISS id); ``part`` its position
    within the record.
    """

    id: int
    record: int
    part: int
    contribution: int
    contributor: str
    sha256: str
    text: str

    @property
    def key(self) -> str:
        """A readable id: ``record:part``."""
        return f"{self.record}:{self.part}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Chunk:
        return cls(
            id=int(d["id"]),
            record=int(d["record"]),
            part=int(d["part"]),
            contribution=int(d["contribution"]),
            contributor=str(d["contributor"]),
            sha256=str(d["sha256"]),
            text=str(d["text"]),
        )


def row_text(row: Mapping[str, Any]) -> str:
    """The text of a snapshot row that gets chunked (see the module docstring)."""
    kind = row.get("kind")
    if kind == "text":
        return row.get("text") or ""
    if kind == "prompt_completion":
        return "\n".join(p for p in (row.get("prompt"), row.get("completion")) if p)
    if kind == "chat":
        contents = (_message_content(m) for m in row.get("messages") or ())
        return "\n".join(c for c in contents if c)
    raise ValidationError(
        f"Snapshot row {row.get('record')!r} has kind {kind!r}, which cannot be indexed.",
        field="kind",
        value=kind,
        fix=f"index rows of a kind in {', '.join(KINDS)} (snapshot rows always are).",
    )


def _message_content(message: Any) -> str:
    if isinstance(message, Mapping):
        return str(message.get("content") or "")
    if isinstance(message, list | tuple) and len(message) == 2:
        return str(message[1] or "")
    return ""


def _sentences(text: str) -> Iterator[list[str]]:
    for line in text.splitlines():
        sentence: list[str] = []
        for word in line.split():
            sentence.append(word)
            if _SENTENCE_END.search(word):
                yield sentence
                sentence = []
        if sentence:
            yield sentence


def _pieces(sentence: list[str], params: ChunkingParams) -> Iterator[list[str]]:
    """Cut one sentence into runs that each fit a chunk on their own."""
    words = [
        w[i : i + params.max_chars] for w in sentence for i in range(0, len(w), params.max_chars)
    ]
    run: list[str] = []
    chars = 0
    for word in words:
        extra = len(word) + (1 if run else 0)
        if run and (len(run) >= params.max_words or chars + extra > params.max_chars):
            yield run
            run, chars, extra = [], 0, len(word)
        run.append(word)
        chars += extra
    if run:
        yield run


def split_text(text: str, params: ChunkingParams = ChunkingParams()) -> list[str]:
    """Cut ``text`` into chunk texts by the rule in the module docstring."""
    chunks: list[str] = []
    current: list[str] = []
    chars = 0
    for sentence in _sentences(text):
        for piece in _pieces(sentence, params):
            size = sum(len(w) for w in piece) + len(piece) - 1
            extra = size + (1 if current else 0)
            if current and (
                len(current) + len(piece) > params.max_words or chars + extra > params.max_chars
            ):
                chunks.append(" ".join(current))
                current, chars, extra = [], 0, size
            current.extend(piece)
            chars += extra
    if current:
        chunks.append(" ".join(current))
    return chunks


def chunk_rows(
    rows: Iterable[Mapping[str, Any]],
    params: ChunkingParams = ChunkingParams(),
) -> list[Chunk]:
    """All chunks of ``rows`` in row order, numbered from 0 (their index ids).

    Rows without text give no chunk.
    """
    params.validate()
    chunks: list[Chunk] = []
    for row in rows:
        missing = [f for f in ROW_FIELDS if row.get(f) is None]
        if missing:
            raise ValidationError(
                f"Snapshot row {row.get('record')!r} has no {missing[0]!r}.",
                field=missing[0],
                value=None,
                fix="pass the rows of a snapshot (SnapshotService.table(...).to_pylist()), "
                f"which all have {', '.join(ROW_FIELDS)}.",
            )
        for part, text in enumerate(split_text(row_text(row), params)):
            chunks.append(
                Chunk(
                    id=len(chunks),
                    record=int(row["record"]),
                    part=part,
                    contribution=int(row["contribution"]),
                    contributor=str(row["contributor"]),
                    sha256=str(row["sha256"]),
                    text=text,
                )
            )
    return chunks
