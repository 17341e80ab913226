"""/v1: the OpenAI-compatible API over the node's OpenLoRA engine.

Every route needs an API key (``Authorization: Bearer olk_…``); its account pays. A request
is checked and tokenised off the event loop (the first one loads the base model), then the
largest fee of each choice is held against the account's credit (``PaidInference.reserve``:
402 in OpenAI's format when it is short, before the engine sees anything), then its choices
run on the engine thread; the engine's events come back to this loop through an asyncio
queue. A client that goes away cancels its engine requests, which frees their cache rows
and adapter slots at the engine's next step.

Payment (``_Bill``), once every choice has ended: each choice's text is attributed (in a
worker thread) and charged, one signed receipt per choice. A choice's prompt is billed
once, on the prompt's first choice (``n`` > 1 bills the other choices their completion
tokens only), so the receipts' tokens add up to ``usage``. A choice that ended with no
token because it was cancelled has its hold released; so has every choice of a call the
engine failed. A client that disconnects after tokens were generated is charged for the
tokens produced (they were computed; a stream is settled in the background once the engine
stops). Chat attribution uses the rendered prompt: the chat template's text, generation
prompt included, exactly what the model continued.

Responses carry ``receipt_id`` (the first choice's), ``receipt_ids`` and ``attributions``
(one per choice, in choice order) and ``attribution`` (the first choice's) as extra
top-level fields. A stream carries them on its last chunk before ``[DONE]``: the usage
chunk with ``stream_options.include_usage``, else the last choice's finish chunk (sent once
the call is charged), so every chunk keeps the shape OpenAI's clients expect.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from openledger.agents.runner import AgentRunner, Consulted, fit, with_answers
from openledger.agents.service import AgentRun
from openledger.api.openai_schemas import (
    AssistantMessage,
    ChatChoice,
    ChatCompletion,
    ChatCompletionRequest,
    Completion,
    CompletionChoice,
    CompletionRequest,
    ModelCard,
    ModelList,
    chat_chunk,
    completion_chunk,
    model_card,
    new_id,
    now,
    usage,
)
from openledger.attribution.types import Attribution
from openledger.errors import OpenLedgerError, PaymentRequiredError, StoreError, ValidationError
from openledger.factory.data import DEFAULT_CHAT_TEMPLATE
from openledger.http.credentials import Inferrer
from openledger.http.deps import NodeDep
from openledger.http.errors import openai_error_for
from openledger.http.prompt_budget import check_prompt_chars
from openledger.ledger.credit_book import Hold, credit_short
from openledger.ledger.paid import PaidInference, attribution_view
from openledger.ledger.pricing import fee
from openledger.serving.engine import Event
from openledger.serving.engine import Request as EngineRequest
from openledger.serving.sampling import SamplingParams
from openledger.serving.service import ServingService
from openledger.units import fmt_open

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["openai"])

DISCONNECT_POLL_S = 0.25
SETTLE_WAIT_S = 30.0  # how long a background settlement waits for the engine to stop
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class _PaidFields(BaseModel):
    """What a paid response adds to OpenAI's fields."""

    receipt_id: str | None = Field(
        description="The first choice's receipt: its unguessable public id (GET /receipts/ID)."
    )
    receipt_ids: list[str | None] = Field(description="Each choice's receipt, by index.")
    attribution: dict[str, Any] = Field(description="The first choice's attribution.")
    attributions: list[dict[str, Any]] = Field(description="Each choice's attribution.")


class PaidCompletion(Completion, _PaidFields):
    pass


class PaidChatCompletion(ChatCompletion, _PaidFields):
    pass


# ---------------------------------------------------------------------------- models


@router.get("/models", response_model=ModelList)
def list_models(node: NodeDep, principal: Inferrer) -> ModelList:
    """The models this node serves, with their owners and prices (wei of OPEN per token),
    where each adapter is (``tier``, ``loaded``), and the engine's path and tiers."""
    serving = node.serving
    info = serving.engine_info()
    cards = [model_card(m, serving.status(m["name"]), info["warning"])
             for m in serving.catalogue()]  # fmt: skip
    by_name = {c.id: c for c in cards}
    return ModelList(data=cards + _agent_cards(node, by_name), serving=info)


