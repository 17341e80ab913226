"""Attribution by context ablation, checked against a plain one-prompt-at-a-time computation.

The session's tiny base has had 40 pretraining steps and barely reads its context, so the
"removal makes the answer much less likely" check plants that dependence first: a copy of
the model is fine-tuned (100 full-batch steps, deterministic, a few seconds) to answer the
question with a sentence copied from one chunk when that chunk is in the prompt and with
"I do not know" when it is left out. Ablation must then credit that chunk's contribution.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch

from openledger.attribution.rag import (
    Ablation,
    AugmentedPrompt,
    RagIndex,
    Retrieved,
    Retriever,
    SentenceEmbedder,
    answer_logprobs,
    attribute,
    attribution_from_ablation,
    build_index,
    chunk_weights,
    context_ablation,
    render_prompt,
)
from openledger.attribution.rag.ablation import context_encoder, fit_passages, water_level
from openledger.attribution.rag.chunking import Chunk
from openledger.errors import ValidationError
from openledger.factory.base import load_base
from tests.attribution.rag.conftest import ALICE, BOB, CAROL, row

QUESTION = "Which planet has the longest day?"
PASSAGES = [
    "The Pacific is the largest ocean.",
    "Venus has the longest day of any planet.",
    "Coral reefs shelter many species.",
    "Blue whales are the largest animals.",
]
COPIED = " Venus has the longest day."
UNSURE = " I do not know."


def naive_logp(model: Any, tokenizer: Any, context: str, answer: str, chat: bool = False) -> float:
    """log p(answer | context) from one unpadded forward pass over the whole vocabulary."""
    if chat:
        context = tokenizer.apply_chat_template(
            [{"role": "user", "content": context}], tokenize=False, add_generation_prompt=True
        )
    ctx = tokenizer(context, add_special_tokens=not chat)["input_ids"]
    ans = tokenizer(answer, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logp = model(torch.tensor([ctx + ans])).logits.log_softmax(-1)[0]
    return math.fsum(logp[len(ctx) + j - 1, t].item() for j, t in enumerate(ans))


def ablated_prompts(question: str, passages: list[str]) -> list[str]:
    return [render_prompt(question, passages)] + [
        render_prompt(question, passages[:i] + passages[i + 1 :]) for i in range(len(passages))
    ]


# ------------------------------------------------------------------ batching


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_batched_equals_unbatched(tiny_base_dir: Path, attn: str) -> None:
    model, tok = load_base(tiny_base_dir, attn_implementation=attn)
    prompts = ablated_prompts(QUESTION, PASSAGES)
    contexts = [tok(p)["input_ids"] for p in prompts]
    assert len({len(c) for c in contexts}) > 1  # rows really are padded
    answer = tok(COPIED, add_special_tokens=False)["input_ids"]
    batched = answer_logprobs(model, contexts, answer)
    one_by_one = answer_logprobs(model, contexts, answer, batch_size=1)
    pairs = answer_logprobs(model, contexts, answer, batch_size=2)
    naive = [naive_logp(model, tok, p, COPIED) for p in prompts]
    assert batched == pytest.approx(naive, abs=1e-4)
    assert one_by_one == pytest.approx(naive, abs=1e-4)
    assert pairs == pytest.approx(naive, abs=1e-4)


@pytest.mark.parametrize("chat", [False, True])
def test_drops_are_the_leave_one_out_differences(tiny_lm: tuple[Any, Any], chat: bool) -> None:
    model, tok = tiny_lm
    ablation = context_ablation(model, tok, QUESTION, PASSAGES, COPIED, chat=chat)
    naive = [naive_logp(model, tok, p, COPIED, chat) for p in ablated_prompts(QUESTION, PASSAGES)]
    assert ablation.logp_all == pytest.approx(naive[0], abs=1e-4)
    assert ablation.drops == pytest.approx([naive[0] - x for x in naive[1:]], abs=1e-4)
    assert ablation.answer_tokens == len(tok(COPIED, add_special_tokens=False)["input_ids"])
    assert not ablation.truncated and ablation.max_length == 256


# ------------------------------------------------------------------ planted dependence


@pytest.fixture(scope="module")
def planted(
    tmp_path_factory: pytest.TempPathFactory,
    tiny_base_dir: Path,
    embedder: SentenceEmbedder,
) -> tuple[Any, Any, AugmentedPrompt]:
    """A tiny Llama that copies the Venus chunk into its answer only when it is retrieved."""
    owners = [(1, ALICE), (2, BOB), (3, CAROL), (1, ALICE)]
    rows = [
        row(i, c, who, "text", text=text)
        for i, ((c, who), text) in enumerate(zip(owners, PASSAGES, strict=True))
    ]
    out = tmp_path_factory.mktemp("planted") / "index"
    index = build_index(rows, out, snapshot="facts@1", root="0x00", embedder=embedder)
    augmented = Retriever(index).augment(QUESTION, 4)
    passages = [r.chunk.text for r in augmented.chunks]
    answers = [COPIED] + [UNSURE if "Venus" in p else COPIED for p in passages]
    model, tok = load_base(tiny_base_dir)
    pairs = [
        (tok(p)["input_ids"], tok(a, add_special_tokens=False)["input_ids"])
        for p, a in zip(ablated_prompts(QUESTION, passages), answers, strict=True)
    ]
    width = max(len(c) + len(a) for c, a in pairs)
    ids = torch.full((len(pairs), width), tok.pad_token_id)
    labels = torch.full((len(pairs), width), -100)
    mask = torch.zeros((len(pairs), width), dtype=torch.long)
    for i, (c, a) in enumerate(pairs):
        ids[i, : len(c) + len(a)] = torch.tensor(c + a)
        labels[i, len(c) : len(c) + len(a)] = torch.tensor(a)
        mask[i, : len(c) + len(a)] = 1
    torch.manual_seed(0)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(100):
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    return model, tok, augmented


def test_the_chunk_the_answer_needs_gets_the_largest_weight(
    planted: tuple[Any, Any, AugmentedPrompt],
) -> None:
    model, tok, augmented = planted
    result = attribute(model, tok, augmented, COPIED, model_name="tiny-planted")
    venus = next(r.chunk for r in augmented.chunks if "Venus" in r.chunk.text)
    top = result.evidence[0]
    assert top.detail["chunk"] == venus.id and top.contribution == venus.contribution == 2
    assert top.detail["drop"] > 3.0  # e^3 = 20x less likely without it
    assert top.detail["weight"] > 0.6 and top.detail["weight"] == max(
        e.detail["weight"] for e in result.evidence
    )
    assert result.shares[0].contribution == 2 and result.shares[0].contributor == BOB
    assert result.attributed == pytest.approx(1.0)
    per_contribution: dict[int, float] = {}
    for e in result.evidence:
        per_contribution[e.contribution] = (
            per_contribution.get(e.contribution, 0) + e.detail["weight"]
        )
    assert result.weights() == pytest.approx(
        {c: w for c, w in per_contribution.items() if w > 0}, abs=1e-12
    )
    assert result.method == "rag" and result.model == "tiny-planted"
    assert result.index_hash == augmented.index_hash and not result.truncated
    assert result.params["k"] == 4
    assert result.params["embedding_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert result.params["index_hash"] == augmented.index_hash
    detail = top.detail
    assert detail["retrieval_score"] == next(r.score for r in augmented.chunks if r.chunk == venus)
    assert detail["rank"] in (1, 2, 3, 4) and detail["chunk_key"] == f"{venus.record}:0"
    assert top.record == venus.record and "Venus" in top.preview
    unsure = attribute(model, tok, augmented, UNSURE)
    assert unsure.weights().get(2, 0.0) < 0.05  # the Venus chunk does not support "unsure"


# ------------------------------------------------------------------ pure parts


def _retrieved(contributions: list[int]) -> list[Retrieved]:
    return [
        Retrieved(
            Chunk(i, 10 + i, 0, c, f"0x{c:040x}", f"{i:064x}", f"passage {i}"), 0.9 - i / 10, i + 1
        )
        for i, c in enumerate(contributions)
    ]


def test_weights_come_from_positive_drops_only() -> None:
    assert chunk_weights([-1.0, 0.0, 3.0, 1.0, float("nan")]) == (0.0, 0.0, 0.75, 0.25, 0.0)
    assert chunk_weights([-1.0, 0.0]) == (0.0, 0.0)
    ablation = Ablation(
        logp_all=-5.0, logp_without=(-4.0, -5.0, -8.0, -6.0, -7.0), answer_tokens=3, max_length=64
    )
    assert ablation.drops == (-1.0, 0.0, 3.0, 1.0, 2.0)
    result = attribution_from_ablation(_retrieved([1, 1, 2, 3, 3]), ablation, params={"k": 5})
    assert [(s.contribution, s.weight, s.score) for s in result.shares] == [
        (2, 0.5, 3.0),
        (3, 0.5, 3.0),
    ]
    assert [e.detail["chunk"] for e in result.evidence] == [2, 4, 3, 1, 0]
    assert [len(s.evidence) for s in result.shares] == [1, 2]
    assert result.shares[1].contributor == f"0x{3:040x}"


def test_nothing_is_attributed_when_no_chunk_helps() -> None:
    ablation = Ablation(logp_all=-5.0, logp_without=(-4.0, -5.0), answer_tokens=2, max_length=64)
    result = attribution_from_ablation(_retrieved([1, 2]), ablation, params={})
    assert result.shares == () and result.unattributed == 1.0
    assert result.notes == ("no chunk made the answer more likely: nothing is attributed",)
    assert len(result.evidence) == 2


def test_water_level() -> None:
    assert water_level([10, 4, 7], 21) == 10
    assert water_level([10, 4, 7], 15) == 5  # 5 + 4 + 5 = 14; a cap of 6 makes 16
    assert water_level([10, 4, 7], 0) == 0
    assert water_level([], 5) == 0


# ------------------------------------------------------------------ truncation, bad input


def test_long_context_is_cut_to_fit(tiny_lm: tuple[Any, Any]) -> None:
    model, tok = tiny_lm
    long = [p + " " + " ".join(["The sea is wide and deep."] * 12) for p in PASSAGES]
    encode = context_encoder(tok)
    assert len(encode(render_prompt(QUESTION, long))) > 256
    ablation = context_ablation(model, tok, QUESTION, long, COPIED)
    assert ablation.truncated and "cut to at most" in ablation.notes[0]
    assert "256 tokens" in ablation.notes[0] and len(ablation.drops) == 4
    answer_len = ablation.answer_tokens
    texts, context, notes = fit_passages(QUESTION, long, answer_len, 256, encode, tok)
    assert len(context) + answer_len <= 256 and notes == ablation.notes
    for cut, original in zip(texts, long, strict=True):
        assert original.startswith(cut.strip()) and len(cut) < len(original)
    assert ablation.logp_all == pytest.approx(
        naive_logp(model, tok, render_prompt(QUESTION, texts), COPIED), abs=1e-4
    )
    small = context_ablation(model, tok, QUESTION, long, COPIED, max_length=120)
    assert small.truncated and small.max_length == 120

    long_answer = " " + " ".join(["deep water"] * 80)
    half = context_ablation(model, tok, QUESTION, PASSAGES, long_answer)
    assert half.answer_tokens <= 128 and half.truncated
    assert "the answer was cut" in half.notes[0] and "first 128 tokens" in half.notes[0]

    bare = len(encode(render_prompt(QUESTION, ["", "", "", ""])))
    cut_answer = context_ablation(model, tok, QUESTION, PASSAGES, COPIED, max_length=bare + 2)
    assert cut_answer.answer_tokens == 2 and cut_answer.truncated
    assert any("the answer was cut" in n for n in cut_answer.notes)
    with pytest.raises(ValidationError) as err:
        context_ablation(model, tok, QUESTION, PASSAGES, COPIED, max_length=bare - 1)
    assert err.value.field == "prompt" and "shorten" in (err.value.fix or "")


def test_truncation_is_reported_in_the_attribution(
    tiny_lm: tuple[Any, Any], sample_index: RagIndex
) -> None:
    model, tok = tiny_lm
    augmented = Retriever(sample_index).augment(QUESTION, 8)
    result = attribute(model, tok, augmented, COPIED, max_length=200)
    assert result.truncated and result.notes and "200 tokens" in result.notes[0]
    assert len(result.evidence) == 8 and result.params["max_length"] == 200
    assert {s.contribution for s in result.shares} <= {
        r.chunk.contribution for r in augmented.chunks
    }


def test_bad_input_is_refused(tiny_lm: tuple[Any, Any], sample_index: RagIndex) -> None:
    model, tok = tiny_lm
    augmented = Retriever(sample_index).augment(QUESTION, 2)
    for answer in ("", "  \n"):
        with pytest.raises(ValidationError) as err:
            attribute(model, tok, augmented, answer)
        assert err.value.field == "answer" and err.value.value == answer and err.value.fix
    with pytest.raises(ValidationError) as err:
        context_ablation(model, tok, QUESTION, [], COPIED)
    assert err.value.field == "chunks" and "k ≥ 1" in (err.value.fix or "")
    with pytest.raises(ValidationError) as err:
        context_ablation(model, tok, "", PASSAGES, COPIED)
    assert err.value.field == "prompt"
    with pytest.raises(ValidationError) as err:
        answer_logprobs(model, [[1, 2]], [3], batch_size=0)
    assert err.value.field == "batch_size"
