"""An agent that calls others: check its wallet for the worst case, consult its callees
(paid from its wallet), then answer with what they said (docs/agents.md).

An agent whose configuration names ``calls`` consults each, in order, with the caller's
conversation before its own model answers: a model callee is one paid chat call, an agent
callee is a call to that agent (which consults its own callees first, from its own wallet).
Each call made for the agent is paid by the agent's wallet and leaves its own receipt; the
receipt of the call it answers names them (``agent.inner``, their link hashes), so the fee of
an answer traces through every model behind it. What the callees said reaches the agent's
model as system messages after its system prompt.

Before anything is computed, every wallet on the chain of calls must hold the worst case of
what its calls can cost (each prompt as long as the context allows, each answer its
max_tokens, each agent's price) within its spending cap for the epoch: otherwise a 402 names
the agent whose wallet is short.

An agent whose configuration names ``retrieval`` datanets first retrieves the passages most
similar to the caller's last user message (``prepare``, :mod:`openledger.agents.retrieval`):
they follow its system prompt as a ``Context:`` block, as many as leave room for what its
callees say and for its answer (the lowest ranked are left out first), and its receipt names
the records they came from (``agent.retrieved``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from sqlalchemy import select

from openledger.agents.retrieval import last_user_message, render_context
from openledger.errors import ConflictError, PaymentRequiredError, ValidationError
from openledger.ledger.pricing.fees import fee
from openledger.store.ledger_tables import ReceiptRow
from openledger.units import fmt_open

if TYPE_CHECKING:
    from openledger.agents.service import AgentRun, AgentService
    from openledger.ledger.paid.inference import PaidCompletion, PaidInference


@dataclass(frozen=True)
class Consulted:
    """One call an agent made: whom, what it answered, its receipt."""

    ref: str  # a model name or agent/NAME
    text: str
    receipt_hash: str  # the receipt's link hash (what the outer receipt names)
    receipt_seq: int


def with_answers(
    system_prompt: str, consulted: list[Consulted], messages: list[dict[str, str]]
) -> list[dict[str, str]]:
    """The conversation the agent's model answers: its system prompt, what each callee
    said, then the caller's messages."""
    head = [{"role": "system", "content": system_prompt}] if system_prompt else []
    said = [{"role": "system", "content": f"{c.ref} said: {c.text}"} for c in consulted]
    return [*head, *said, *messages]


def fit(
    build: Callable[[list[Consulted]], list[int]], consulted: list[Consulted], room: int
) -> tuple[list[Consulted], list[int]]:
    """Shorten the callees' answers (longest first, by a quarter) until the prompt that
    ``build`` tokenises is at most ``room`` tokens; returns the answers used and the ids."""
    ids = build(consulted)
    while len(ids) > room and any(c.text for c in consulted):
        longest = max(range(len(consulted)), key=lambda i: len(consulted[i].text))
        c = consulted[longest]
        keep = len(c.text) * 3 // 4
        short = Consulted(c.ref, c.text[:keep], c.receipt_hash, c.receipt_seq)
        consulted = [*consulted[:longest], short, *consulted[longest + 1 :]]
        ids = build(consulted)
    return consulted, ids


