"""Span and retrieval indexes of snapshot rows (for a model's training snapshot, or for a
datanet as it grows).

A datanet's span index grows by segments: each new snapshot version adds the records no
earlier version held (``spans-records.json`` beside the index lists what is in it), and
``merge`` compacts the segments.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from openledger.attribution.spans import Document, SpanIndex
from openledger.attribution.spans import build_index as build_spans_index
from openledger.errors import ValidationError
from openledger.fsutil import write_atomic


def row_text(row: Mapping[str, Any]) -> str:
    """The text of a snapshot row as a model would have read it."""
    kind = row.get("kind")
    if kind == "prompt_completion":
        return f"{row.get('prompt') or ''}{row.get('completion') or ''}"
    if kind == "chat":
        return "\n".join(str(m.get("content") or "") for m in row.get("messages") or [])
    return str(row.get("text") or "")


def tokenizer_id(tokenizer: Any) -> str:
    """A short fingerprint of a tokenizer's vocabulary (ids → strings) and class."""
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])
    digest = hashlib.sha256(json.dumps([type(tokenizer).__name__, vocab]).encode()).hexdigest()
    return f"{type(tokenizer).__name__}:{len(vocab)}:{digest[:16]}"


def span_documents(rows: Iterable[Mapping[str, Any]], tokenizer: Any) -> list[Document]:
    docs = []
    for row in rows:
        ids = tokenizer(row_text(row), add_special_tokens=False)["input_ids"]
        if ids:
            docs.append(
                Document(int(row["record"]), int(row["contribution"]), str(row["contributor"]), ids)
            )
    return docs


def _vocab_size(tokenizer: Any) -> int:
    return max(len(tokenizer), max(tokenizer.get_vocab().values()) + 1)


def _records_path(folder: Path) -> Path:
    return folder.parent / f"{folder.name}-records.json"


def build_spans(
    rows: list[Mapping[str, Any]],
    folder: Path,
    tokenizer: Any,
    *,
    merge: bool = False,
    force: bool = False,
) -> tuple[SpanIndex, int]:
    """Create the span index in ``folder`` or add the rows it lacks as a new segment;
    returns (index, documents added)."""
    if not rows:
        raise ValidationError(
            "The snapshot is empty: there is nothing to index.",
            field="snapshot",
            value=0,
            fix="approve some contributions and take a new snapshot first.",
        )
    tid = tokenizer_id(tokenizer)
    records = _records_path(folder)
    if force or not (folder / "meta.json").exists():
        docs = span_documents(rows, tokenizer)
        index = build_spans_index(
            docs, folder, vocab_size=_vocab_size(tokenizer), tokenizer_id=tid, overwrite=True
        )
        write_atomic(records, json.dumps(sorted(d.id for d in docs)))
        return index, len(docs)
    index = SpanIndex.open(folder, expect_tokenizer=tid)
    have = set(json.loads(records.read_text())) if records.exists() else set()
    new = span_documents([r for r in rows if int(r["record"]) not in have], tokenizer)
    if new:
        index.add_segment(new)
        write_atomic(records, json.dumps(sorted(have | {d.id for d in new})))
    if merge:
        index.merge()
    return index, len(new)


def build_training_spans(
    examples: Sequence[Any], folder: Path, tokenizer: Any, *, force: bool = False
) -> SpanIndex:
    """The span index of a model's training examples, token for token as trained (``bos``,
    prompt, completion, ``eos``); rebuilt when the examples changed or ``force``."""
    from openledger.attribution.provenance import example_documents

    docs = example_documents(examples)
    records = _records_path(folder)
    want = [d.id for d in docs]
    fresh = not force and (folder / "meta.json").exists() and records.exists()
    if fresh and json.loads(records.read_text()) == want:
        return SpanIndex.open(folder, expect_tokenizer=tokenizer_id(tokenizer))
    index = build_spans_index(
        docs,
        folder,
        vocab_size=_vocab_size(tokenizer),
        tokenizer_id=tokenizer_id(tokenizer),
        overwrite=True,
    )
    write_atomic(records, json.dumps(want))
    return index


def open_spans(folder: Path, tokenizer: Any) -> SpanIndex:
    return SpanIndex.open(folder, expect_tokenizer=tokenizer_id(tokenizer))
