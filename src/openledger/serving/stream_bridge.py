"""The engine thread → asyncio bridge: the generations of one call, their events on a loop.

The engine (or a compute provider's client) runs on its own thread and hands each request's
events to a *sink*. A ``StreamBridge`` gives every request of one call a sink that keeps the
request's text (on the engine thread, so the text is there for attribution whoever reads
the events) and forwards ``(choice, event)`` to an asyncio queue on the call's event loop.
The loop side reads them with ``events()`` (streaming) or ``collect()`` (one response);
``cancel()`` stops every request, which frees its cache rows and adapter slots at the
engine's next step. Nothing here knows about payment or HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from openledger.serving.request import Event, Request
from openledger.serving.sampling import SamplingParams
from openledger.serving.service import ServingService

DISCONNECT_POLL_S = 0.25  # how often ``collect`` asks whether the caller is still there


class StreamBridge:
    """The engine requests of one call (``requests[i]`` is choice ``i``); their events
    arrive on ``loop``. Create it on the loop; ``submit`` may run in any thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queue: asyncio.Queue[tuple[int, Event]] = asyncio.Queue()
        self.requests: list[Request] = []
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
        """Every choice (``prompts[i]`` generated with ``params[i]``) fits the context;
        ValidationError naming the field otherwise."""
        for ids, p in zip(prompts, params, strict=True):
            serving.check_fits(len(ids), p.max_tokens)

    def submit(
        self,
        serving: ServingService,
        model: str,
        prompts: list[list[int]],
        params: list[SamplingParams],
    ) -> None:
        """Check every choice fits the context, then submit them all to ``model``, in
        choice order (or none: a failed submission cancels those already submitted)."""
        self.check(serving, prompts, params)
        try:
            for i, (ids, p) in enumerate(zip(prompts, params, strict=True)):
                self._texts.append([])
                self.requests.append(serving.submit(model, ids, p, sink=self._sink(i)))
        except BaseException:
            self.cancel()
            raise

    def cancel(self) -> None:
        """Stop every request still running (idempotent)."""
        for r in self.requests:
            if not r.done:
                r.cancel()

    @property
    def completion_tokens(self) -> int:
        """The tokens generated so far, over every choice."""
        return sum(len(r.tokens) for r in self.requests)

    def text(self, index: int) -> str:
        """What choice ``index`` generated so far (stop sequences trimmed)."""
        return "".join(self._texts[index])

    async def events(self) -> AsyncIterator[tuple[int, Event]]:
        """(choice, event) as they come, until every choice has ended (one ``done`` or
        ``error`` event each)."""
        left = len(self.requests)
        while left:
            index, event = await self._queue.get()
            if event.kind != "token":
                left -= 1
            yield index, event

    async def collect(
        self, is_disconnected: Callable[[], Awaitable[bool]]
    ) -> tuple[list[str], list[str | None]]:
        """Every choice's text and finish reason once all have ended. The first engine
        error is raised; ``is_disconnected`` is polled every ``DISCONNECT_POLL_S`` and every
        request is cancelled once it says True. However it ends, every request still
        running is cancelled."""
        reasons: list[str | None] = [None] * len(self.requests)
        watcher = asyncio.create_task(self._watch(is_disconnected))
        try:
            async for index, event in self.events():
                if event.kind == "error":
                    raise event.error or RuntimeError("the engine failed the request")
                if event.kind == "done":
                    reasons[index] = event.finish_reason
        finally:
            watcher.cancel()
            self.cancel()
        return [self.text(i) for i in range(len(self.requests))], reasons

    async def _watch(self, is_disconnected: Callable[[], Awaitable[bool]]) -> None:
        while True:
            await asyncio.sleep(DISCONNECT_POLL_S)
            if await is_disconnected():
                self.cancel()
                return
