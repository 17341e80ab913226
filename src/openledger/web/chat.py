"""The playground's paid chat turn: hold credit, generate, attribute, charge (the same
``PaidInference`` calls as /v1), then the answer as the page shows it: OLMoTrace-style
spans (character ranges of the answer matched in the training data, each with the
contributions and snapshot records it came from), shares per contributor, the fee split."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from openledger.attribution.types import Attribution
from openledger.errors import ValidationError
from openledger.http.prompt_budget import check_prompt_chars
from openledger.ledger.paid.inference import PaidInference

if TYPE_CHECKING:
    from openledger.agents.service import AgentService

MAX_TOKENS = 256


def check_messages(messages: list[dict[str, str]], max_tokens: int) -> None:
    if not messages or messages[-1].get("role") != "user" or not messages[-1].get("content"):
        raise ValidationError(
            "Write a message first.", field="message", fix="type a question for the model."
        )
    if not 1 <= max_tokens <= MAX_TOKENS:
        raise ValidationError(
            f"Max tokens must be between 1 and {MAX_TOKENS}.",
            field="max_tokens",
            value=max_tokens,
            fix="use e.g. 32.",
        )


def run_chat(
    paid: PaidInference,
    account: str,
    model: str,
    messages: list[dict[str, str]],
    *,
    max_tokens: int = 32,
    temperature: float = 0.7,
    seed: int | None = 0,
) -> dict[str, Any]:
    """One paid chat turn for ``account``; returns the page's view (see ``chat_view``).
    Sampling is seeded: the same seed gives the same answer."""
    check_messages(messages, max_tokens)
    paid.serving.model(model)
    chars = sum(len(m.get("content", "")) for m in messages)  # before any is tokenised
    check_prompt_chars(paid.serving.tokenizer(), paid.serving.engine.max_ctx, chars, "message")
    done = paid.chat(
        account,
        model,
        messages,
        max_tokens=max_tokens,
        temperature=temperature,
        seed=seed,
        api="web.chat",
    )
    receipt = paid.ledger.receipt(done.receipt.seq)  # as GET /receipts/{id} serves it
    return chat_view(
        done.text, done.attribution, receipt, done.prompt_tokens, done.completion_tokens
    )


def run_agent_chat(
    agents: AgentService,
    paid: PaidInference,
    account: str,
    ref: str,
    messages: list[dict[str, str]],
    *,
    max_tokens: int = 32,
    temperature: float = 0.7,
    seed: int | None = 0,
) -> dict[str, Any]:
    """One paid turn with ``agent/NAME`` for ``account`` (the agents' runner, as for a callee:
    its retrieval, its callees paid by its wallet, its price on top), with what the page
    shows of the agent: the passages retrieved into the prompt and the calls it made."""
    from openledger.agents.runner import AgentRunner

    check_messages(messages, max_tokens)
    run = agents.resolve(ref)
    paid.serving.model(run.model)
    chars = sum(len(m.get("content", "")) for m in messages)
    check_prompt_chars(paid.serving.tokenizer(), paid.serving.engine.max_ctx, chars, "message")
    runner = AgentRunner(agents, paid)
    runner.check(run)  # its wallet covers its calls' worst case (402 otherwise)
    run = runner.prepare(run, messages, max_tokens)
    done = runner.answer(
        account,
        run,
        messages,
        max_tokens=max_tokens,
        temperature=temperature,
        seed=seed,
        api="web.chat",
    )
    receipt = paid.ledger.receipt(done.receipt.seq)
    view = chat_view(
        done.text, done.attribution, receipt, done.prompt_tokens, done.completion_tokens
    )
    section = receipt["receipt"].get("agent") or {}
    view["agent"] = {
        "name": run.name,
        "model": run.model,
        "price": str(run.terms.price),
        "retrieved": [
            {**p.source.to_body(), "text": p.text, "score": round(p.score, 4)} for p in run.passages
        ],
        "inner": list(section.get("inner", [])),
    }
    return view


def chat_view(
    text: str,
    attribution: Attribution | None,
    receipt: dict[str, Any],
    prompt_tokens: int,
    completion_tokens: int,
) -> dict[str, Any]:
    body = receipt["receipt"]
    return {
        "text": text,
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens},
        "spans": highlight_spans(text, attribution),
        "attribution": attribution.to_dict()
        if attribution
        else {"method": "none", "shares": [], "evidence": []},
        "contributors": contributor_shares(attribution),
        "receipt": {
            "id": receipt["id"],
            "hash": receipt["hash"],
            "fee": body["fee"],
            "payouts": body["payouts"],
            "pools": body.get("pools", {}),  # stakers and unattributed, divided at the seal
        },
    }


def highlight_spans(text: str, attribution: Attribution | None) -> list[dict[str, Any]]:
    """Character ranges of ``text`` that the attribution's span evidence matched, each with
    the contributions and records holding it; non-overlapping, in text order."""
    if attribution is None:
        return []
    by_text: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for share in attribution.shares:
        for ev in share.evidence:
            span_text = ev.detail.get("text") if ev.detail else None
            if not span_text or not span_text.strip():
                continue
            source = {
                "contribution": ev.contribution,
                "contributor": share.contributor,
                "record": ev.record,
            }
            if source not in by_text[span_text]:
                by_text[span_text].append(source)
    spans: list[dict[str, Any]] = []
    taken: list[tuple[int, int]] = []
    for span_text in sorted(by_text, key=lambda t: (-len(t), t)):  # longest first
        start = text.find(span_text)
        while start >= 0:
            end = start + len(span_text)
            if all(end <= a or start >= b for a, b in taken):
                taken.append((start, end))
                spans.append(
                    {"start": start, "end": end, "text": span_text, "sources": by_text[span_text]}
                )
                break
            start = text.find(span_text, start + 1)
    return sorted(spans, key=lambda s: s["start"])


def contributor_shares(attribution: Attribution | None) -> list[dict[str, Any]]:
    """Attribution weight per contributor (largest first), plus the unattributed rest."""
    if attribution is None:
        return [{"contributor": None, "weight": 1.0}]
    weights: dict[str, float] = defaultdict(float)
    for share in attribution.shares:
        weights[share.contributor] += share.weight
    rows = [
        {"contributor": c, "weight": round(w, 6)}
        for c, w in sorted(weights.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    if attribution.unattributed > 1e-9:
        rows.append({"contributor": None, "weight": round(attribution.unattributed, 6)})
    return rows
