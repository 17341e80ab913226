"""Retrieval into the prompt: the documented template, and Retriever.augment."""

from __future__ import annotations

import pytest

from openledger.attribution.rag import RagIndex, Retriever, augment, render_prompt
from openledger.errors import ValidationError

QUESTION = "Which planet has the longest day?"


def test_template_numbers_the_passages_then_asks() -> None:
    text = render_prompt(" Why? ", ["First  passage\nwith a break.", "Second."])
    assert text == (
        "Answer the question using the numbered context passages.\n\n"
        "Context:\n[1] First passage with a break.\n[2] Second.\n\n"
        "Question: Why?\nAnswer:"
    )
    assert "Context:\n(none)\n\n" in render_prompt("Why?", [])


def test_retriever_puts_the_top_k_chunks_into_the_prompt(sample_index: RagIndex) -> None:
    augmented = Retriever(sample_index).augment(QUESTION, 3)
    assert augmented.k == 3 and augmented.question == QUESTION
    assert augmented.chunks == tuple(sample_index.search(QUESTION, 3))
    assert augmented.text == render_prompt(QUESTION, [r.chunk.text for r in augmented.chunks])
    assert (
        augmented.text.index("[1] ")
        < augmented.text.index("[3] ")
        < augmented.text.index(f"Question: {QUESTION}")
    )
    assert "Venus" in augmented.text.split("[2] ")[0]
    assert augmented.index_hash == sample_index.index_hash
    assert augmented.embedding_model == sample_index.embedding_model


def test_bad_prompt_or_k_is_refused(sample_index: RagIndex) -> None:
    retriever = Retriever(sample_index)
    with pytest.raises(ValidationError) as err:
        retriever.augment(" \n", 2)
    assert err.value.field == "prompt" and err.value.fix
    with pytest.raises(ValidationError) as err:
        retriever.augment(QUESTION, 0)
    assert err.value.field == "k" and err.value.value == 0
    with pytest.raises(ValidationError):
        augment("", [])
