"""One paid call of several choices: hold for every choice, then settle exactly once.

A call (an OpenAI-style request with ``n`` choices, or several prompts) is paid as a whole:

1. ``add`` each choice: the prompt text it is attributed against, the prompt tokens it is
   billed (a prompt is billed once, on its first choice: ``n`` > 1 bills the other choices
   their completion tokens only, so the receipts' tokens add up to the call's usage), its
   ``max_tokens`` and what its receipt's request hash commits to (``committed_request``).
2. ``start(submit)``: the largest fee of every choice is held (all or none; a call of several
   choices that cannot be covered gets one 402 for the whole call, from ``credit_short``),
   then ``submit`` hands the choices to the engine. Anything ``submit`` raises releases
   every hold.
3. Exactly one of:

   - ``settle(generations)`` once every choice has ended: each choice is attributed and
     charged (one signed receipt per choice, all queued before any is awaited so they share
     the ledger writer's next group). A choice is charged when it produced tokens or ended
     normally (``stop``/``length``): a cancelled choice with tokens is charged for them
     (they were computed). A choice that failed (``finish_reason == "error"``), one that
     was cancelled before any token, and one served by a compute provider without its
     signed statement (``compute`` is None) have their hold released and no receipt.
   - ``release()``: the call failed; nothing is charged.
   - ``settle_later(generations)``: the client went away; a background thread waits (up to
     ``SETTLE_WAIT_S``) for the engine to stop every choice, then settles.

   A second ``settle`` raises RuntimeError; ``release`` and ``settle_later`` after the call
   was closed do nothing.

Generations are plain objects (the engine's ``Request``, a compute provider's
``RemoteRequest``, or anything with the same fields, see ``Generation``); nothing here knows
about HTTP or the event loop. ``settle`` blocks (attribution, the ledger's writer): call it
from a worker thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from openledger.attribution.types import Attribution
from openledger.errors import PaymentRequiredError, StoreError, ValidationError
from openledger.ledger.credit.book import Hold, credit_short
from openledger.ledger.paid.inference import PaidInference, attribution_view
from openledger.ledger.pricing.fees import fee
from openledger.ledger.receipts.canonical import SignedReceipt
from openledger.ledger.receipts.content import AgentTerms
from openledger.serving.sampling import SamplingParams
from openledger.units import fmt_open

log = logging.getLogger(__name__)

CHARGE_TIMEOUT_S = 60.0  # how long ``settle`` waits for the ledger to record the receipts
SETTLE_WAIT_S = 30.0  # how long ``settle_later`` waits for the engine to stop every choice


class Generation(Protocol):
    """What a paid call reads of one choice's generation once it has ended. A compute
    provider's generation also has ``compute``: its signed statement, None until the
    provider signed one (then it is not billed)."""

    @property
    def prompt(self) -> Sequence[int]: ...  # the token ids the model was given

    @property
    def tokens(self) -> Sequence[int]: ...  # the tokens generated (not the stop token)

    @property
    def stop_token(self) -> int | None: ...  # the end-of-sequence token that ended it

    @property
    def finish_reason(self) -> str | None: ...  # stop | length | cancelled | error

    @property
    def done(self) -> bool: ...  # the engine has stopped it


def committed_request(
    api: str,
    call_id: str,
    choice: int,
    params: SamplingParams,
    agent: AgentTerms | None = None,
    **given: Any,
) -> dict[str, Any]:
    """What choice ``choice`` of call ``call_id`` commits to in its receipt's request hash:
    the API, the call and choice, what the caller sent (``given``: the prompt or the
    messages), the sampling parameters and, for a call to an agent, the agent and the hash of
    its configuration."""
    request = {
        "api": api,
        "id": call_id,
        "choice": choice,
        **given,
        "max_tokens": params.max_tokens,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "stop": list(params.stop),
        "seed": params.seed,
        "ignore_eos": params.ignore_eos,
    }
    if agent is not None:
        request["agent"] = f"agent/{agent.name}"
        request["agent_config_hash"] = agent.config_hash
    return request


@dataclass
class _Choice:
    prompt: str  # the text attributed against
    prompt_tokens: int  # billed (0 for a prompt's later choices)
    max_tokens: int
    request: dict[str, Any]  # what the receipt's request hash commits to


@dataclass(frozen=True)
class Settlement:
    """A settled call: each choice's receipt (None where it was not billed), its
    attribution and the receipts' public ids, in choice order."""

    receipts: list[SignedReceipt | None] = field(default_factory=list)
    attributions: list[Attribution | None] = field(default_factory=list)
    receipt_ids: list[str | None] = field(default_factory=list)

    def fields(self) -> dict[str, Any]:
        """What a response adds: ``receipt_id``/``attribution`` (the first choice's) and
        ``receipt_ids``/``attributions`` (every choice's); empty for a call that held
        nothing."""
        if not self.receipts:
            return {}
        views = [attribution_view(a) for a in self.attributions]
        return {
            "receipt_id": self.receipt_ids[0],
            "receipt_ids": self.receipt_ids,
            "attribution": views[0],
            "attributions": views,
        }


