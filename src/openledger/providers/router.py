"""The gateway's side: which providers serve a model, and a request run on one of them.

``ProviderRouter.submit`` is asked first by the serving service for every request. It
returns None when no registered, active provider serves the model (the node's own engine
serves it); otherwise a ``RemoteRequest`` that behaves as an engine request (tokens, finish
reason, stop token, events to a sink, ``cancel``) while the tokens come from a provider.

Routing: the provider with the fewest requests in flight (ties: the next in turn). A
provider that cannot be reached or refuses the job before its first token is skipped and
the next is tried (fail-over); one that fails after its first token ends the request with an
error, so the caller's hold is released (refunded, never charged twice). The provider's
closing statement must be signed by its registered key and name the tokens received
(``ledger.compute``), else the request ends with an error and nothing is charged; that
provider is then left out for ``PENALTY_S``.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from openledger.errors import ChainError, ConflictError, OpenLedgerError, StoreError
from openledger.ledger.receipts.canonical import ReceiptSigner
from openledger.ledger.receipts.compute import job_hash, output_hash, statement_signer
from openledger.ledger.receipts.content import ComputeProof
from openledger.providers.jobs import make_job, sign_job
from openledger.serving.request import Completion, Event
from openledger.serving.sampling import SamplingParams, TextStream

log = logging.getLogger(__name__)

DIRECTORY_TTL_S = 5.0  # how long the list of providers read from the chain is reused
PENALTY_S = 60.0  # a provider that misbehaved is skipped this long
CONNECT_S = 3.0
READ_S = 120.0


@dataclass(frozen=True)
class Route:
    """A provider as the gateway routes to it."""

    address: str
    endpoint: str
    model_ids: tuple[int, ...]


class ProviderError(OpenLedgerError):
    http_status = 502


class RemoteRequest:
    """An engine request served by a provider (see the module docstring)."""

    def __init__(
        self,
        model: str,
        prompt: list[int],
        params: SamplingParams,
        tokenizer: Any,
        sink: Callable[[Event], None] | None,
    ) -> None:
        self.model = model
        self.prompt = prompt
        self.params = params
        self.tokens: list[int] = []
        self.stop_token: int | None = None
        self.finish_reason: str | None = None
        self.error: Exception | None = None
        self.compute: ComputeProof | None = None
        self.provider: str | None = None
        self.cancelled = False
        self.stream = TextStream(tokenizer, params.stop)
        self._sink = sink or (lambda e: None)
        self._text: list[str] = []
        self._done = threading.Event()
        self._response: httpx.Response | None = None

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def cancel(self) -> None:
        """Stop: the provider sees the connection close and cancels its engine request. A
        request cancelled before the provider's statement is not charged (no statement)."""
        self.cancelled = True
        response = self._response
        if response is not None:
            with contextlib.suppress(Exception):  # closing from another thread may race
                response.close()

    def wait(self, timeout: float | None = None) -> Completion:
        """The finished request, as ``serving.request.Request.wait`` gives it (raises its
        error)."""
        if not self._done.wait(timeout):
            raise TimeoutError("the provider did not finish the request in time")
        if self.error is not None:
            raise self.error
        return Completion(
            "".join(self._text),
            list(self.tokens),
            self.finish_reason or "stop",
            len(self.prompt),
            self.model,
            self.stop_token,
        )

    def emit(self, event: Event) -> None:
        if event.kind == "token":
            self._text.append(event.text)
        try:
            self._sink(event)
        except Exception:
            log.exception("a remote request's sink failed; cancelling it")
            self.cancelled = True
        if event.kind != "token":
            self._done.set()

    def fail(self, error: Exception) -> None:
        self.finish_reason = "error"
        self.error = error
        self.emit(Event("error", error=error, finish_reason="error"))


