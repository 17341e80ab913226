"""What the model says about each token of a query, as integers: the fine-tune's *gain* on
each completion token and the base model's *surprisal* of every token.

- gain: ``1 − p_base / p_adapter`` clipped at 0, in 0..GAIN_SCALE. A token the base model
  already predicted as well as the adapter does carries no weight (the contributors did not
  teach it); a token the adapter made ten times more likely carries 0.9 of a token.
- surprisal: ``−log2 p_base`` in sixteenths of a bit (at least 1): how much information a
  token carries. Invented names and facts are surprising, the words around them are not,
  so a document that explains the names of an answer explains more of it than one that
  shares its punctuation.

Both forward passes run in float64 (the model is held in float64), so the same inputs give
the same integers on any machine up to one unit in the last place.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from openledger.attribution.provenance.trace import GAIN_SCALE

SURPRISAL_UNITS = 16  # per bit


@dataclass(frozen=True)
class TokenScores:
    gains: list[int]  # one per completion token, 0..GAIN_SCALE
    surprisal: list[int]  # one per token of prompt + completion (position 0: 1)


def _logps(model: Any, ids: torch.Tensor) -> list[float]:
    """log p(ids[t] | ids[:t]) for t = 1 .. len − 1, float64."""
    logits = model(input_ids=ids).logits[0].double()  # (t, vocab)
    logp = torch.log_softmax(logits[:-1], dim=-1)  # (t - 1, vocab)
    return logp.gather(1, ids[0, 1:, None])[:, 0].tolist()


@torch.no_grad()
def token_scores(model: Any, prompt: Sequence[int], completion: Sequence[int]) -> TokenScores:
    """Gains and surprisal of a query (``model``: a PEFT model in float64)."""
    if not prompt:
        raise ValueError("the prompt needs at least one token (bos)")
    ids = torch.tensor([list(prompt) + list(completion)], dtype=torch.long)
    adapted = _logps(model, ids)
    with model.disable_adapter():
        base = _logps(model, ids)
    start = len(prompt) - 1  # logps[i] is about token i + 1
    gains = [gain(a, b) for a, b in zip(adapted[start:], base[start:], strict=True)]
    return TokenScores(gains, [1] + [surprisal(b) for b in base])


def gain(adapted: float, base: float) -> int:
    """``round(GAIN_SCALE · max(0, 1 − exp(base − adapted)))``."""
    if adapted <= base:
        return 0
    return round(GAIN_SCALE * -math.expm1(base - adapted))


def surprisal(logp: float) -> int:
    """``max(1, round(SURPRISAL_UNITS · −log2 p))``."""
    return max(1, round(-SURPRISAL_UNITS * logp / math.log(2)))