class PaidCall:
    """The credit held for one call's choices, settled exactly once (see the module doc):
    by ``settle`` when the call ends, by ``release`` when it fails, or by ``settle_later``
    (a background thread) when the caller went away. Thread-safe: whichever of them comes
    first closes the call."""

    def __init__(
        self, paid: PaidInference, account: str, model: str, agent: AgentTerms | None = None
    ) -> None:
        self.paid = paid
        self.account = account
        self.model = model
        self.agent = agent  # a call to this agent (running ``model``): its price on top
        self.holds: list[Hold] = []
        self._choices: list[_Choice] = []
        self._lock = threading.Lock()
        self._closed = False

    # -- before compute ---------------------------------------------------------------------
    def add(
        self, prompt: str, prompt_tokens: int, max_tokens: int, request: dict[str, Any]
    ) -> None:
        """One choice: its prompt text (for attribution), the prompt tokens it is billed,
        its max_tokens and what its receipt's request hash commits to."""
        self._choices.append(_Choice(prompt, prompt_tokens, max_tokens, request))

    def start(self, submit: Callable[[], None]) -> None:
        """Hold every choice's largest fee (all or none: PaymentRequiredError, for the whole
        call when it has several choices), then ``submit``; whatever fails releases every
        hold and is raised."""
        try:
            for c in self._choices:
                self.holds.append(
                    self.paid.reserve(
                        self.account, self.model, c.prompt_tokens, c.max_tokens, agent=self.agent
                    )
                )
            submit()
        except PaymentRequiredError as exc:
            held = sum(h.amount for h in self.holds)
            self.release()
            if len(self._choices) == 1:
                raise
            raise self._short(int(exc.value or 0) + held) from exc
        except BaseException:
            self.release()
            raise

    def retext(self, i: int, prompt: str, prompt_tokens: int, inner: tuple[str, ...]) -> None:
        """Choice ``i`` of an agent that called others, once they answered: the prompt its
        model was given (what they said in it), the tokens it is charged for (at most what
        was held: ValidationError otherwise) and the receipts of the calls, which its
        receipt names."""
        hold = self.holds[i]
        if prompt_tokens > hold.prompt_tokens:
            raise ValidationError(
                f"the prompt with what the callees said has {prompt_tokens} tokens, more than "
                f"the {hold.prompt_tokens} held for.",
                field="messages",
                value=prompt_tokens,
                fix="shorten the conversation or ask for fewer tokens (max_tokens).",
            )
        self._choices[i].prompt = prompt
        self._choices[i].prompt_tokens = prompt_tokens
        hold.prompt_tokens = prompt_tokens
        hold.inner = inner

    def _short(self, available: int) -> PaymentRequiredError:
        """402 for a call of several choices: what it can cost in all, not its last choice."""
        card = self.paid.serving.model(self.model)
        price_in, price_out = int(card["price_in"]), int(card["price_out"])
        total = sum(fee(c.prompt_tokens, c.max_tokens, price_in, price_out) for c in self._choices)
        if self.agent is not None:
            total += self.agent.price * len(self._choices)
        return credit_short(
            self.account,
            available,
            f"this call's {len(self._choices)} choices can cost up to {fmt_open(total)} OPEN "
            f"together (each is held for its max_tokens at {fmt_open(price_in)}/"
            f"{fmt_open(price_out)} OPEN per 1k tokens)",
            fewer="fewer choices (n), prompts or tokens (max_tokens)",
        )

    # -- closing: exactly once ----------------------------------------------------------------
    @property
    def closed(self) -> bool:
        """Settled or released (or being settled)."""
        return self._closed

    def _close(self) -> bool:
        """Close the call; True for the caller that closed it."""
        with self._lock:
            closed, self._closed = self._closed, True
            return not closed

    def release(self) -> None:
        """Charge nothing: the call failed (idempotent; a no-op once settled)."""
        if self._close():
            for hold in self.holds:
                self.paid.ledger.release(hold)

    def settle(self, generations: Sequence[Generation]) -> Settlement:
        """Attribute and charge every choice of the call, ``generations[i]`` being choice
        ``i``'s (blocking: call it in a worker thread). RuntimeError if the call was already
        settled or released; the first error of a choice's charge is raised once every
        choice was tried (the others' receipts stand)."""
        if not self._close():
            raise RuntimeError("this call was already settled or released")
        n = len(self.holds)
        if n == 0:  # it failed before holding anything
            return Settlement()
        attributions = [self._attribute(i, generations) for i in range(n)]
        # every choice is queued before any is awaited: they share the writer's next group
        pending = [self._submit(i, generations, attributions[i]) for i in range(n)]
        results = [self._receipt(i, p) for i, p in enumerate(pending)]
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]
        ledger = self.paid.ledger
        ids = [ledger.public_id(r.seq) if r is not None else None for r in results]
        return Settlement(results, attributions, ids)

    def settle_later(self, generations: Sequence[Generation]) -> None:
        """Settle in a background thread once the engine has stopped every choice (the
        caller is gone; tokens already generated are still charged). A no-op once the call
        is closed. ``generations`` may still grow while submission finishes: it is read when
        the thread settles."""
        if self._closed:
            return
        if not self.holds:
            self._close()
            return

        def work() -> None:
            deadline = time.monotonic() + SETTLE_WAIT_S
            while not all(g.done for g in generations) and time.monotonic() < deadline:
                time.sleep(0.01)
            try:
                self.settle(generations)
            except RuntimeError:
                pass  # settled meanwhile
            except Exception:
                log.exception("settling an abandoned call of %s failed", self.account)

        threading.Thread(target=work, name="settle-abandoned", daemon=True).start()

    # -- one choice -----------------------------------------------------------------------------
    @staticmethod
    def _billable(i: int, generations: Sequence[Generation]) -> bool:
        g = generations[i] if i < len(generations) else None
        if g is None or g.finish_reason == "error":
            return False
        if getattr(g, "compute", False) is None:  # a provider's, without its statement
            return False
        return bool(g.tokens) or g.finish_reason in ("stop", "length")

    def _attribute(self, i: int, generations: Sequence[Generation]) -> Attribution | None:
        if not self._billable(i, generations):
            return None
        try:
            g = generations[i]
            generated = list(g.tokens) + ([] if g.stop_token is None else [g.stop_token])
            return self.paid.attribute(
                self.model, list(g.prompt), generated, prompt_text=self._choices[i].prompt
            )
        except Exception:  # the tokens were produced: charge them, unattributed
            log.exception("attribution of a %s completion failed; charged unattributed", self.model)
            return None

    def _submit(
        self, i: int, generations: Sequence[Generation], attribution: Attribution | None
    ) -> Any:
        """Queue choice ``i``'s charge; None if it is not billable, or the error that
        refused it (its hold released)."""
        hold = self.holds[i]
        if not self._billable(i, generations):
            self.paid.ledger.release(hold)
            return None
        try:
            g = generations[i]
            tokens = min(len(g.tokens), hold.max_tokens)
            # served by a compute provider: its signed statement, named in the receipt
            hold.compute = getattr(g, "compute", None)
            request = self._choices[i].request
            return self.paid.submit(hold, tokens, request=request, attribution=attribution)
        except BaseException as exc:  # refused before it was queued
            self.paid.ledger.release(hold)
            return exc

    @staticmethod
    def _receipt(i: int, pending: Any) -> Any:
        if pending is None or isinstance(pending, BaseException):
            return pending
        try:
            return pending.result(timeout=CHARGE_TIMEOUT_S)
        except TimeoutError:
            # still queued: the ledger's writer settles (or releases) the hold itself
            return StoreError(
                f"the ledger did not record the charge of choice {i} within "
                f"{CHARGE_TIMEOUT_S} s; it stays queued and will be recorded.",
                field="ledger",
                value=i,
                fix="check the node's database is reachable and not locked by another process.",
            )
        except BaseException as exc:  # the group's transaction failed: the hold is released
            return exc
