"""A model's provenance index: the suffix array of the examples its adapter was trained on,
token for token as the trainer saw them (``bos``, prompt, completion, ``eos``), and the
parameters a query uses.

Layout (``<home>/attribution/<model>/provenance/``)::

    spans/        the span index of the training examples (attribution.spans format)
    meta.json     method, parameters, the model it belongs to, the span index hash, and
                  ``index_hash`` = sha256 of the canonical rest of meta.json

The index is a deterministic function of the snapshot, the training split and the
tokenizer: anyone holding them rebuilds the same ``index_hash``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from openledger.attribution.provenance.trace import (
    DEFAULT_MAX_DOCS,
    DEFAULT_MIN_LEN,
    DEFAULT_SLACK,
)
from openledger.attribution.spans import Document, SpanIndex
from openledger.attribution.spans import build_index as build_span_index
from openledger.errors import NotFoundError, ValidationError
from openledger.factory.data import Example
from openledger.fsutil import write_atomic

METHOD = "provenance"
FORMAT = 1
META = "meta.json"
SPANS = "spans"


@dataclass(frozen=True)
class ProvenanceParams:
    """What a query of the index does (stored in meta.json, so part of the index hash)."""

    min_len: int = DEFAULT_MIN_LEN
    max_docs: int = DEFAULT_MAX_DOCS
    slack: str = str(DEFAULT_SLACK)  # a fraction, "1/5"

    def validate(self) -> ProvenanceParams:
        try:
            slack = Fraction(self.slack)
        except (ValueError, ZeroDivisionError):
            slack = Fraction(-1)
        checks = [
            ("min_len", isinstance(self.min_len, int) and self.min_len >= 1, "an integer ≥ 1"),
            ("max_docs", isinstance(self.max_docs, int) and self.max_docs >= 1, "an integer ≥ 1"),
            ("slack", 0 <= slack < 1, "a fraction in [0, 1) such as 1/5"),
        ]
        for name, ok, rule in checks:
            if not ok:
                raise ValidationError(
                    f"Provenance parameter {name}={getattr(self, name)!r} must be {rule}.",
                    field=name,
                    value=getattr(self, name),
                    fix=f"pass {name} as {rule}.",
                )
        return self

    @property
    def slack_fraction(self) -> Fraction:
        return Fraction(self.slack)


def canonical(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def example_documents(examples: Sequence[Example]) -> list[Document]:
    """One span document per training example: its record, contribution and tokens."""
    return [Document(e.record, e.contribution, e.contributor, list(e.input_ids)) for e in examples]


def build(
    examples: Sequence[Example],
    folder: Path,
    *,
    vocab_size: int,
    tokenizer_id: str,
    identity: Mapping[str, Any],
    params: ProvenanceParams | None = None,
) -> dict[str, Any]:
    """Build the index into ``folder`` (replacing what is there); its meta."""
    params = (params or ProvenanceParams()).validate()
    if not examples:
        raise ValidationError(
            "The model has no training examples to index.",
            field="examples",
            value=0,
            fix="train the model on a snapshot with records first.",
        )
    folder = Path(folder)
    tmp = folder.with_name(folder.name + ".building")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    spans = build_span_index(
        example_documents(examples),
        tmp / SPANS,
        vocab_size=vocab_size,
        tokenizer_id=tokenizer_id,
    )
    body = {
        "method": METHOD,
        "format": FORMAT,
        "params": asdict(params),
        "identity": dict(identity),
        "tokenizer": tokenizer_id,
        "span_index_hash": spans.index_hash,
        "n_examples": len(examples),
        "records": [e.record for e in examples],
    }
    meta = {**body, "index_hash": "0x" + hashlib.sha256(canonical(body)).hexdigest()}
    write_atomic(tmp / META, json.dumps(meta, indent=1, sort_keys=True))
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)
    return meta


class ProvenanceIndex:
    """A built index, opened read-only."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        path = self.folder / META
        if not path.exists():
            raise NotFoundError(
                f"No provenance index at {self.folder}.",
                field="index",
                value=str(self.folder),
                fix="build the model's provenance attribution index first.",
            )
        self.meta: dict[str, Any] = json.loads(path.read_text())
        self.params = ProvenanceParams(**self.meta["params"]).validate()
        self.spans = SpanIndex.open(self.folder / SPANS, expect_tokenizer=self.meta["tokenizer"])

    @property
    def index_hash(self) -> str:
        return str(self.meta["index_hash"])

    def check(self) -> None:
        """The meta's hash and the span index's files are what they say they are."""
        body = {k: v for k, v in self.meta.items() if k != "index_hash"}
        SpanIndex.open(self.folder / SPANS, verify=True)
        if "0x" + hashlib.sha256(canonical(body)).hexdigest() != self.index_hash:
            raise self._altered("does not match its index_hash")
        if self.spans.index_hash != self.meta["span_index_hash"]:
            raise self._altered("holds another span index than its meta.json names")

    def _altered(self, what: str) -> ValidationError:
        return ValidationError(
            f"The provenance index at {self.folder} {what}.",
            field="index",
            value=str(self.folder),
            fix="rebuild the model's provenance index (replacing this one).",
        )
