"""/v1: the OpenAI-compatible API over the node's OpenLoRA engine.

Every route needs an API key (``Authorization: Bearer olk_…``). A request is checked and
tokenised off the event loop (the first one loads the base model), then its choices run on
the engine thread; the engine's events come back to this loop through an asyncio queue.
A client that goes away cancels its engine requests, which frees their cache rows and
adapter slots at the engine's next step.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from openledger.api.deps import NodeDep, PrincipalDep
from openledger.api.errors import openai_error_for
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
from openledger.errors import OpenLedgerError, ValidationError
from openledger.serving.engine import Event
from openledger.serving.engine import Request as EngineRequest
from openledger.serving.sampling import SamplingParams
from openledger.serving.service import ServingService

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["openai"])

DISCONNECT_POLL_S = 0.25
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


# ---------------------------------------------------------------------------- models


@router.get("/models", response_model=ModelList)
def list_models(node: NodeDep, principal: PrincipalDep) -> ModelList:
    """The models this node serves, with their owners and prices (wei of OPEN per token)."""
    return ModelList(data=[model_card(m) for m in node.serving.catalogue()])


@router.get("/models/{model}", response_model=ModelCard)
def show_model(model: str, node: NodeDep, principal: PrincipalDep) -> ModelCard:
    return model_card(node.serving.model(model))


# ---------------------------------------------------------------------------- completions


@router.post("/completions", response_model=Completion)
async def completions(
    body: CompletionRequest, request: Request, node: NodeDep, principal: PrincipalDep
) -> Any:
    """Text completions: one choice per prompt and ``n``, streamed as SSE with ``stream``."""
    body.check_supported()
    prompts = body.prompts()
    n = body.choices_per_prompt
    max_tokens = 16 if body.max_tokens is None else body.max_tokens
    params = [body.sampling(max_tokens, i) for i in range(len(prompts) * n)]
    run = _Run(asyncio.get_running_loop())

    def start() -> int:
        serving = node.serving
        serving.model(body.model)
        encoded = [serving.encode_prompt(p) for p in prompts]
        run.submit(serving, body.model, [encoded[i // n] for i in range(len(params))], params)
        return sum(len(ids) for ids in encoded)

    prompt_tokens = await run_in_threadpool(start)
    head = {"id": new_id("cmpl"), "created": now(), "model": body.model}
    if body.stream:
        events = _sse(
            run,
            on_text=lambda i, text: completion_chunk(head, i, text, None),
            on_end=lambda i, reason: completion_chunk(head, i, "", reason),
            usage_chunk=(lambda: _usage_chunk(head, "text_completion", run, prompt_tokens))
            if body.include_usage
            else None,
        )
        return _EventStream(events, run)
    texts, reasons = await run.collect(request)
    return Completion(
        **head,
        choices=[
            CompletionChoice(index=i, text=text, finish_reason=reason)
            for i, (text, reason) in enumerate(zip(texts, reasons, strict=True))
        ],
        usage=usage(prompt_tokens, run.completion_tokens),
    )


@router.post("/chat/completions", response_model=ChatCompletion)
async def chat_completions(
    body: ChatCompletionRequest, request: Request, node: NodeDep, principal: PrincipalDep
) -> Any:
    """Chat completions over the model's chat template; streamed as SSE with ``stream``."""
    body.check_supported()
    n = body.choices_per_prompt
    messages = [m.as_template_input() for m in body.messages]
    run = _Run(asyncio.get_running_loop())
    renames = {"prompt": "messages", "max_tokens": body.max_tokens_field}

    def start() -> int:
        serving = node.serving
        serving.model(body.model)
        ids = serving.encode_chat(messages)
        max_tokens = body.requested_max_tokens
        if max_tokens is None:  # the rest of the context, as OpenAI does
            max_tokens = max(1, serving.engine.max_ctx - len(ids))
        with _renamed(renames):
            params = [body.sampling(max_tokens, i) for i in range(n)]
            run.submit(serving, body.model, [ids] * n, params)
        return len(ids)

    prompt_tokens = await run_in_threadpool(start)
    head = {"id": new_id("chatcmpl"), "created": now(), "model": body.model}
    if body.stream:
        events = _sse(
            run,
            first=[chat_chunk(head, i, {"role": "assistant", "content": ""}, None)
                   for i in range(n)],
            on_text=lambda i, text: chat_chunk(head, i, {"content": text}, None),
            on_end=lambda i, reason: chat_chunk(head, i, {}, reason),
            usage_chunk=(lambda: _usage_chunk(head, "chat.completion.chunk", run, prompt_tokens))
            if body.include_usage
            else None,
        )  # fmt: skip
        return _EventStream(events, run)
    texts, reasons = await run.collect(request)
    return ChatCompletion(
        **head,
        choices=[
            ChatChoice(index=i, message=AssistantMessage(content=text), finish_reason=reason)
            for i, (text, reason) in enumerate(zip(texts, reasons, strict=True))
        ],
        usage=usage(prompt_tokens, run.completion_tokens),
    )