class AgentRunner:
    def __init__(self, agents: AgentService, paid: PaidInference) -> None:
        self.agents = agents
        self.paid = paid

    # -- before any compute ----------------------------------------------------------------
    def worst_case(self, run: AgentRun) -> dict[str, tuple[AgentRun, int]]:
        """What the calls of ``run`` (and of the agents it calls) can cost at most, by
        wallet: wallet -> (the agent it belongs to, wei)."""
        serving = self.paid.serving
        ctx = serving.engine.max_ctx
        need: dict[str, int] = defaultdict(int)
        owners: dict[str, AgentRun] = {}

        def walk(agent: AgentRun) -> None:
            cfg = agent.config
            if not cfg.calls:
                return
            wallet = agent.terms.wallet
            owners[wallet] = agent
            for callee in cfg.callees:
                if callee.kind == "model":
                    card, max_tokens, price = serving.model(callee.name), cfg.max_tokens, 0
                else:
                    sub = self.agents.resolve(callee.ref)
                    card = serving.model(sub.model)
                    max_tokens, price = sub.config.max_tokens, sub.terms.price
                    walk(sub)
                bound = max(ctx - max_tokens, 0)
                need[wallet] += price + fee(
                    bound, max_tokens, int(card["price_in"]), int(card["price_out"])
                )

        walk(run)
        return {w: (owners[w], amount) for w, amount in need.items()}

    def spent(self, wallet: str) -> int:
        """What ``wallet`` was charged in the epoch still open (receipts not yet sealed)."""
        with self.agents.db.session() as s:
            rows = s.scalars(
                select(ReceiptRow.fee).where(ReceiptRow.payer == wallet, ReceiptRow.epoch.is_(None))
            )
            return sum(int(f) for f in rows)

    def check(self, run: AgentRun) -> None:
        """Every wallet on the chain of calls covers its worst case, within its cap; 402
        naming the agent otherwise. Nothing is held: the calls hold as they run."""
        for wallet, (agent, need) in self.worst_case(run).items():
            name = agent.ref
            if not wallet:
                raise PaymentRequiredError(
                    f"{name} has no wallet on this node to pay for its calls.",
                    field="model",
                    value=name,
                    fix="call it on the node it was created on.",
                )
            available = int(self.agents.credit(wallet)["available"]) if self.agents.credit else 0
            if available < need:
                raise PaymentRequiredError(
                    f"{name}'s wallet {wallet} has {fmt_open(max(available, 0))} OPEN of "
                    f"credit; its calls can cost up to {fmt_open(need)} OPEN.",
                    field="model",
                    value=name,
                    fix="ask its owner to fund the agent's wallet.",
                )
            cap = agent.config.spend_cap
            if cap:
                spent = self.spent(wallet)
                if spent + need > cap:
                    raise PaymentRequiredError(
                        f"{name} has spent {fmt_open(spent)} OPEN of its "
                        f"{fmt_open(cap)} OPEN cap this epoch; its calls can cost up to "
                        f"{fmt_open(need)} OPEN more.",
                        field="model",
                        value=name,
                        fix="wait for the epoch to close, or ask its owner for a higher spend_cap.",
                    )

    def prepare(
        self, agent: AgentRun, messages: list[dict[str, str]], max_tokens: int | None = None
    ) -> AgentRun:
        """``agent`` with the passages retrieved for ``messages`` in its prompt and named in
        its terms (``agent`` itself when it retrieves nothing): the top ``retrieval_k`` over
        its datanets, less the lowest ranked while the prompt (with a blank line for each
        callee) and ``max_tokens`` exceed the context. Refused (nothing held or charged)
        when not even one passage fits, or when a datanet may not be served by its owner."""
        cfg = agent.config
        if not cfg.retrieval:
            return agent
        retrieval = self.agents.retrieval
        if retrieval is None:
            raise ConflictError(
                f"{agent.ref} retrieves from datanets, which this node does not serve.",
                field="model",
                value=agent.ref,
                fix="call it on the node it was created on.",
            )
        passages = retrieval.retrieve(
            agent.name,
            agent.terms.owner,
            cfg.retrieval,
            last_user_message(messages),
            cfg.retrieval_k,
        )
        serving = self.paid.serving
        generate = cfg.max_tokens if max_tokens is None else max_tokens
        room = serving.engine.max_ctx - generate
        blank = [Consulted(c.ref, "", "", 0) for c in cfg.callees]

        def size(n: int) -> int:
            prompt = render_context(cfg.system_prompt, passages[:n])
            return len(serving.encode_chat(with_answers(prompt, blank, messages)))

        n = len(passages)
        while n and size(n) > room:
            n -= 1
        if not n:
            raise ValidationError(
                f"{agent.ref} puts the passages it retrieves into the prompt: with even one, "
                f"the prompt ({size(min(1, len(passages)))} tokens) plus {generate} to "
                f"generate exceeds the context of {serving.engine.max_ctx}.",
                field="messages",
                value=len(messages),
                fix="shorten the conversation or ask for fewer tokens (max_tokens).",
            )
        kept = tuple(passages[:n])
        terms = replace(agent.terms, retrieved=tuple(p.source for p in kept))
        return replace(agent, passages=kept, terms=terms)

    def check_room(self, agent: AgentRun, messages: list[dict[str, str]], max_tokens: int) -> None:
        """Room for what ``agent``'s callees say: the prompt with an empty answer from each
        (after its system prompt, before ``messages``) plus ``max_tokens`` fits the context;
        ValidationError (field ``messages``) otherwise. Nothing is called or held."""
        serving = self.paid.serving
        blank = [Consulted(c.ref, "", "", 0) for c in agent.config.callees]
        least = serving.encode_chat(with_answers(agent.system_prompt, blank, messages))
        if len(least) + max_tokens > serving.engine.max_ctx:
            raise ValidationError(
                f"{agent.ref} puts what its {len(blank)} callee(s) say into the "
                f"prompt: {len(least)} tokens before they say anything, plus "
                f"{max_tokens} to generate, exceeds the context of "
                f"{serving.engine.max_ctx}.",
                field="messages",
                value=len(least),
                fix="shorten the conversation or ask for fewer tokens (max_tokens).",
            )

    # -- the calls --------------------------------------------------------------------------
    def consult(self, run: AgentRun, messages: list[dict[str, str]]) -> list[Consulted]:
        """Call each callee of ``run`` with ``messages``, paid by its wallet (blocking)."""
        out: list[Consulted] = []
        cfg = run.config
        for callee in cfg.callees:
            if callee.kind == "model":
                pc = self.paid.chat(
                    run.terms.wallet,
                    callee.name,
                    messages,
                    max_tokens=cfg.max_tokens,
                    temperature=cfg.temperature,
                    api="agent.call",
                )
            else:
                pc = self.answer(run.terms.wallet, self.agents.resolve(callee.ref), messages)
            out.append(Consulted(callee.ref, pc.text, pc.receipt.hash, pc.receipt.seq))
        return out

    def answer(
        self,
        payer: str,
        agent: AgentRun,
        messages: list[dict[str, str]],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        seed: int | None = None,
        api: str = "agent.call",
    ) -> PaidCompletion:
        """A call to ``agent`` paid by ``payer``: it retrieves (unless ``prepare`` did), it
        consults its callees (from its own wallet), then its model answers; the receipt
        names the records retrieved and the calls' receipts. ``max_tokens`` and
        ``temperature`` default to the agent's (what the caller sets wins)."""
        cfg = agent.config
        max_tokens = cfg.max_tokens if max_tokens is None else max_tokens
        temperature = cfg.temperature if temperature is None else temperature
        if getattr(agent.terms, "unretrieved", False):
            agent = self.prepare(agent, messages, max_tokens)
        final, _, inner = self.final_prompt(agent, messages, max_tokens)
        return self.paid.chat(
            payer,
            agent.model,
            final,
            max_tokens=max_tokens,
            temperature=temperature,
            seed=seed,
            api=api,
            agent=agent.terms,
            inner=inner,
        )

    def final_prompt(
        self, agent: AgentRun, messages: list[dict[str, str]], max_tokens: int
    ) -> tuple[list[dict[str, str]], list[int], tuple[str, ...]]:
        """Consult ``agent``'s callees with ``messages`` (paid by its wallet, blocking), then
        the conversation its model answers: its system prompt, what they said (shortened,
        ``fit``, until the prompt leaves ``max_tokens`` of the context), then ``messages``;
        with its token ids and the link hashes of the calls' receipts (what its receipt
        names)."""
        consulted = self.consult(agent, messages)
        serving = self.paid.serving
        room = serving.engine.max_ctx - max_tokens
        system = agent.system_prompt
        consulted, ids = fit(
            lambda c: serving.encode_chat(with_answers(system, c, messages)), consulted, room
        )
        final = with_answers(system, consulted, messages)
        return final, ids, tuple(c.receipt_hash for c in consulted)
