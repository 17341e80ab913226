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
from openledger.ledger.receipts import SignedReceipt
from openledger.ledger.service import Hold, LedgerService, PendingReceipt, request_hash
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


def attribution_view(a: Attribution | None, top: int = 5) -> dict[str, Any]:
    """What a response shows about attribution: method, top shares, unattributed part."""
    if a is None:
        return {"method": "none", "shares": [], "unattributed": 1.0}
    return {
        "method": a.method,
        "index_hash": a.index_hash,
        "shares": [
            {
                "contribution": s.contribution,
                "contributor": s.contributor,
                "weight": round(s.weight, 6),
            }
            for s in a.shares[:top]
        ],  # fmt: skip
        "unattributed": round(a.unattributed, 6),
    }


class PaidInference:
    def __init__(
        self, ledger: LedgerService, serving: ServingService, attribution: AttributionService
    ) -> None:
        self.ledger = ledger
        self.serving = serving
        self.attribution_service = attribution
        self._locks: dict[str, threading.Lock] = defaultdict(threading.Lock)

    def reserve(self, account: str, model: str, prompt_tokens: int, max_tokens: int) -> Hold:
        """Check the model and context, then hold the request's largest fee (402 if short)."""
        card = self.serving.model(model)
        self.serving.check_fits(prompt_tokens, max_tokens)
        return self.ledger.reserve(account, card, prompt_tokens, max_tokens)

    def attribute(self, model: str, prompt: str, completion: str) -> Attribution | None:
        """The model's attribution of ``completion``, or None when it has no index yet (the
        contributors' part is then all unattributed, paid pro rata to records)."""
        if not completion.strip():
            return None
        with self._locks[model]:  # one attributor (and its model) per adapter at a time
            try:
                return self.attribution_service.attribute(model, prompt, completion, top=10)
            except (NotFoundError, ConflictError) as exc:
                log.info("no attribution for %s: %s", model, exc)
                return None

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
        ids = self.serving.encode_prompt(prompt)
        hold = self.reserve(account, model, len(ids), max_tokens)
        try:
            params = SamplingParams(max_tokens=max_tokens, temperature=temperature, seed=seed)
            done = self.serving.submit(model, ids, params).wait()
        except BaseException:
            self.ledger.release(hold)
            raise
        attribution = self.attribute(model, prompt, done.text)
        request = {"prompt": prompt, "max_tokens": max_tokens, "temperature": temperature,
                   "seed": seed}  # fmt: skip
        receipt = self.charge(hold, len(done.tokens), request=request, attribution=attribution)
        return PaidCompletion(done.text, done.finish_reason, len(ids), len(done.tokens),
                              receipt, attribution)  # fmt: skip
