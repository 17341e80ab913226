"""A paid call on the event loop: started off the loop, then answered whole or streamed.

The /v1 routes build a ``PaidCall`` (the credit held for the call's choices) and a
``StreamBridge`` (the engine requests of the call, their events on this loop), then:

- ``start``: run the blocking part (tokenise, hold, submit) in a worker thread. If the
  request is cancelled meanwhile, whatever was held and submitted is cancelled and settled
  once the thread returns, so no hold is left behind.
- ``finish``: wait for every choice (cancelling all if the client goes away), then settle
  the call in a worker thread; an engine failure releases it, a request cancelled here (the
  server going down) is settled in the background for what it generated.
- ``stream``: the call as server-sent events (``api.sse``), settled at the end of the
  stream, or in the background however the stream is cut short.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from openledger.api.openai_schemas import usage_chunk
from openledger.api.sse import Chunk, EventStream, paid_events
from openledger.ledger.paid.call import PaidCall
from openledger.serving.stream_bridge import StreamBridge


async def start(begin: Callable[[], int], run: StreamBridge, call: PaidCall) -> int:
    """``begin()`` (tokenise, hold, submit; returns the prompt tokens) in a worker thread;
    if this request is cancelled meanwhile, whatever it held and submitted is cancelled and
    settled once it returns."""
    task = asyncio.ensure_future(run_in_threadpool(begin))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:

        def abandon(_: asyncio.Future[int]) -> None:
            run.cancel()
            call.settle_later(run.requests)

        task.add_done_callback(abandon)
        raise


async def finish(
    run: StreamBridge, call: PaidCall, request: Request
) -> tuple[list[str], list[str | None], dict[str, Any]]:
    """Every choice's text and finish reason (all cancelled if the client goes away), then
    the call settled: the response's receipt and attribution fields. An engine failure
    releases the call and is raised; a request cancelled while it waits is settled in the
    background."""
    try:
        texts, reasons = await run.collect(request.is_disconnected)
    except asyncio.CancelledError:
        call.settle_later(run.requests)
        raise
    except BaseException:
        call.release()
        raise
    settled = await run_in_threadpool(call.settle, run.requests)
    return texts, reasons, settled.fields()


def stream(
    run: StreamBridge,
    call: PaidCall,
    head: dict[str, Any],
    obj: str,
    prompt_tokens: int,
    include_usage: bool,
    *,
    on_text: Callable[[int, str], Chunk],
    on_end: Callable[[int, str | None], Chunk],
    first: list[Chunk] | None = None,
) -> EventStream:
    """The call as a paid SSE stream of ``obj`` chunks (``api.sse.paid_events``), ending
    with a usage chunk when ``include_usage``."""

    def usage() -> Chunk:
        return usage_chunk(head, obj, prompt_tokens, run.completion_tokens)

    events = paid_events(
        run,
        call,
        on_text=on_text,
        on_end=on_end,
        usage_chunk=usage if include_usage else None,
        first=first,
    )
    return EventStream(events, run, call)
