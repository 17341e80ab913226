"""A generation request as the engine tracks it, and what its consumer receives.

A request is created by ``Engine.submit``; the engine thread feeds it tokens and ends it
with one ``done`` (or ``error``) event; its consumer reads ``events()`` or ``wait()``, or
passes a ``sink`` that receives every event on the engine thread.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from openledger.serving.sampling import SamplingParams, TextStream

_ids = itertools.count(1)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    """What a request's consumer receives: text as it is produced, then one end event."""

    kind: str  # "token" | "done" | "error"
    text: str = ""
    token: int | None = None
    finish_reason: str | None = None  # "stop" | "length" | "cancelled"
    error: Exception | None = None
    at: float = field(default_factory=time.perf_counter)


@dataclass
class Completion:
    text: str
    tokens: list[int]
    finish_reason: str
    prompt_tokens: int
    adapter: str | None
    stop_token: int | None = None  # the end-of-sequence token that ended it, if one did

    @property
    def generated(self) -> list[int]:
        """Every token the model generated, the end-of-sequence token included (what
        attribution credits: exactly what the model produced)."""
        return self.tokens + ([] if self.stop_token is None else [self.stop_token])


class Request:
    """One generation: created by ``Engine.submit``, consumed by ``events()`` or ``wait()``."""

    def __init__(
        self,
        prompt: list[int],
        adapter: str | None,
        params: SamplingParams,
        tokenizer: Any,
        sink: Callable[[Event], None] | None,
    ) -> None:
        self.id = next(_ids)
        self.prompt = prompt
        self.adapter = adapter
        self.params = params
        self.generator = params.generator()
        self.stream = TextStream(tokenizer, params.stop)
        self.tokens: list[int] = []
        self.length = 0  # tokens whose keys and values are in the cache
        self.pending: int | None = None  # sampled, not yet fed back
        self.slot = 0
        self.finish_reason: str | None = None
        self.stop_token: int | None = None  # the eos token that ended the request
        self.error: Exception | None = None
        self.cancelled = False
        self.submitted_at = time.perf_counter()
        # sees every event before the consumer does (the node's metrics: TTFT, TPOT, tokens)
        self.observer: Callable[[Request, Event], None] | None = None
        self._queue: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self._sink = sink or self._queue.put
        self._done = threading.Event()

    def emit(self, event: Event) -> None:
        if self.observer is not None:
            try:
                self.observer(self, event)
            except Exception:  # metrics must never fail a request
                log.exception("request %s: its observer failed", self.id)
        try:
            self._sink(event)
        except Exception:  # a consumer's failure must never reach the engine thread
            log.exception("request %s: its event sink failed; cancelling it", self.id)
            self.cancelled = True
        if event.kind != "token":
            self._done.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def cancel(self) -> None:
        """Stop generating; the engine frees the request's memory at its next step."""
        self.cancelled = True

    def events(self, timeout: float | None = None) -> Iterator[Event]:
        while True:
            event = self._queue.get(timeout=timeout)
            yield event
            if event.kind != "token":
                return

    def wait(self, timeout: float | None = None) -> Completion:
        text: list[str] = []
        for event in self.events(timeout):
            if event.kind == "error":
                assert event.error is not None
                raise event.error
            text.append(event.text)
        return Completion(
            "".join(text),
            list(self.tokens),
            self.finish_reason or "stop",
            len(self.prompt),
            self.adapter,
            self.stop_token,
        )


__all__ = ["Completion", "Event", "Request"]
