"""A compute provider's HTTP face (``openledger serve --provider``): it serves the jobs of
the gateways it accepts on its own engine and signs what it generated with its own key.

``POST /provider/jobs`` takes ``{"job": …, "signature": …}`` (``providers.jobs``) and
answers a stream of JSON lines: ``{"token": id}`` per generated token, then one
``{"done": {"finish_reason", "stop_token", "output", "signature", "provider"}}`` whose
signature is the provider's over the job's hash and the output hash (``ledger.compute``),
or one ``{"error": {...}}``. A gateway that hangs up cancels the engine request; nothing is
signed for a job that did not finish. ``GET /provider/health`` names the provider, its models
and the gateways it accepts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from openledger.errors import ConflictError, OpenLedgerError, PayloadTooLargeError
from openledger.ledger.receipts.canonical import ReceiptSigner
from openledger.ledger.receipts.compute import output_hash, statement_digest
from openledger.providers.jobs import JobChecker
from openledger.serving.request import Event
from openledger.serving.service import ServingService

log = logging.getLogger(__name__)
MAX_BODY = 1 << 20  # a job: 64k token ids fit well under a MiB of JSON


def _line(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, separators=(",", ":")) + "\n").encode()


def create_provider_app(
    serving: ServingService, signer: ReceiptSigner, checker: JobChecker
) -> FastAPI:
    app = FastAPI(title="OpenLedger compute provider", docs_url=None, redoc_url=None)

    @app.exception_handler(OpenLedgerError)
    async def _error(_: Request, exc: OpenLedgerError) -> JSONResponse:
        return JSONResponse(status_code=exc.http_status, content=exc.to_dict())

    @app.get("/provider/health")
    def health() -> dict[str, Any]:
        return {
            "provider": signer.address,
            "models": [m["name"] for m in serving.catalogue()],
            "gateways": sorted(checker.gateways),
        }

    @app.post("/provider/jobs")
    async def jobs(request: Request) -> StreamingResponse:
        raw = await request.body()
        if len(raw) > MAX_BODY:
            raise PayloadTooLargeError(
                f"a job of {len(raw)} bytes is over the {MAX_BODY} accepted.",
                field="job",
                value=len(raw),
                fix="send shorter prompts.",
            )
        try:
            doc = json.loads(raw)
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            doc = {}
        job, params, digest = checker.check(doc.get("job"), doc.get("signature"))
        card = await run_in_threadpool(serving.model, job["model"])
        if card["adapter_sha256"] != job["adapter_sha256"] or int(card["id"]) != job["model_id"]:
            raise ConflictError(
                f"this provider's {job['model']} is adapter {card['adapter_sha256']} (id "
                f"{card['id']}); the job asks for {job['adapter_sha256']} (id {job['model_id']}).",
                field="adapter_sha256",
                value=job["adapter_sha256"],
                fix="the provider pulls the model again, or the job goes to another provider.",
            )
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Event] = asyncio.Queue()

        def sink(event: Event) -> None:  # the engine thread
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(queue.put_nowait, event)

        engine_request = await run_in_threadpool(
            serving.submit, job["model"], job["prompt"], params, sink
        )

        async def lines() -> AsyncIterator[bytes]:
            try:
                while True:
                    event = await queue.get()
                    if event.kind == "token":
                        if event.token is not None:
                            yield _line({"token": event.token})
                        continue
                    if event.kind == "error":
                        err = event.error
                        body = (
                            err.to_dict()
                            if isinstance(err, OpenLedgerError)
                            else {"error": "EngineError", "message": "the engine failed the job"}
                        )
                        yield _line({"error": body})
                        return
                    r = engine_request
                    if event.finish_reason == "cancelled":
                        return
                    generated = list(r.tokens) + ([] if r.stop_token is None else [r.stop_token])
                    output = output_hash(generated, event.finish_reason)
                    yield _line(
                        {
                            "done": {
                                "finish_reason": event.finish_reason,
                                "stop_token": r.stop_token,
                                "output": output,
                                "provider": signer.address,
                                "signature": signer.sign(statement_digest(digest, output)),
                            }
                        }
                    )
                    return
            finally:
                engine_request.cancel()

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    return app