# ---------------------------------------------------------------------------- the bridge


class _Run:
    """The engine requests of one API call; their events arrive on this event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queue: asyncio.Queue[tuple[int, Event]] = asyncio.Queue()
        self.requests: list[EngineRequest] = []

    def _sink(self, index: int) -> Callable[[Event], None]:
        def put(event: Event) -> None:  # on the engine thread: must never raise
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody listens
                self._loop.call_soon_threadsafe(self._queue.put_nowait, (index, event))

        return put

    def submit(
        self,
        serving: ServingService,
        model: str,
        prompts: list[list[int]],
        params: list[SamplingParams],
    ) -> None:
        """Check every choice fits the context, then submit them all (or none)."""
        for ids, p in zip(prompts, params, strict=True):
            serving.check_fits(len(ids), p.max_tokens)
        try:
            for i, (ids, p) in enumerate(zip(prompts, params, strict=True)):
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

    async def events(self) -> AsyncIterator[tuple[int, Event]]:
        """(choice, event) until every choice has ended."""
        left = len(self.requests)
        while left:
            index, event = await self._queue.get()
            if event.kind != "token":
                left -= 1
            yield index, event

    async def collect(self, request: Request) -> tuple[list[str], list[str | None]]:
        """Every choice's text and finish reason; cancels all if the client goes away."""
        texts: list[list[str]] = [[] for _ in self.requests]
        reasons: list[str | None] = [None] * len(self.requests)
        watcher = asyncio.create_task(self._watch(request))
        try:
            async for index, event in self.events():
                if event.kind == "error":
                    raise event.error or RuntimeError("the engine failed the request")
                if event.kind == "token":
                    texts[index].append(event.text)
                else:
                    reasons[index] = event.finish_reason
        finally:
            watcher.cancel()
            self.cancel()
        return ["".join(t) for t in texts], reasons

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
    *,
    on_text: Callable[[int, str], dict[str, Any]],
    on_end: Callable[[int, str | None], dict[str, Any]],
    usage_chunk: Callable[[], dict[str, Any]] | None,
    first: list[dict[str, Any]] | None = None,
) -> AsyncIterator[str]:
    """The run's events as server-sent events, then ``[DONE]``; an engine error ends the
    stream with an OpenAI error object. However the stream ends, the run is cancelled."""

    def chunk(payload: dict[str, Any]) -> str:
        if usage_chunk is not None:  # OpenAI: every chunk has usage, null but the last
            payload = {**payload, "usage": None}
        return _data(payload)

    try:
        for payload in first or []:
            yield chunk(payload)
        async for index, event in run.events():
            if event.kind == "token":
                if event.text:
                    yield chunk(on_text(index, event.text))
            elif event.kind == "done":
                yield chunk(on_end(index, event.finish_reason))
            else:
                error = event.error or RuntimeError("the engine failed the request")
                if not isinstance(error, OpenLedgerError):
                    log.error("a streamed request failed", exc_info=error)
                yield _data(openai_error_for(error)[1])
                return
        if usage_chunk is not None:
            yield _data(usage_chunk())
        yield "data: [DONE]\n\n"
    finally:
        run.cancel()


class _EventStream(StreamingResponse):
    """``text/event-stream`` that cancels its engine requests however the response ends
    (finished, client gone, server shutting down)."""

    def __init__(self, content: AsyncIterator[str], run: _Run) -> None:
        super().__init__(content, media_type="text/event-stream", headers=SSE_HEADERS)
        self._run = run

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._run.cancel()


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