def _agent_cards(node: Any, models: dict[str, ModelCard]) -> list[ModelCard]:
    """The active agents whose model this node serves, as ``agent/NAME`` (docs/agents.md):
    the model's prices per token, the agent's price per call in ``agent``."""
    out = []
    offset = 0
    while True:
        page = node.agents.list(offset, 200)
        for a in page["items"]:
            card = models.get(a["model"] or "")
            if card is None or not a["active"] or a["config"] is None:
                continue
            out.append(card.model_copy(update={
                "id": f"agent/{a['name']}", "owned_by": a["owner"], "chain_id": int(a["id"]),
                "agent": {"model": a["model"], "price": a["price"],
                          "config_hash": a["config_hash"], "calls": a["config"]["calls"]},
            }))  # fmt: skip
        offset += len(page["items"])
        if not page["items"] or offset >= page["total"]:
            return out


@router.get("/models/agent/{name}", response_model=ModelCard)
def show_agent(name: str, node: NodeDep, principal: Inferrer) -> ModelCard:
    agent = node.agents.resolve(f"agent/{name}")
    serving = node.serving
    card = model_card(serving.model(agent.model), serving.status(agent.model),
                      serving.engine_info()["warning"])  # fmt: skip
    return card.model_copy(update={
        "id": agent.ref, "owned_by": agent.terms.owner, "chain_id": agent.terms.id,
        "agent": {"model": agent.model, "price": str(agent.terms.price),
                  "config_hash": agent.terms.config_hash, "calls": list(agent.config.calls)},
    })  # fmt: skip


@router.get("/models/{model}", response_model=ModelCard)
def show_model(model: str, node: NodeDep, principal: Inferrer) -> ModelCard:
    serving = node.serving
    card = serving.model(model)
    return model_card(card, serving.status(model), serving.engine_info()["warning"])


# ---------------------------------------------------------------------------- completions


