"""Attribution by context ablation: how much less likely the answer is without each chunk.

For an augmented prompt with chunks ``1..k`` and the model's answer::

    logp(S)  = Σ_t log p(answer_t | prompt(S), answer_<t)     (answer tokens only)
    drop_i   = logp({1..k}) − logp({1..k} \\ {i})
    weight_i = max(drop_i, 0) / Σ_j max(drop_j, 0)            (0 for every chunk if no drop > 0)

``prompt(S)`` is the template of :mod:`openledger.attribution.rag.prompt` with the chunks of
``S`` in their retrieval order, renumbered: exactly the prompt the model would have seen had
chunk ``i`` not been retrieved. A contribution's weight is the sum of its chunks' weights;
what is not attributed (all of it, when no chunk helps) goes to ``unattributed``.

The ``k + 1`` sequences (all chunks, then each left out) run in one forward pass: each is
``context + answer``, LEFT-padded to the longest, with an attention mask that hides the
padding and position ids that count real tokens only (``cumsum(mask) − 1``), so every row
sees the same positions as when it runs alone; the answer is the last ``len(answer)``
tokens of every row, so only the last ``len(answer) + 1`` logits are computed. ``batch_size``
splits the rows into several passes (``1`` is the one-after-another baseline).

The answer is scored exactly as given: pass the text the model generated after the prompt
(for a plain model usually with its leading space). The context and the answer are
tokenised separately and concatenated, so the answer's tokens are the same in every row.

If the prompt with all chunks plus the answer is longer than the model's maximum length:
an answer longer than half of it keeps its first half; then the passages are cut to a
common token cap (longest first, "water-filling") until it fits; if the passages are gone
and it still does not fit, the answer keeps its first tokens that do. The result then says
``truncated=True`` and the notes say how.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from openledger.attribution.rag.index import Retrieved
from openledger.attribution.rag.prompt import AugmentedPrompt, check_prompt, render_prompt
from openledger.attribution.types import Attribution, Evidence, positive_shares, preview
from openledger.errors import ValidationError

METHOD = "rag"
#: A tokenizer's ``model_max_length`` above this means "not set".
_UNSET_MAX_LENGTH = 10**9


@dataclass(frozen=True)
class Ablation:
    """The answer's log-probability with all chunks and with each chunk left out."""

    logp_all: float
    logp_without: tuple[float, ...]
    answer_tokens: int
    max_length: int
    truncated: bool = False
    notes: tuple[str, ...] = ()

    @property
    def drops(self) -> tuple[float, ...]:
        """``logp_all − logp_without[i]`` for each chunk (positive: the chunk helped)."""
        return tuple(self.logp_all - x for x in self.logp_without)

    @property
    def weights(self) -> tuple[float, ...]:
        """Each chunk's weight: its positive drop over the sum of positive drops."""
        return chunk_weights(self.drops)


def chunk_weights(drops: Sequence[float]) -> tuple[float, ...]:
    """Positive drops normalised to sum to 1; drops ≤ 0 (or NaN) get 0."""
    positive = [d if d > 0 and math.isfinite(d) else 0.0 for d in drops]
    total = math.fsum(positive)
    return tuple(p / total if total > 0 else 0.0 for p in positive)


# ------------------------------------------------------------------ forward passes


@functools.cache
def _accepts_logits_to_keep(model_class: type) -> bool:
    return "logits_to_keep" in inspect.signature(model_class.forward).parameters


def _pad_id(model: Any) -> int:
    pad = getattr(model.config, "pad_token_id", None)
    if pad is None:
        pad = getattr(model.config, "eos_token_id", None)
    if isinstance(pad, list | tuple):
        pad = pad[0] if pad else None
    return int(pad) if pad is not None else 0


def _batch_logprobs(
    model: Any, contexts: Sequence[Sequence[int]], answer: Sequence[int]
) -> list[float]:
    n, a = len(contexts), len(answer)
    width = max(len(c) for c in contexts) + a
    device = next(model.parameters()).device
    ids = torch.full((n, width), _pad_id(model), dtype=torch.long)
    mask = torch.zeros((n, width), dtype=torch.long)
    for row, context in enumerate(contexts):
        seq = list(context) + list(answer)
        ids[row, width - len(seq) :] = torch.tensor(seq, dtype=torch.long)
        mask[row, width - len(seq) :] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    kwargs: dict[str, Any] = {
        "input_ids": ids.to(device),
        "attention_mask": mask.to(device),
        "position_ids": positions.to(device),
        "use_cache": False,
    }
    if _accepts_logits_to_keep(type(model)):
        kwargs["logits_to_keep"] = a + 1
    logits = model(**kwargs).logits[:, -(a + 1) : -1, :]
    logp = torch.log_softmax(logits.float(), dim=-1)
    target = torch.tensor(list(answer), dtype=torch.long, device=logp.device).expand(n, a)
    picked = logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)
    return picked.double().sum(-1).tolist()


