"""Server-sent events for a paid stream: OpenAI's chunk framing, the charge on the last chunk.

A stream is ``data: {json}\\n\\n`` frames, then ``data: [DONE]\\n\\n``. A paid stream (the /v1
routes with ``stream``) frames a ``StreamBridge``'s events as they arrive, then settles its
``PaidCall`` and sends the receipt and attribution fields on its last chunk: the usage chunk
when the caller asked for usage (``stream_options.include_usage``), else the last choice's
finish chunk, held back until the call is charged. So every chunk keeps the shape OpenAI's
clients expect, and a client that reads to ``[DONE]`` has its receipts.

An engine error (every hold released) or a failed charge ends the stream with an OpenAI
error object instead of ``[DONE]``. However the stream ends (finished, client gone, server
shutting down), the call's engine requests are cancelled and a call that was not settled
is settled in the background for what it generated (``PaidCall.settle_later``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from openledger.errors import OpenLedgerError
from openledger.http.errors import openai_error_for
from openledger.ledger.paid.call import PaidCall
from openledger.serving.stream_bridge import StreamBridge

log = logging.getLogger(__name__)

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
DONE = "data: [DONE]\n\n"

Chunk = dict[str, Any]


def data(payload: Chunk) -> str:
    """One SSE frame of compact JSON."""
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n"


async def paid_events(
    run: StreamBridge,
    call: PaidCall,
    *,
    on_text: Callable[[int, str], Chunk],
    on_end: Callable[[int, str | None], Chunk],
    usage_chunk: Callable[[], Chunk] | None,
    first: list[Chunk] | None = None,
) -> AsyncIterator[str]:
    """The frames of a paid stream (see the module doc): ``first`` (e.g. chat's role
    chunks), then ``on_text(choice, text)`` for each piece of text and ``on_end(choice,
    finish_reason)`` for each choice that ends, then the charge's fields on the last chunk
    (``usage_chunk()``'s when given: every other chunk then carries ``"usage": null``, as
    OpenAI's do), then ``[DONE]``."""

    def chunk(payload: Chunk) -> str:
        if usage_chunk is not None:  # OpenAI: every chunk has usage, null but the last
            payload = {**payload, "usage": None}
        return data(payload)

    last: Chunk | None = None
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
                call.release()
                error = event.error or RuntimeError("the engine failed the request")
                if not isinstance(error, OpenLedgerError):
                    log.error("a streamed request failed", exc_info=error)
                yield data(openai_error_for(error)[1])
                return
        try:
            paid = (await run_in_threadpool(call.settle, run.requests)).fields()
        except Exception as exc:
            if not isinstance(exc, OpenLedgerError):
                log.error("charging a streamed request failed", exc_info=exc)
            yield data(openai_error_for(exc)[1])
            return
        if usage_chunk is not None:
            yield data({**usage_chunk(), **paid})
        else:
            assert last is not None
            yield chunk({**last, **paid})
        yield DONE
    finally:
        run.cancel()
        call.settle_later(run.requests)


class EventStream(StreamingResponse):
    """``text/event-stream`` that cancels its engine requests however the response ends
    (finished, client gone, server shutting down), and then settles its call if the stream
    did not get to (what was generated is charged)."""

    def __init__(self, content: AsyncIterator[str], run: StreamBridge, call: PaidCall) -> None:
        super().__init__(content, media_type="text/event-stream", headers=SSE_HEADERS)
        self._run = run
        self._call = call

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._run.cancel()
            self._call.settle_later(self._run.requests)