@router.post("/completions", response_model=PaidCompletion)
async def completions(
    body: CompletionRequest, request: Request, node: NodeDep, principal: Inferrer
) -> Any:
    """Text completions: one choice per prompt and ``n``, streamed as SSE with ``stream``;
    paid by the key's account (one receipt per choice)."""
    request.app.state.limits.paid_request(request, principal.key_id or principal.address)
    body.check_supported()
    agent = await _agent(node, body.model)
    if agent is not None and agent.config.calls:
        raise ValidationError(
            f"{agent.ref} calls other models; it answers chat requests only.", field="model",
            value=body.model, fix="use POST /v1/chat/completions.",
        )  # fmt: skip
    body = _with_agent_defaults(body, agent)
    model = agent.model if agent else body.model
    prompts = body.prompts()
    if agent is not None and agent.config.system_prompt:
        prompts = [f"{agent.config.system_prompt}\n\n{p}" for p in prompts]
    n = body.choices_per_prompt
    max_tokens = 16 if body.max_tokens is None else body.max_tokens
    params = [body.sampling(max_tokens, i) for i in range(len(prompts) * n)]
    head = {"id": new_id("cmpl"), "created": now(), "model": body.model}
    run = _Run(asyncio.get_running_loop())
    bill = _Bill(node.paid, principal.address, model, agent)

    def start() -> int:
        serving = node.serving
        serving.model(model)
        for p in prompts:  # from the length alone, before any of it is tokenised
            check_prompt_chars(serving.tokenizer(), serving.engine.max_ctx, len(p), "prompt")
        encoded = [serving.encode_prompt(p) for p in prompts]
        ids = [encoded[i // n] for i in range(len(params))]
        run.check(serving, ids, params)
        for i, p in enumerate(params):
            asked = {"api": "completions", "id": head["id"], "choice": i,
                     "prompt": prompts[i // n], **_sampling(p), **_agent_field(agent)}  # fmt: skip
            bill.add(prompts[i // n], len(ids[i]) if i % n == 0 else 0, p.max_tokens, asked)
        bill.start(lambda: run.submit(serving, model, ids, params))
        return sum(len(e) for e in encoded)

    prompt_tokens = await _start(start, run, bill)
    if body.stream:
        events = _sse(
            run,
            bill,
            on_text=lambda i, text: completion_chunk(head, i, text, None),
            on_end=lambda i, reason: completion_chunk(head, i, "", reason),
            usage_chunk=(lambda: _usage_chunk(head, "text_completion", run, prompt_tokens))
            if body.include_usage
            else None,
        )
        return _EventStream(events, run, bill)
    texts, reasons = await run.collect(request, bill)
    paid = await run_in_threadpool(bill.settle, run)
    return PaidCompletion(
        **head,
        choices=[
            CompletionChoice(index=i, text=text, finish_reason=reason)
            for i, (text, reason) in enumerate(zip(texts, reasons, strict=True))
        ],
        usage=usage(prompt_tokens, run.completion_tokens),
        **paid,
    )


@router.post("/chat/completions", response_model=PaidChatCompletion)
async def chat_completions(
    body: ChatCompletionRequest, request: Request, node: NodeDep, principal: Inferrer
) -> Any:
    """Chat completions over the model's chat template; streamed as SSE with ``stream``;
    paid by the key's account (one receipt per choice)."""
    request.app.state.limits.paid_request(request, principal.key_id or principal.address)
    body.check_supported()
    agent = await _agent(node, body.model)
    body = _with_agent_defaults(body, agent)
    model = agent.model if agent else body.model
    n = body.choices_per_prompt
    caller_messages = [m.as_template_input() for m in body.messages]
    messages = caller_messages
    if agent is not None and agent.config.system_prompt:
        messages = [{"role": "system", "content": agent.config.system_prompt}, *messages]
    runner = AgentRunner(node.agents, node.paid) if agent and agent.config.calls else None
    if runner is not None:  # an agent that calls others: its wallets, before any compute
        if n != 1:
            raise ValidationError(
                f"{agent.ref} calls other models, so it answers one choice at a time.",  # type: ignore[union-attr]
                field="n", value=n, fix="ask for n=1.",
            )  # fmt: skip
        await run_in_threadpool(runner.check, agent)
    head = {"id": new_id("chatcmpl"), "created": now(), "model": body.model}
    run = _Run(asyncio.get_running_loop())
    bill = _Bill(node.paid, principal.address, model, agent)
    renames = {"prompt": "messages", "max_tokens": body.max_tokens_field}
    sizes = [0]  # the prompt's tokens (with what the callees said, for an agent that calls)

    def start() -> int:
        serving = node.serving
        serving.model(model)
        chars = sum(len(m["content"]) for m in messages)  # the template only adds to them
        check_prompt_chars(serving.tokenizer(), serving.engine.max_ctx, chars, "messages")
        ids = serving.encode_chat(messages)
        sizes[0] = len(ids)
        prompt = _chat_prompt_text(serving, messages)
        max_tokens = body.requested_max_tokens
        if max_tokens is None:  # the rest of the context, as OpenAI does
            max_tokens = max(1, serving.engine.max_ctx - len(ids))
        # an agent that calls: the prompt held for is as long as the context allows (what
        # the callees say goes into it); it is charged for the tokens it turns out to have
        held = len(ids) if runner is None else max(serving.engine.max_ctx - max_tokens, len(ids))
        with _renamed(renames):
            params = [body.sampling(max_tokens, i) for i in range(n)]
            run.check(serving, [ids] * n, params)
            if runner is not None and agent is not None:  # room for what the callees say
                blank = [Consulted(c.ref, "", "", 0) for c in agent.config.callees]
                least = serving.encode_chat(with_answers(agent.config.system_prompt, blank,
                                                         caller_messages))  # fmt: skip
                if len(least) + max_tokens > serving.engine.max_ctx:
                    raise ValidationError(
                        f"{agent.ref} puts what its {len(blank)} callee(s) say into the "
                        f"prompt: {len(least)} tokens before they say anything, plus "
                        f"{max_tokens} to generate, exceeds the context of "
                        f"{serving.engine.max_ctx}.", field="messages", value=len(least),
                        fix="shorten the conversation or ask for fewer tokens (max_tokens).",
                    )  # fmt: skip
            for i, p in enumerate(params):
                asked = {"api": "chat.completions", "id": head["id"], "choice": i,
                         "messages": messages, **_sampling(p), **_agent_field(agent)}  # fmt: skip
                bill.add(prompt, held if i == 0 else 0, p.max_tokens, asked)

            def consult_and_submit() -> None:
                assert runner is not None and agent is not None
                cfg = agent.config
                consulted = runner.consult(agent, caller_messages)
                consulted, final_ids = fit(
                    lambda c: serving.encode_chat(with_answers(cfg.system_prompt, c,
                                                               caller_messages)),
                    consulted, serving.engine.max_ctx - params[0].max_tokens,
                )  # fmt: skip
                final = with_answers(cfg.system_prompt, consulted, caller_messages)
                bill.retext(0, _chat_prompt_text(serving, final), len(final_ids),
                            tuple(c.receipt_hash for c in consulted))  # fmt: skip
                sizes[0] = len(final_ids)
                run.submit(serving, model, [final_ids], params)

            if runner is None:
                bill.start(lambda: run.submit(serving, model, [ids] * n, params))
            else:
                bill.start(consult_and_submit)
        return sizes[0]

    prompt_tokens = await _start(start, run, bill)
    if body.stream:
        events = _sse(
            run,
            bill,
            first=[chat_chunk(head, i, {"role": "assistant", "content": ""}, None)
                   for i in range(n)],
            on_text=lambda i, text: chat_chunk(head, i, {"content": text}, None),
            on_end=lambda i, reason: chat_chunk(head, i, {}, reason),
            usage_chunk=(lambda: _usage_chunk(head, "chat.completion.chunk", run, prompt_tokens))
            if body.include_usage
            else None,
        )  # fmt: skip
        return _EventStream(events, run, bill)
    texts, reasons = await run.collect(request, bill)
    paid = await run_in_threadpool(bill.settle, run)
    return PaidChatCompletion(
        **head,
        choices=[
            ChatChoice(index=i, message=AssistantMessage(content=text), finish_reason=reason)
            for i, (text, reason) in enumerate(zip(texts, reasons, strict=True))
        ],
        usage=usage(prompt_tokens, run.completion_tokens),
        **paid,
    )


async def _start(start: Callable[[], int], run: _Run, bill: _Bill) -> int:
    """Run ``start`` (tokenise, hold, submit) in a worker thread; if this call is cancelled
    meanwhile, whatever it held and submitted is cancelled and settled once it returns."""
    task = asyncio.ensure_future(run_in_threadpool(start))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:

        def abandon(_: asyncio.Future) -> None:
            run.cancel()
            bill.settle_later(run)

        task.add_done_callback(abandon)
        raise


async def _agent(node: Any, model: str) -> AgentRun | None:
    """The agent a request's ``model`` names (``agent/NAME``), resolved and checked before
    anything is held (docs/agents.md); None for a model."""
    if not model.startswith("agent/"):
        return None
    return await run_in_threadpool(node.agents.resolve, model)


def _with_agent_defaults(body: Any, agent: AgentRun | None) -> Any:
    """The request with the agent's sampling defaults where the caller set none."""
    if agent is None:
        return body
    given, cfg = body.model_fields_set, agent.config
    update: dict[str, Any] = {}
    if "temperature" not in given:
        update["temperature"] = cfg.temperature
    if "top_p" not in given:
        update["top_p"] = cfg.top_p
    if not given & {"max_tokens", "max_completion_tokens"}:
        update["max_tokens"] = cfg.max_tokens
    return body.model_copy(update=update)


def _agent_field(agent: AgentRun | None) -> dict[str, Any]:
    """What a choice's request hash commits to about the agent called."""
    if agent is None:
        return {}
    return {"agent": agent.ref, "agent_config_hash": agent.terms.config_hash}


def _sampling(p: SamplingParams) -> dict[str, Any]:
    """A choice's sampling parameters as its receipt's request hash commits to them."""
    return {"max_tokens": p.max_tokens, "temperature": p.temperature, "top_p": p.top_p,
            "stop": list(p.stop), "seed": p.seed, "ignore_eos": p.ignore_eos}  # fmt: skip


def _chat_prompt_text(serving: ServingService, messages: list[dict[str, str]]) -> str:
    """The text the model continues for a chat (the template, generation prompt included),
    without the template's leading bos: the attributor puts bos before any prompt."""
    tok = serving.tokenizer()
    template = None if getattr(tok, "chat_template", None) else DEFAULT_CHAT_TEMPLATE
    text = tok.apply_chat_template(
        messages, chat_template=template, tokenize=False, add_generation_prompt=True
    )
    bos = tok.bos_token or ""
    return text[len(bos) :] if bos and text.startswith(bos) else text


# ---------------------------------------------------------------------------- payment


CHARGE_TIMEOUT_S = 60.0  # how long a response waits for its receipts


class _Bill:
    """The credit held for one API call's choices, settled exactly once (see the module doc):
    by ``settle`` when the call ends, by ``release`` when it fails, or by ``settle_later``
    (a background thread) when the client went away."""

    def __init__(self, paid: PaidInference, account: str, model: str,
                 agent: AgentRun | None = None) -> None:  # fmt: skip
        self.paid = paid
        self.account = account
        self.model = model
        self.agent = agent  # a call to this agent (running ``model``): its price on top
        self._choices: list[tuple[str, int, int, dict[str, Any]]] = []
        self.holds: list[Hold] = []
        self._lock = threading.Lock()
        self._closed = False

    def add(
        self, prompt: str, prompt_tokens: int, max_tokens: int, request: dict[str, Any]
    ) -> None:
        """One choice: its prompt text (for attribution), the prompt tokens it is billed,
        its max_tokens and what its receipt's request hash commits to."""
        self._choices.append((prompt, prompt_tokens, max_tokens, request))

    def start(self, submit: Callable[[], None]) -> None:
        """Hold every choice's largest fee (all or none: PaymentRequiredError), then submit."""
        try:
            for _, prompt_tokens, max_tokens, _ in self._choices:
                self.holds.append(
                    self.paid.reserve(self.account, self.model, prompt_tokens, max_tokens,
                                      agent=self.agent.terms if self.agent else None)
                )  # fmt: skip
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
        was held) and the receipts of the calls, which its receipt names."""
        _, _, max_tokens, request = self._choices[i]
        hold = self.holds[i]
        if prompt_tokens > hold.prompt_tokens:
            raise ValidationError(
                f"the prompt with what the callees said has {prompt_tokens} tokens, more than "
                f"the {hold.prompt_tokens} held for.", field="messages", value=prompt_tokens,
                fix="shorten the conversation or ask for fewer tokens (max_tokens).",
            )  # fmt: skip
        self._choices[i] = (prompt, prompt_tokens, max_tokens, request)
        hold.prompt_tokens = prompt_tokens
        hold.inner = inner

    def _short(self, available: int) -> PaymentRequiredError:
        """402 for a call of several choices: what it can cost in all, not its last choice."""
        card = self.paid.serving.model(self.model)
        price_in, price_out = int(card["price_in"]), int(card["price_out"])
        total = sum(fee(pt, mt, price_in, price_out) for _, pt, mt, _ in self._choices)
        if self.agent is not None:
            total += self.agent.terms.price * len(self._choices)
        return credit_short(
            self.account, available,
            f"this call's {len(self._choices)} choices can cost up to {fmt_open(total)} OPEN "
            f"together (each is held for its max_tokens at {fmt_open(price_in)}/"
            f"{fmt_open(price_out)} OPEN per 1k tokens)",
            fewer="fewer choices (n), prompts or tokens (max_tokens)",
        )  # fmt: skip

    def _close(self) -> bool:
        with self._lock:
            closed, self._closed = self._closed, True
            return not closed

    def release(self) -> None:
        """Charge nothing: the call failed (idempotent; a no-op once settled)."""
        if self._close():
            for hold in self.holds:
                self.paid.ledger.release(hold)

    def settle(self, run: _Run) -> dict[str, Any]:
        """Attribute and charge every choice of a finished ``run`` (blocking: call it in a
        worker thread); the response's receipt and attribution fields."""
        if not self._close():
            raise RuntimeError("this call was already settled or released")
        n = len(self.holds)
        if n == 0:  # it failed before holding anything
            return {}
        attributions = [self._attribute(i, run) for i in range(n)]
        # every choice is queued before any is awaited: they share the writer's next group
        pending = [self._submit(i, run, attributions[i]) for i in range(n)]
        results = [self._receipt(i, p) for i, p in enumerate(pending)]
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]
        ledger = self.paid.ledger
        ids = [ledger.public_id(r.seq) if r is not None else None for r in results]
        views = [attribution_view(a) for a in attributions]
        return {"receipt_id": ids[0], "receipt_ids": ids, "attribution": views[0],
                "attributions": views}  # fmt: skip

    def settle_later(self, run: _Run) -> None:
        """Settle in a background thread once the engine has stopped every choice (the
        client is gone; tokens already generated are still charged)."""
        if self._closed:
            return
        if not self.holds:
            self._close()
            return

        def work() -> None:
            deadline = time.monotonic() + SETTLE_WAIT_S
            while not all(r.done for r in run.requests) and time.monotonic() < deadline:
                time.sleep(0.01)
            try:
                self.settle(run)
            except RuntimeError:
                pass  # settled meanwhile
            except Exception:
                log.exception("settling an abandoned call of %s failed", self.account)

        threading.Thread(target=work, name="settle-abandoned", daemon=True).start()

    def _billable(self, i: int, run: _Run) -> bool:
        r = run.requests[i] if i < len(run.requests) else None
        if r is None or r.finish_reason == "error":
            return False
        if getattr(r, "compute", False) is None:  # a provider's, without its statement
            return False
        return bool(r.tokens) or r.finish_reason in ("stop", "length")

    def _attribute(self, i: int, run: _Run) -> Attribution | None:
        if not self._billable(i, run):
            return None
        try:
            r = run.requests[i]
            generated = list(r.tokens) + ([] if r.stop_token is None else [r.stop_token])
            return self.paid.attribute(self.model, list(r.prompt), generated,
                                       prompt_text=self._choices[i][0])  # fmt: skip
        except Exception:  # the tokens were produced: charge them, unattributed
            log.exception("attribution of a %s completion failed; charged unattributed", self.model)
            return None

    def _submit(self, i: int, run: _Run, attribution: Attribution | None) -> Any:
        """Queue choice ``i``'s charge; None if it is not billable, or the error that
        refused it (its hold released)."""
        hold = self.holds[i]
        if not self._billable(i, run):
            self.paid.ledger.release(hold)
            return None
        try:
            tokens = min(len(run.requests[i].tokens), hold.max_tokens)
            # served by a compute provider: its signed statement, named in the receipt
            hold.compute = getattr(run.requests[i], "compute", None)
            request = self._choices[i][3]
            return self.paid.submit(hold, tokens, request=request, attribution=attribution)
        except BaseException as exc:  # refused before it was queued
            self.paid.ledger.release(hold)
            return exc

    def _receipt(self, i: int, pending: Any) -> Any:
        if pending is None or isinstance(pending, BaseException):
            return pending
        try:
            return pending.result(timeout=CHARGE_TIMEOUT_S)
        except TimeoutError:
            # still queued: the ledger's writer settles (or releases) the hold itself
            return StoreError(
                f"the ledger did not record the charge of choice {i} within "
                f"{CHARGE_TIMEOUT_S} s; it stays queued and will be recorded.",
                field="ledger", value=i,
                fix="check the node's database is reachable and not locked by another "
                "process.",
            )  # fmt: skip
        except BaseException as exc:  # the group's transaction failed: the hold is released
            return exc


# ---------------------------------------------------------------------------- the bridge


class _Run:
    """The engine requests of one API call; their events arrive on this event loop (and
    their text is kept, on the engine thread, for attribution whoever reads the events)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queue: asyncio.Queue[tuple[int, Event]] = asyncio.Queue()
        self.requests: list[EngineRequest] = []
        self._texts: list[list[str]] = []

    def _sink(self, index: int) -> Callable[[Event], None]:
        texts = self._texts[index]

        def put(event: Event) -> None:  # on the engine thread: must never raise
            if event.kind == "token":
                texts.append(event.text)
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody listens
                self._loop.call_soon_threadsafe(self._queue.put_nowait, (index, event))

        return put

    @staticmethod
    def check(
        serving: ServingService, prompts: list[list[int]], params: list[SamplingParams]
    ) -> None:
        """Every choice fits the context (ValidationError naming the field otherwise)."""
        for ids, p in zip(prompts, params, strict=True):
            serving.check_fits(len(ids), p.max_tokens)

    def submit(
        self,
        serving: ServingService,
        model: str,
        prompts: list[list[int]],
        params: list[SamplingParams],
    ) -> None:
        """Check every choice fits the context, then submit them all (or none)."""
        self.check(serving, prompts, params)
        try:
            for i, (ids, p) in enumerate(zip(prompts, params, strict=True)):
                self._texts.append([])
                self.requests.append(serving.submit(model, ids, p, sink=self._sink(i)))
        except BaseException:
            self.cancel()
            raise

    def cancel(self) -> None:
        for r in self.requests:
            if not r.done:
                r.cancel()

    @property
    def completion_tokens(self) -> int:
        return sum(len(r.tokens) for r in self.requests)

    def text(self, index: int) -> str:
        """What choice ``index`` generated so far (stop sequences trimmed)."""
        return "".join(self._texts[index])

    async def events(self) -> AsyncIterator[tuple[int, Event]]:
        """(choice, event) until every choice has ended."""
        left = len(self.requests)
        while left:
            index, event = await self._queue.get()
            if event.kind != "token":
                left -= 1
            yield index, event

    async def collect(self, request: Request, bill: _Bill) -> tuple[list[str], list[str | None]]:
        """Every choice's text and finish reason; cancels all if the client goes away. An
        engine failure releases the bill; a cancelled call is settled in the background."""
        reasons: list[str | None] = [None] * len(self.requests)
        watcher = asyncio.create_task(self._watch(request))
        try:
            async for index, event in self.events():
                if event.kind == "error":
                    raise event.error or RuntimeError("the engine failed the request")
                if event.kind == "done":
                    reasons[index] = event.finish_reason
        except asyncio.CancelledError:
            bill.settle_later(self)
            raise
        except BaseException:
            bill.release()
            raise
        finally:
            watcher.cancel()
            self.cancel()
        return [self.text(i) for i in range(len(self.requests))], reasons

    async def _watch(self, request: Request) -> None:
        while True:
            await asyncio.sleep(DISCONNECT_POLL_S)
            if await request.is_disconnected():
                self.cancel()
                return


def _data(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n"


def _usage_chunk(head: dict[str, Any], obj: str, run: _Run, prompt_tokens: int) -> dict[str, Any]:
    return {**head, "object": obj, "choices": [],
            "usage": usage(prompt_tokens, run.completion_tokens).model_dump()}  # fmt: skip


async def _sse(
    run: _Run,
    bill: _Bill,
    *,
    on_text: Callable[[int, str], dict[str, Any]],
    on_end: Callable[[int, str | None], dict[str, Any]],
    usage_chunk: Callable[[], dict[str, Any]] | None,
    first: list[dict[str, Any]] | None = None,
) -> AsyncIterator[str]:
    """The run's events as server-sent events, then the charge's receipt and attribution
    fields on the last chunk (the usage chunk, or the last finish chunk, held back until the
    call is charged), then ``[DONE]``. An engine error (holds released) or a failed charge
    ends the stream with an OpenAI error object. However the stream ends, the run is
    cancelled, and a stream left early is charged for what it generated."""

    def chunk(payload: dict[str, Any]) -> str:
        if usage_chunk is not None:  # OpenAI: every chunk has usage, null but the last
            payload = {**payload, "usage": None}
        return _data(payload)

    last: dict[str, Any] | None = None
    try:
        for payload in first or []:
            yield chunk(payload)
        ended = 0
        async for index, event in run.events():
            if event.kind == "token":
                if event.text:
                    yield chunk(on_text(index, event.text))
            elif event.kind == "done":
                ended += 1
                end = on_end(index, event.finish_reason)
                if usage_chunk is None and ended == len(run.requests):
                    last = end
                else:
                    yield chunk(end)
            else:
                bill.release()
                error = event.error or RuntimeError("the engine failed the request")
                if not isinstance(error, OpenLedgerError):
                    log.error("a streamed request failed", exc_info=error)
                yield _data(openai_error_for(error)[1])
                return
        try:
            paid = await run_in_threadpool(bill.settle, run)
        except Exception as exc:
            if not isinstance(exc, OpenLedgerError):
                log.error("charging a streamed request failed", exc_info=exc)
            yield _data(openai_error_for(exc)[1])
            return
        if usage_chunk is not None:
            yield _data({**usage_chunk(), **paid})
        else:
            assert last is not None
            yield chunk({**last, **paid})
        yield "data: [DONE]\n\n"
    finally:
        run.cancel()
        bill.settle_later(run)


class _EventStream(StreamingResponse):
    """``text/event-stream`` that cancels its engine requests however the response ends
    (finished, client gone, server shutting down), and then settles its bill if the stream
    did not get to (what was generated is charged)."""

    def __init__(self, content: AsyncIterator[str], run: _Run, bill: _Bill) -> None:
        super().__init__(content, media_type="text/event-stream", headers=SSE_HEADERS)
        self._run = run
        self._bill = bill

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._run.cancel()
            self._bill.settle_later(self._run)


@contextlib.contextmanager
def _renamed(fields: dict[str, str]) -> Iterator[None]:
    """Re-raise a ValidationError under the request's own field name (chat has no prompt)."""
    try:
        yield
    except ValidationError as exc:
        if exc.field in fields and fields[exc.field] != exc.field:
            raise ValidationError(
                exc.message, field=fields[exc.field], value=exc.value, fix=exc.fix
            ) from exc
        raise
