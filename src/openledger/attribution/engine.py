"""A policy's attribution of exact token ids, from attributors already loaded.

The node (:mod:`openledger.attribution.service`) and a verifier that rebuilt the indexes
from public artefacts (:mod:`openledger.ledger.verification.verify`) both attribute through
:func:`attribute_by_policy`, so the receipt and its recomputation take the same path.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from openledger.attribution.policy import mix
from openledger.attribution.types import Attribution, query_hash

#: single-method policies whose on-chain hash is the index hash itself
PLAIN = ("gradient", "provenance")


class MethodAttributor(Protocol):
    def attribute_ids(
        self, prompt: Sequence[int], completion: Sequence[int], *, top: int = 10
    ) -> Attribution: ...


class SpanAttributor:
    """Span tracing (OLMoTrace style) of the completion's tokens."""

    def __init__(self, index: Any, tokenizer: Any, model_name: str | None = None) -> None:
        self.index = index
        self.tokenizer = tokenizer
        self.model_name = model_name

    def attribute_ids(
        self, prompt: Sequence[int], completion: Sequence[int], *, top: int = 10
    ) -> Attribution:
        return self.index.attribute(
            list(completion), decode=self.tokenizer.decode, model=self.model_name
        )


class RagAttributor:
    """Retrieval for the prompt, credit by context ablation of the completion."""

    def __init__(
        self,
        index: Any,
        model: Any,
        tokenizer: Any,
        *,
        k: int,
        prompt_text: str | None = None,
        model_name: str | None = None,
    ) -> None:
        self.index, self.model, self.tokenizer = index, model, tokenizer
        self.k, self.prompt_text, self.model_name = k, prompt_text, model_name

    def attribute_ids(
        self, prompt: Sequence[int], completion: Sequence[int], *, top: int = 10
    ) -> Attribution:
        from openledger.attribution import rag

        text = self.prompt_text
        if text is None:
            text = self.tokenizer.decode(list(prompt), skip_special_tokens=True)
        answer = self.tokenizer.decode(list(completion), skip_special_tokens=True)
        augmented = rag.Retriever(self.index).augment(text, self.k)
        return rag.attribute(
            self.model, self.tokenizer, augmented, answer, model_name=self.model_name
        )


def attribute_by_policy(
    policy: Mapping[str, float],
    attributors: Mapping[str, MethodAttributor],
    prompt: Sequence[int],
    completion: Sequence[int],
    *,
    top: int = 10,
    model: str | None = None,
    index_hash: str | None = None,
) -> Attribution:
    """Each method's weights, mixed by the policy, with the hash of the tokens attributed."""
    parts = [
        (w, attributors[m].attribute_ids(prompt, completion, top=top))
        for m, w in sorted(policy.items())
    ]
    mixed = mix(parts, model=model, index_hash=index_hash, top=top)
    return dataclasses.replace(mixed, query_hash=query_hash(prompt, completion))


def policy_hash(policy: Mapping[str, float], hashes: Mapping[str, str]) -> str:
    """What goes on chain: the index hash for a provenance- or gradient-only policy, else
    ``0x`` + sha256 of the canonical ``{"indexes": {method: hash}, "policy": policy}``."""
    if list(policy) in ([m] for m in PLAIN):
        return hashes[next(iter(policy))]
    body = json.dumps(
        {"policy": dict(policy), "indexes": {m: hashes[m] for m in sorted(policy)}},
        sort_keys=True,
        separators=(",", ":"),
    )
    return "0x" + hashlib.sha256(body.encode()).hexdigest()
