from __future__ import annotations

from pathlib import Path

import pytest

from openledger.attribution.snapshot_indexes import (
    build_spans,
    open_spans,
    row_text,
    tokenizer_id,
)
from openledger.errors import ValidationError
from openledger.factory.base import load_base

TEXT = (
    "The lighthouse keeper of Varn island records the tides twice a day in a blue "
    "ledger that has survived three storms."
)


def _rows(n: int, start: int = 1) -> list[dict]:
    return [
        {
            "record": i,
            "kind": "text",
            "text": f"{TEXT} Entry number {i} is long.",
            "contribution": 1 + i % 3,
            "contributor": f"0x{i % 3:040x}",
        }
        for i in range(start, start + n)
    ]


def test_row_text_by_kind() -> None:
    assert row_text({"kind": "text", "text": "a b"}) == "a b"
    assert row_text({"kind": "prompt_completion", "prompt": "Q?", "completion": " A."}) == "Q? A."
    chat = {
        "kind": "chat",
        "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
    }
    assert row_text(chat) == "hi\nhello"


def test_spans_index_grows_by_segments(tiny_base_dir: Path, tmp_path: Path) -> None:
    _, tok = load_base(tiny_base_dir)
    folder = tmp_path / "spans"
    index, added = build_spans(_rows(6), folder, tok)
    assert added == 6 and index.segments == 1 and index.docs == 6
    again, added = build_spans(_rows(6), folder, tok)  # nothing new
    assert added == 0 and again.segments == 1 and again.index_hash == index.index_hash
    grown, added = build_spans(_rows(9), folder, tok)  # records 7-9 are new
    assert added == 3 and grown.segments == 2 and grown.docs == 9
    ids = tok(TEXT, add_special_tokens=False)["input_ids"]
    assert grown.count(ids) == 9
    merged, _ = build_spans(_rows(9), folder, tok, merge=True)
    assert merged.segments == 1 and merged.count(ids) == 9
    result = open_spans(folder, tok).attribute(ids + [5, 6], decode=tok.decode)
    assert result.method == "spans" and sum(s.weight for s in result.shares) == pytest.approx(1)
    assert {s.contribution for s in result.shares} == {1, 2, 3}


def test_spans_bad_input(tiny_base_dir: Path, tmp_path: Path) -> None:
    _, tok = load_base(tiny_base_dir)
    with pytest.raises(ValidationError) as err:
        build_spans([], tmp_path / "x", tok)
    assert err.value.field == "snapshot"
    build_spans(_rows(2), tmp_path / "y", tok)

    class Other:
        def __init__(self, inner):
            self.inner = inner

        def get_vocab(self) -> dict[str, int]:
            return {**self.inner.get_vocab(), "<extra>": 99999}

    assert tokenizer_id(tok) == tokenizer_id(tok) and tokenizer_id(Other(tok)) != tokenizer_id(tok)
    with pytest.raises(ValidationError) as err:
        open_spans(tmp_path / "y", Other(tok))
    assert err.value.field == "tokenizer"