def answer_logprobs(
    model: Any,
    contexts: Sequence[Sequence[int]],
    answer: Sequence[int],
    *,
    batch_size: int | None = None,
) -> list[float]:
    """``Σ log p(answer | context)`` for each context (token ids), in natural log.

    Rows run ``batch_size`` at a time (``None``: all in one padded forward pass).
    """
    if not answer:
        raise ValidationError(
            "The answer has no tokens.",
            field="answer",
            value="",
            fix="pass the non-empty text the model generated.",
        )
    if any(not c for c in contexts):
        raise ValidationError(
            "A context has no tokens: the first answer token would have nothing to follow.",
            field="context",
            value=0,
            fix="tokenise the prompt with the tokenizer's special tokens (e.g. bos).",
        )
    if batch_size is not None and (isinstance(batch_size, bool) or batch_size < 1):
        raise ValidationError(
            f"batch_size={batch_size!r} is invalid: it must be ≥ 1 or None (one pass).",
            field="batch_size",
            value=batch_size,
            fix="pass batch_size=None to run all rows in one forward pass.",
        )
    step = batch_size or max(1, len(contexts))
    out: list[float] = []
    with torch.inference_mode():
        for start in range(0, len(contexts), step):
            out.extend(_batch_logprobs(model, contexts[start : start + step], answer))
    return out


# ------------------------------------------------------------------ tokenising, fitting


def model_max_length(model: Any, tokenizer: Any) -> int:
    """The longest sequence the model takes: its position limit, or the tokenizer's if lower."""
    limits = [
        getattr(model.config, "max_position_embeddings", None),
        getattr(tokenizer, "model_max_length", None),
    ]
    usable = [int(x) for x in limits if isinstance(x, int) and 0 < x < _UNSET_MAX_LENGTH]
    if not usable:
        raise ValidationError(
            "Neither the model config nor the tokenizer says how long a sequence may be.",
            field="max_length",
            value=None,
            fix="pass max_length=... (the model's context length).",
        )
    return min(usable)


def context_encoder(tokenizer: Any, *, chat: bool = False) -> Callable[[str], list[int]]:
    """Prompt text → the token ids the model sees before the answer.

    Plain: the tokenizer's special tokens added (e.g. bos). Chat: the text as the user
    message of the tokenizer's chat template (the factory's default template if it has
    none), with the generation prompt.
    """
    if not chat:
        return lambda text: _ids(tokenizer, text, special=True)
    from openledger.factory.data import render_chat

    def encode(text: str) -> list[int]:
        rendered = render_chat(tokenizer, [{"role": "user", "content": text}])
        return _ids(tokenizer, rendered, special=False)

    return encode


def _ids(tokenizer: Any, text: str, *, special: bool) -> list[int]:
    # verbose=False: texts longer than the model are expected here (they get cut).
    return list(tokenizer(text, add_special_tokens=special, verbose=False)["input_ids"])


def water_level(lengths: Sequence[int], budget: int) -> int:
    """The largest cap ``L`` with ``Σ min(n, L) ≤ budget``."""
    lo, hi = 0, max(lengths, default=0)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if sum(min(n, mid) for n in lengths) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo


def fit_passages(
    question: str,
    passages: Sequence[str],
    answer_len: int,
    max_length: int,
    encode: Callable[[str], list[int]],
    tokenizer: Any,
) -> tuple[list[str], list[int], tuple[str, ...]]:
    """Cut the passages to a common token cap until prompt + answer fit ``max_length``.

    Returns the passages, the full context's token ids and notes (empty if nothing was cut).
    """
    texts = [" ".join(p.split()) for p in passages]
    pieces = [_ids(tokenizer, t, special=False) for t in texts]
    before = [len(p) for p in pieces]
    context = encode(render_prompt(question, texts))
    cap = None
    # Each round removes at least the excess from the passages, so the loop ends.
    while len(context) + answer_len > max_length and any(pieces):
        excess = len(context) + answer_len - max_length
        lengths = [len(p) for p in pieces]
        cap = water_level(lengths, max(0, sum(lengths) - excess))
        pieces = [p[:cap] for p in pieces]
        texts = [tokenizer.decode(p) if p else "" for p in pieces]
        context = encode(render_prompt(question, texts))
    if cap is None:
        return texts, context, ()
    note = (
        f"the {len(texts)} context passages were cut to at most {cap} tokens each "
        f"(they had {', '.join(map(str, before))}) to fit the model's maximum length of "
        f"{max_length} tokens"
    )
    return texts, context, (note,)


