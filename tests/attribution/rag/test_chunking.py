"""Rows → chunks: the text of each kind, the size bounds, nothing lost, bad rows refused."""

from __future__ import annotations

import pytest

from openledger.attribution.rag.chunking import (
    ChunkingParams,
    chunk_rows,
    row_text,
    split_text,
)
from openledger.errors import ValidationError
from tests.attribution.rag.conftest import ALICE, row


def test_row_text_by_kind() -> None:
    assert row_text(row(0, 1, ALICE, "text", text="Hello there.")) == "Hello there."
    pc = row(1, 1, ALICE, "prompt_completion", prompt="Why?", completion="Because.")
    assert row_text(pc) == "Why?\nBecause."
    chat = row(
        2,
        1,
        ALICE,
        "chat",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi?"},
            {"role": "assistant", "content": "Hello."},
        ],
    )
    assert row_text(chat) == "Be brief.\nHi?\nHello."
    assert row_text(row(3, 1, ALICE, "text", text=None)) == ""


def test_sentences_are_packed_whole_up_to_the_word_limit() -> None:
    text = "One two three. Four five six. Seven eight. Nine ten eleven twelve thirteen."
    assert split_text(text, ChunkingParams(max_words=6)) == [
        "One two three. Four five six.",
        "Seven eight.",
        "Nine ten eleven twelve thirteen.",
    ]


def test_a_long_sentence_is_cut_and_no_word_is_lost() -> None:
    words = [f"w{i}" for i in range(25)]
    text = " ".join(words) + ". Short one.\n\nNew   paragraph\tline"
    params = ChunkingParams(max_words=10, max_chars=1000)
    chunks = split_text(text, params)
    assert [len(c.split()) for c in chunks] == [10, 10, 10]  # 5 + 2 + 3 packed
    assert " ".join(chunks).split() == text.split()


def test_chunks_respect_the_character_limit() -> None:
    text = "x" * 70 + " " + "abc " * 40
    params = ChunkingParams(max_words=100, max_chars=32)
    chunks = split_text(text, params)
    assert all(len(c) <= 32 for c in chunks)
    assert chunks[:3] == ["x" * 32, "x" * 32, "x" * 6 + " abc abc abc abc abc abc"]
    assert "".join(chunks).replace(" ", "") == text.replace(" ", "")


def test_chunk_rows_keeps_the_ids_of_each_row() -> None:
    rows = [
        row(0, 7, ALICE, "text", text="Alpha beta. Gamma delta."),
        row(1, 8, ALICE, "text", text=""),
        row(2, 9, ALICE, "prompt_completion", prompt="Q?", completion="A."),
    ]
    chunks = chunk_rows(rows, ChunkingParams(max_words=2))
    assert [(c.id, c.record, c.part, c.contribution, c.text) for c in chunks] == [
        (0, 0, 0, 7, "Alpha beta."),
        (1, 0, 1, 7, "Gamma delta."),
        (2, 2, 0, 9, "Q? A."),
    ]
    assert chunks[2].sha256 == rows[2]["sha256"] and chunks[2].contributor == ALICE
    assert chunks[1].key == "0:1"


def test_bad_rows_and_parameters_are_refused() -> None:
    bad_kind = row(0, 1, ALICE, "image", text="x")
    with pytest.raises(ValidationError) as err:
        chunk_rows([bad_kind])
    assert err.value.field == "kind" and err.value.value == "image" and err.value.fix
    no_contribution = row(0, 1, ALICE, "text", text="x")
    del no_contribution["contribution"]
    with pytest.raises(ValidationError) as err:
        chunk_rows([no_contribution])
    assert err.value.field == "contribution"
    with pytest.raises(ValidationError) as err:
        chunk_rows([], ChunkingParams(max_words=0))
    assert err.value.field == "max_words" and err.value.value == 0 and "max_words" in err.value.fix
