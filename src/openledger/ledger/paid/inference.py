"""One paid inference end to end: hold credit, generate, attribute, charge, receipt.

The OpenAI-compatible API and ``openledger demo`` go through these same calls;
``complete`` is the blocking form for one prompt.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from openledger.attribution.service import AttributionService
from openledger.attribution.types import Attribution
from openledger.errors import ConflictError, NotFoundError
from openledger.ledger.credit.book import Hold
from openledger.ledger.receipts.canonical import SignedReceipt
from openledger.ledger.receipts.content import AgentTerms
from openledger.ledger.receipts.queries import ReceiptQueries
from openledger.ledger.receipts.writer_db import PendingReceipt
from openledger.ledger.service import LedgerService, request_hash
from openledger.serving.sampling import SamplingParams
from openledger.serving.service import ServingService

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PaidCompletion:
    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    receipt: SignedReceipt
    attribution: Attribution | None


SHOWN_SHARES = 100  # a response lists at most this many shares and sums up the rest


def attribution_view(a: Attribution | None, top: int = SHOWN_SHARES) -> dict[str, Any]:
    """What a response shows about attribution — what its receipt says: every share (past
    ``top`` of them, the rest summed up in ``others``), the attributed and the unattributed
    part, and the hash of the tokens attributed."""
    if a is None:
        return {
            "method": "none",
            "shares": [],
            "attributed": 0.0,
            "unattributed": 1.0,
            "others": {"count": 0, "weight": 0.0},
        }
    rest = a.shares[top:]
    return {
        "method": a.method,
        "index_hash": a.index_hash,
        "query_hash": a.query_hash,
        "shares": [
            {
                "contribution": s.contribution,
                "contributor": s.contributor,
                "weight": round(s.weight, 9),
            }
            for s in a.shares[:top]
        ],
        "others": {"count": len(rest), "weight": round(sum(s.weight for s in rest), 9)},
        "attributed": round(a.attributed, 9),
        "unattributed": round(a.unattributed, 9),
    }


class PaidInference:
    def __init__(
        self, ledger: LedgerService, serving: ServingService, attribution: AttributionService
    ) -> None:
        self.ledger = ledger
        self.serving = serving
        self.attribution_service = attribution
        self.queries = ReceiptQueries(ledger.db)
        self._locks: dict[str, threading.Lock] = defaultdict(threading.Lock)

    def reserve(
        self,
        account: str,
        model: str,
        prompt_tokens: int,
        max_tokens: int,
        *,
        agent: AgentTerms | None = None,
    ) -> Hold:
        """Check the model and context, then hold the request's largest fee (402 if short);
        for a call to ``agent`` (which runs ``model``), its price on top. A call to an agent
        that retrieves from datanets is refused (409, nothing held) unless what it retrieved
        is in the prompt (``agents.runner.AgentRunner.prepare``): never served without it."""
        if agent is not None and getattr(agent, "unretrieved", False):  # agents.retrieval
            raise ConflictError(
                f"agent/{agent.name} retrieves from datanets, and this "
                "path does not put what it retrieves into the prompt.",
                field="model",
                value=f"agent/{agent.name}",
                fix="call it with POST /v1/chat/completions, in the web app's playground, or as "
                "a callee of another agent "
                f'("calls": ["agent/{agent.name}"]); nothing was charged.',
            )
        card = self.serving.model(model)
        self.serving.check_fits(prompt_tokens, max_tokens)
        return self.ledger.reserve(account, card, prompt_tokens, max_tokens, agent=agent)

    def attribute(
        self,
        model: str,
        prompt_ids: list[int],
        completion_ids: list[int],
        *,
        prompt_text: str | None = None,
    ) -> Attribution | None:
        """The model's attribution of the tokens it generated (``completion_ids``, the end of
        sequence included when it stopped on one) after the tokens it was given, or None when
        it has no index yet (the contributors' part is then all unattributed, paid pro rata
        to records). The tokens are stored under the attribution's query hash first, so the
        receipt can be recomputed later."""
        if not completion_ids:
            return None
        with self._locks[model]:  # one attributor (and its model) per adapter at a time
            try:
                a = self.attribution_service.attribute_ids(
                    model, prompt_ids, completion_ids, top=10, prompt_text=prompt_text
                )
            except (NotFoundError, ConflictError) as exc:
                log.info("no attribution for %s: %s", model, exc)
                return None
        self.queries.save(prompt_ids, completion_ids)
        return a

    def charge(
        self,
        hold: Hold,
        completion_tokens: int,
        *,
        request: dict[str, Any],
        attribution: Attribution | None,
    ) -> SignedReceipt:
        digest = request_hash(hold.account, hold.model["name"], request)
        return self.ledger.charge(
            hold, completion_tokens, request_hash=digest, attribution=attribution
        )

    def submit(
        self,
        hold: Hold,
        completion_tokens: int,
        *,
        request: dict[str, Any],
        attribution: Attribution | None,
    ) -> PendingReceipt:
        """``charge`` without waiting: the receipt once its group has committed."""
        digest = request_hash(hold.account, hold.model["name"], request)
        return self.ledger.submit(
            hold, completion_tokens, request_hash=digest, attribution=attribution
        )

    def complete(
        self,
        account: str,
        model: str,
        prompt: str,
        *,
        max_tokens: int = 32,
        temperature: float = 0.0,
        seed: int | None = None,
    ) -> PaidCompletion:
        """A paid text completion of ``prompt`` (blocking)."""
        sampling = {"max_tokens": max_tokens, "temperature": temperature, "seed": seed}
        ids = self.serving.encode_prompt(prompt)
        return self._run(account, model, ids, prompt, {"prompt": prompt, **sampling}, sampling)

    def chat(
        self,
        account: str,
        model: str,
        messages: list[dict[str, str]],
        *,
        max_tokens: int = 32,
        temperature: float = 0.0,
        seed: int | None = None,
        api: str = "chat",
        agent: AgentTerms | None = None,
        inner: tuple[str, ...] = (),
    ) -> PaidCompletion:
        """A paid chat turn: ``messages`` rendered with the chat template the model was
        trained on (generation prompt included), then the same path as a completion. For a
        call to ``agent`` (running ``model``), its price on top and ``inner`` (the receipts
        of the calls it made for this one) in its receipt."""
        sampling = {"max_tokens": max_tokens, "temperature": temperature, "seed": seed}
        ids = self.serving.encode_chat(messages)
        text = self.serving.tokenizer().decode(ids, skip_special_tokens=True)
        request = {"api": api, "messages": messages, **sampling}
        if agent is not None:
            request["agent"] = f"agent/{agent.name}"
        return self._run(account, model, ids, text, request, sampling, agent=agent, inner=inner)

    def _run(
        self,
        account: str,
        model: str,
        ids: list[int],
        prompt_text: str,
        request: dict[str, Any],
        sampling: dict[str, Any],
        *,
        agent: AgentTerms | None = None,
        inner: tuple[str, ...] = (),
    ) -> PaidCompletion:
        """Hold, generate, attribute the tokens generated, charge (what both share)."""
        params = SamplingParams(**sampling)
        hold = self.reserve(account, model, len(ids), params.max_tokens, agent=agent)
        hold.inner = inner
        try:
            generation = self.serving.submit(model, ids, params)
            done = generation.wait()
        except BaseException:
            self.ledger.release(hold)
            raise
        hold.compute = getattr(generation, "compute", None)  # served by a compute provider
        attribution = self.attribute(model, ids, done.generated, prompt_text=prompt_text)
        receipt = self.charge(hold, len(done.tokens), request=request, attribution=attribution)
        return PaidCompletion(
            done.text, done.finish_reason, len(ids), len(done.tokens), receipt, attribution
        )
