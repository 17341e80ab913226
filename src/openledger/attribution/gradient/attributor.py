"""Answering "which contributions made this completion likely?" from a gradient index.

A query is one forward + backward pass on (prompt, completion): the gradient of the
completion's summed token loss, projected like the index, preconditioned, and scored
against every indexed example with one float16 matrix-vector product per shard. Scores
add up over checkpoints (TRAK's ensemble); a contribution's score is the sum of its
examples' positive scores; weights are those sums normalised to 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from openledger.attribution.gradient.grads import make_grads, module_shapes
from openledger.attribution.gradient.index import GradientIndex
from openledger.attribution.gradient.loading import (
    load_lora_state,
    lora_state,
    read_checkpoint_tensors,
)
from openledger.attribution.gradient.projection import Projection
from openledger.attribution.types import Attribution, Evidence, positive_shares
from openledger.errors import ValidationError
from openledger.factory.data import IGNORE, encode_pair

EVIDENCE_PER_SHARE = 3


def query_ids(tokenizer: Any, prompt: str, completion: str) -> tuple[list[int], list[int]]:
    """(prompt ids, completion ids) of a query given as text, tokenised exactly as a training
    record is (:func:`~openledger.factory.data.encode_pair`: normalised, ``bos`` before the
    prompt, ``eos`` after the completion)."""
    if not completion or not completion.strip():
        raise ValidationError(
            "The completion is empty: there is nothing to attribute.",
            field="completion",
            value=completion,
            fix="pass the text the model generated.",
        )
    ids, labels = encode_pair(tokenizer, prompt, completion)
    first = next(i for i, label in enumerate(labels) if label != IGNORE)
    return ids[:first], ids[first:]


def fit_query(
    prompt_ids: Sequence[int], completion_ids: Sequence[int], max_len: int
) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """(input_ids (1, t), labels (1, t), notes): ``prompt + completion``, the loss on the
    completion only. Over ``max_len`` the prompt keeps its end (at least half the budget
    when the completion is long) and the completion its beginning; notes say what was cut."""
    p, c = list(prompt_ids), list(completion_ids)
    if not c:
        raise ValidationError(
            "The completion has no tokens: there is nothing to attribute.",
            field="completion",
            value=0,
            fix="pass the tokens the model generated.",
        )
    notes = []
    if len(p) + len(c) > max_len:
        keep_p = min(len(p), max(max_len - len(c), max_len // 2))
        keep_c = max_len - keep_p
        if keep_p < len(p):
            notes.append(f"prompt truncated to its last {keep_p} of {len(p)} tokens")
            p = p[len(p) - keep_p :]
        if keep_c < len(c):
            notes.append(f"completion truncated to its first {keep_c} of {len(c)} tokens")
            c = c[:keep_c]
    ids = torch.tensor([p + c])
    labels = torch.tensor([[IGNORE] * len(p) + c])
    return ids, labels, notes


def query_tensors(
    tokenizer: Any, prompt: str, completion: str, max_len: int
) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """:func:`fit_query` of a query given as text (:func:`query_ids`)."""
    return fit_query(*query_ids(tokenizer, prompt, completion), max_len)


class GradientAttributor:
    """Loaded once per model; ``attribute`` is deterministic for a given input."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        index: GradientIndex,
        *,
        model_name: str | None = None,
        max_len: int | None = None,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.index = index
        self.model_name = model_name
        meta = index.meta
        params = meta["params"]
        shapes = module_shapes(model)
        if [s.name for s in shapes] != meta["modules"]:
            raise ValidationError(
                "The index was built for other LoRA modules than this model has.",
                field="index",
                value=str(index.root),
                fix="rebuild the model's gradient index (replacing this one).",
            )
        proj = meta["projection"]
        self.projection = Projection.for_modules(
            shapes, int(proj["k"]), int(proj["seed"]), int(proj["cap"])
        )
        self.grads = make_grads(model, self.projection, params["loss_reduction"], params["grads"])
        self.max_len = int(max_len or meta.get("max_seq_len") or 512)
        self._published = lora_state(model)
        self._ckpt_tensors: list[dict[str, torch.Tensor] | None] = [
            None if c.get("path") is None else read_checkpoint_tensors(Path(c["path"]))
            for c in meta["checkpoints"]
        ]

    def query_gradients(self, ids: torch.Tensor, labels: torch.Tensor) -> list[np.ndarray]:
        """The projected query gradient under each checkpoint's weights (one thread, as an
        indexed example's: the same bytes on any thread count)."""
        out = []
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            for tensors in self._ckpt_tensors:
                load_lora_state(self.model, tensors if tensors is not None else self._published)
                out.append(self.grads(ids, labels)[0].double().numpy())
        finally:
            torch.set_num_threads(threads)
            if len(self._ckpt_tensors) > 1:
                load_lora_state(self.model, self._published)
        return out

    def query(self, prompt: str, completion: str) -> tuple[list[np.ndarray], list[str]]:
        """The projected query gradient under each checkpoint, and truncation notes."""
        ids, labels, notes = query_tensors(self.tokenizer, prompt, completion, self.max_len)
        return self.query_gradients(ids, labels), notes

    def scores_for(self, qs: list[np.ndarray], *, precondition: bool = True) -> np.ndarray:
        """(N,) score of every indexed example against query gradients ``qs``."""
        total = np.zeros(len(self.index))
        for ck, q in zip(self.index.checkpoints, qs, strict=True):
            total += ck.scores(q, precondition)
        return total

    def example_scores(
        self, prompt: str, completion: str, *, precondition: bool = True
    ) -> tuple[np.ndarray, list[str]]:
        """(N,) score of every indexed example, and truncation notes."""
        qs, notes = self.query(prompt, completion)
        return self.scores_for(qs, precondition=precondition), notes

    def contribution_scores(
        self, scores: np.ndarray, positive_only: bool = True
    ) -> dict[int, float]:
        ids, inverse = self.index.contributions
        values = np.maximum(scores, 0) if positive_only else scores
        sums = np.bincount(inverse, weights=values, minlength=len(ids))
        return {int(c): float(s) for c, s in zip(ids, sums, strict=True)}

    def attribute(
        self, prompt: str, completion: str, *, top: int = 10, precondition: bool = True
    ) -> Attribution:
        """The attribution of a query given as text (tokenised as training records are)."""
        return self.attribute_ids(
            *query_ids(self.tokenizer, prompt, completion), top=top, precondition=precondition
        )

    def attribute_ids(
        self,
        prompt: Sequence[int],
        completion: Sequence[int],
        *,
        top: int = 10,
        precondition: bool = True,
    ) -> Attribution:
        """The attribution of ``completion`` (token ids as generated) after ``prompt``
        (token ids as served, ``bos`` included)."""
        ids, labels, notes = fit_query(prompt, completion, self.max_len)
        scores = self.scores_for(self.query_gradients(ids, labels), precondition=precondition)
        contribution_of = self.index.example_contributions
        positive = np.flatnonzero(scores > 0)
        ranked = positive[np.argsort(-scores[positive], kind="stable")]  # best first
        evidence = [self._evidence(int(i), scores[i]) for i in ranked[:top]]
        # each contribution's best EVIDENCE_PER_SHARE examples, without a Python loop over N
        by_c = ranked[np.argsort(contribution_of[ranked], kind="stable")]
        ids, starts, counts = np.unique(
            contribution_of[by_c], return_index=True, return_counts=True
        )
        per_contribution = {
            int(c): [
                self._evidence(int(i), scores[i]) for i in by_c[s : s + min(n, EVIDENCE_PER_SHARE)]
            ]
            for c, s, n in zip(ids, starts, counts, strict=True)
        }
        shares = positive_shares(
            self.contribution_scores(scores), self.index.contributors, per_contribution
        )
        meta = self.index.meta
        return Attribution(
            method="gradient",
            params={
                "proj_dim": self.projection.k,
                "seed": self.projection.seed,
                "checkpoints": len(meta["checkpoints"]),
                "loss_reduction": meta["params"]["loss_reduction"],
                "damping": meta["params"]["damping"],
                "preconditioned": precondition,
                "n_examples": len(self.index),
            },
            shares=shares,
            evidence=tuple(evidence),
            model=self.model_name,
            index_hash=self.index.index_hash,
            truncated=bool(notes),
            notes=tuple(notes),
        )

    def _evidence(self, i: int, score: float) -> Evidence:
        rows = self.index.example_rows
        return Evidence(
            contribution=int(rows["contribution"][i]),
            score=float(score),
            preview=rows["preview"][i],
            record=int(rows["record"][i]),
            example_id=rows["example_id"][i],
        )