def context_ablation(
    model: Any,
    tokenizer: Any,
    question: str,
    passages: Sequence[str],
    answer: str,
    *,
    chat: bool = False,
    batch_size: int | None = None,
    max_length: int | None = None,
) -> Ablation:
    """The answer's log-probability with all ``passages`` and with each one left out."""
    check_prompt(question)
    if not isinstance(answer, str) or not answer.strip():
        raise ValidationError(
            f"The answer {answer!r} is empty: there is nothing to attribute.",
            field="answer",
            value=answer,
            fix="pass the non-empty text the model generated for the prompt.",
        )
    if not passages:
        raise ValidationError(
            "No retrieved chunks: context ablation needs at least one.",
            field="chunks",
            value=0,
            fix="retrieve with k ≥ 1 from a non-empty index.",
        )
    limit = max_length or model_max_length(model, tokenizer)
    encode = context_encoder(tokenizer, chat=chat)
    answer_ids = _ids(tokenizer, answer, special=False)
    notes: tuple[str, ...] = ()
    half = max(1, limit // 2)
    if (
        len(answer_ids) > half
        and len(encode(render_prompt(question, passages))) + len(answer_ids) > limit
    ):
        notes += (_answer_note(len(answer_ids), half, limit),)
        answer_ids = answer_ids[:half]
    texts, full, cut = fit_passages(question, passages, len(answer_ids), limit, encode, tokenizer)
    notes += cut
    room = limit - len(full)
    if room < 1:
        raise ValidationError(
            f"The prompt alone is {len(full)} tokens, more than the model's maximum length "
            f"of {limit} tokens, even without context passages.",
            field="prompt",
            value=len(full),
            fix="shorten the question, or use a model with a longer context.",
        )
    if len(answer_ids) > room:
        notes += (_answer_note(len(answer_ids), room, limit),)
        answer_ids = answer_ids[:room]
    contexts = [full] + [
        encode(render_prompt(question, texts[:i] + texts[i + 1 :])) for i in range(len(texts))
    ]
    logps = answer_logprobs(model, contexts, answer_ids, batch_size=batch_size)
    return Ablation(
        logp_all=logps[0],
        logp_without=tuple(logps[1:]),
        answer_tokens=len(answer_ids),
        max_length=limit,
        truncated=bool(notes),
        notes=notes,
    )


def _answer_note(before: int, after: int, limit: int) -> str:
    return (
        f"the answer was cut from {before} to its first {after} tokens to fit the model's "
        f"maximum length of {limit} tokens"
    )


# ------------------------------------------------------------------ the result


def attribution_from_ablation(
    chunks: Sequence[Retrieved],
    ablation: Ablation,
    *,
    params: dict[str, Any],
    model: str | None = None,
    index_hash: str | None = None,
) -> Attribution:
    """The :class:`Attribution` of an ablation over ``chunks`` (pure)."""
    drops, weights = ablation.drops, ablation.weights
    evidence: list[tuple[Retrieved, Evidence, float]] = []
    for r, drop, weight, without in zip(chunks, drops, weights, ablation.logp_without, strict=True):
        c = r.chunk
        detail = {
            "chunk": c.id,
            "chunk_key": c.key,
            "rank": r.rank,
            "retrieval_score": r.score,
            "drop": drop,
            "weight": weight,
            "logp_without": without,
            "sha256": c.sha256,
        }
        ev = Evidence(
            contribution=c.contribution,
            score=drop,
            preview=preview(c.text),
            record=c.record,
            detail=detail,
        )
        evidence.append((r, ev, weight))
    evidence.sort(key=lambda t: (-t[1].score, t[0].rank))
    scores: dict[int, float] = {}
    contributors: dict[int, str] = {}
    by_contribution: dict[int, list[Evidence]] = {}
    for r, ev, weight in evidence:
        contributors[ev.contribution] = r.chunk.contributor
        if weight > 0:
            scores[ev.contribution] = scores.get(ev.contribution, 0.0) + ev.score
            by_contribution.setdefault(ev.contribution, []).append(ev)
    notes = ablation.notes
    if not scores:
        notes += ("no chunk made the answer more likely: nothing is attributed",)
    return Attribution(
        method=METHOD,
        params=params,
        shares=positive_shares(scores, contributors, by_contribution),
        evidence=tuple(ev for _, ev, _ in evidence),
        model=model,
        index_hash=index_hash,
        truncated=ablation.truncated,
        notes=notes,
    )


def attribute(
    model: Any,
    tokenizer: Any,
    augmented: AugmentedPrompt,
    answer: str,
    *,
    chat: bool = False,
    batch_size: int | None = None,
    max_length: int | None = None,
    model_name: str | None = None,
) -> Attribution:
    """Attribute ``answer`` (generated for ``augmented.text``) to the retrieved chunks.

    ``chat``: the augmented prompt was the user message of the chat template. ``model_name``
    defaults to the model config's ``name_or_path``.
    """
    ablation = context_ablation(
        model,
        tokenizer,
        augmented.question,
        [r.chunk.text for r in augmented.chunks],
        answer,
        chat=chat,
        batch_size=batch_size,
        max_length=max_length,
    )
    params = {
        "k": augmented.k,
        "embedding_model": augmented.embedding_model,
        "index_hash": augmented.index_hash,
        "logp_all": ablation.logp_all,
        "answer_tokens": ablation.answer_tokens,
        "max_length": ablation.max_length,
        "chat": chat,
    }
    name = model_name or getattr(model.config, "name_or_path", None) or None
    return attribution_from_ablation(
        augmented.chunks, ablation, params=params, model=name, index_hash=augmented.index_hash
    )
