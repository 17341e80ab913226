"""Retrieval into the prompt: the top-k chunks as numbered context passages, then the question.

Template (passages in retrieval order, best first; each passage's whitespace collapsed to
single spaces, so a passage is one line)::

    Answer the question using the numbered context passages.

    Context:
    [1] {passage 1}
    [2] {passage 2}
    ...

    Question: {question}
    Answer:

With no passages the context block reads ``(none)``. A model served with retrieval on is
given this text as its prompt (the user message, for a chat model) and its answer follows
``Answer:``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from openledger.attribution.rag.index import RagIndex, Retrieved
from openledger.errors import ValidationError

INSTRUCTION = "Answer the question using the numbered context passages."


def render_prompt(question: str, passages: Sequence[str]) -> str:
    """The augmented prompt text for ``question`` and ``passages`` (see the template)."""
    lines = [f"[{n}] {' '.join(p.split())}" for n, p in enumerate(passages, start=1)]
    context = "\n".join(lines) if lines else "(none)"
    return f"{INSTRUCTION}\n\nContext:\n{context}\n\nQuestion: {question.strip()}\nAnswer:"


def check_prompt(prompt: str) -> None:
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValidationError(
            f"The prompt {prompt!r} is empty.",
            field="prompt",
            value=prompt,
            fix="pass the user's question as non-blank text.",
        )


@dataclass(frozen=True)
class AugmentedPrompt:
    """The prompt a retrieval-augmented model sees, and what went into it."""

    text: str
    question: str
    chunks: tuple[Retrieved, ...]
    index_hash: str | None = None
    embedding_model: str | None = None

    @property
    def k(self) -> int:
        return len(self.chunks)


def augment(
    question: str,
    retrieved: Sequence[Retrieved],
    *,
    index_hash: str | None = None,
    embedding_model: str | None = None,
) -> AugmentedPrompt:
    """Put the ``retrieved`` chunks (in the order given) into the prompt for ``question``."""
    check_prompt(question)
    return AugmentedPrompt(
        text=render_prompt(question, [r.chunk.text for r in retrieved]),
        question=question,
        chunks=tuple(retrieved),
        index_hash=index_hash,
        embedding_model=embedding_model,
    )


class Retriever:
    """Retrieval on: ``Retriever(index).augment(prompt, k)`` → :class:`AugmentedPrompt`."""

    def __init__(self, index: RagIndex) -> None:
        self.index = index

    def retrieve(self, prompt: str, k: int) -> list[Retrieved]:
        """The top-``k`` chunks for ``prompt``, best first."""
        check_prompt(prompt)
        return self.index.search(prompt, k)

    def augment(self, prompt: str, k: int) -> AugmentedPrompt:
        """Retrieve the top-``k`` chunks for ``prompt`` and build the augmented prompt."""
        return augment(
            prompt,
            self.retrieve(prompt, k),
            index_hash=self.index.index_hash,
            embedding_model=self.index.embedding_model,
        )