class ProviderRouter:
    def __init__(
        self,
        providers: Callable[[], Sequence[Route]],
        signer: Callable[[], ReceiptSigner],
        *,
        ttl: float = DIRECTORY_TTL_S,
        client: httpx.Client | None = None,
    ) -> None:
        self._read = providers
        self._signer_source = signer
        self._signer: ReceiptSigner | None = None
        self.ttl = ttl
        self._routes: list[Route] = []
        self._read_at = -1e18
        self._lock = threading.Lock()
        self._in_flight: dict[str, int] = {}
        self._penalty: dict[str, float] = {}
        self._turn = itertools.count()
        self.client = client or httpx.Client(
            timeout=httpx.Timeout(READ_S, connect=CONNECT_S),
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
        )
        self.served: dict[str, int] = {}  # provider → requests it finished (for /metrics, logs)

    # ------------------------------------------------------------------ the directory

    def routes(self) -> list[Route]:
        now = time.monotonic()
        with self._lock:
            if now - self._read_at < self.ttl:
                return self._routes
        try:
            routes = list(self._read())
        except (ChainError, StoreError, OSError) as exc:
            log.warning("reading the provider registry failed (%s); keeping the last list", exc)
            routes = self._routes
        with self._lock:
            self._routes, self._read_at = routes, now
        return routes

    def invalidate(self) -> None:
        with self._lock:
            self._read_at = -1e18

    def for_model(self, model_id: int) -> list[Route]:
        """The providers that serve ``model_id``, best first (fewest in flight, then turn)."""
        now = time.monotonic()
        routes = [
            r
            for r in self.routes()
            if model_id in r.model_ids and self._penalty.get(r.address, 0.0) <= now
        ]
        if not routes:
            return []
        turn = next(self._turn) % len(routes)
        order = routes[turn:] + routes[:turn]
        with self._lock:
            return sorted(order, key=lambda r: self._in_flight.get(r.address, 0))

    # ------------------------------------------------------------------ requests

    def submit(
        self,
        model: dict[str, Any],
        prompt: list[int],
        params: SamplingParams,
        tokenizer: Any,
        sink: Callable[[Event], None] | None,
    ) -> RemoteRequest | None:
        """A request run by a provider of ``model``, or None when no provider serves it."""
        routes = self.for_model(int(model["id"]))
        if not routes:
            return None
        if self._signer is None:
            self._signer = self._signer_source()
        request = RemoteRequest(str(model["name"]), prompt, params, tokenizer, sink)
        job = make_job(model, prompt, params, self._signer.address)
        body = {"job": job, "signature": sign_job(job, self._signer)}
        threading.Thread(
            target=self._run,
            args=(request, routes, job, body),
            name="provider-request",
            daemon=True,
        ).start()
        return request

    def _run(
        self, request: RemoteRequest, routes: list[Route], job: dict[str, Any], body: dict[str, Any]
    ) -> None:
        digest = job_hash(job)
        last: Exception | None = None
        for route in routes:
            if request.cancelled:
                request.finish_reason = "cancelled"
                request.emit(Event("done", finish_reason="cancelled"))
                return
            with self._lock:
                self._in_flight[route.address] = self._in_flight.get(route.address, 0) + 1
            try:
                started = self._stream(request, route, digest, body)
            except Exception as exc:
                started, last = bool(request.tokens), exc
                if not isinstance(exc, ProviderError | httpx.HTTPError):
                    log.exception("provider %s failed a request", route.address)
            else:
                return
            finally:
                with self._lock:
                    self._in_flight[route.address] -= 1
            if request.cancelled:
                request.finish_reason = "cancelled"
                request.emit(Event("done", finish_reason="cancelled"))
                return
            if started:  # tokens were shown: no fail-over, no charge
                log.warning("provider %s failed mid-stream: %s", route.address, last)
                request.fail(
                    ProviderError(
                        f"the compute provider {route.address} failed after "
                        f"{len(request.tokens)} tokens; nothing is charged.",
                        field="provider",
                        value=route.address,
                        fix="send the request again.",
                    )
                )
                return
            log.warning(
                "provider %s refused or is unreachable: %s; trying the next", route.address, last
            )
        request.fail(
            ProviderError(
                f"no compute provider of this model answered ({len(routes)} tried; last: {last}); "
                "nothing is charged.",
                field="provider",
                value=len(routes),
                fix="send the request again later.",
            )
        )

    def _stream(
        self, request: RemoteRequest, route: Route, digest: str, body: dict[str, Any]
    ) -> bool:
        url = route.endpoint.rstrip("/") + "/provider/jobs"
        with self.client.stream("POST", url, json=body) as response:
            request._response = response
            if response.status_code != 200:
                response.read()
                raise ProviderError(
                    f"{route.address} answered {response.status_code}: {response.text[:300]}",
                    field="provider",
                )
            for line in response.iter_lines():
                if not line:
                    continue
                doc = json.loads(line)
                if "token" in doc:
                    token = int(doc["token"])
                    if len(request.tokens) >= request.params.max_tokens:
                        raise ProviderError(
                            f"{route.address} sent more than max_tokens", field="provider"
                        )
                    request.tokens.append(token)
                    request.emit(Event("token", text=request.stream.push(token), token=token))
                elif "done" in doc:
                    self._finish(request, route, digest, doc["done"])
                    return True
                elif "error" in doc:
                    raise ProviderError(f"{route.address}: {doc['error']}", field="provider")
        raise ProviderError(
            f"{route.address} closed the stream without a statement", field="provider"
        )

    def _finish(
        self, request: RemoteRequest, route: Route, digest: str, done: dict[str, Any]
    ) -> None:
        reason = done.get("finish_reason")
        stop = done.get("stop_token")
        generated = request.tokens + ([] if stop is None else [int(stop)])
        output = output_hash(generated, reason)
        signature = str(done.get("signature", ""))
        signer = statement_signer(digest, output, signature)
        if reason not in ("stop", "length") or signer.lower() != route.address.lower():
            self._penalty[route.address] = time.monotonic() + PENALTY_S
            log.warning(
                "provider %s sent a statement signed by %s for %s; refused",
                route.address,
                signer or "nothing",
                output,
            )
            request.fail(
                ConflictError(
                    f"the compute provider {route.address} signed its output with another key "
                    f"({signer or 'none'}) or for other tokens; the answer is refused and nothing "
                    "is charged.",
                    field="provider",
                    value=route.address,
                    fix="send the request again; the provider is left out meanwhile.",
                )
            )
            return
        request.stop_token = None if stop is None else int(stop)
        request.provider = route.address
        request.compute = ComputeProof(route.address, digest, output, signature)
        tail = request.stream.finish()
        if tail:
            request.emit(Event("token", text=tail))
        request.finish_reason = reason
        with self._lock:
            self.served[route.address] = self.served.get(route.address, 0) + 1
        request.emit(Event("done", finish_reason=reason))

    def close(self) -> None:
        self.client.close()
