"""Request ids, request logs and metrics for every API request, and ``GET /metrics``.

Every request gets an id (the client's ``X-Request-ID`` when it is a short token, else a
new one), answered in the ``X-Request-ID`` response header and put on every log line
written while the request is handled. When its response has been sent, one log line says
the method, path, route, status and duration (and, for a paid request, the receipt ids the
response carries), and the request is counted in ``openledger_http_requests`` and
``openledger_http_request_duration_seconds`` by route template (unmatched paths as
``unmatched``, methods outside HTTP's usual ones as ``other``: what a client sends cannot
grow the registry).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from fastapi import FastAPI, Request, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openledger.logs import request_context
from openledger.metrics import CONTENT_TYPE
from openledger.node import Node

log = logging.getLogger("openledger.api")

_CLIENT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_RECEIPT = re.compile(rb'"receipt_ids?"\s*:\s*(\[[^\]]*\]|"rc_[A-Za-z0-9_-]+")')
_RECEIPT_ID = re.compile(rb"rc_[A-Za-z0-9_-]+")
_SNIFFED = (b"application/json", b"text/event-stream")
#: methods counted by name; any other token a client sends is counted as "other" (a label
#: per made-up method would grow the registry without bound)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Observability:
    """Pure ASGI middleware (streams pass through untouched)."""

    def __init__(self, app: ASGIApp, node: Node) -> None:
        self.app = app
        self.node = node

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = _header(scope, b"x-request-id")
        rid = given if given and _CLIENT_ID.match(given) else uuid.uuid4().hex[:16]
        ctx: dict[str, Any] = {"request_id": rid, "receipt_ids": []}
        token = request_context.set(ctx)
        start = time.perf_counter()
        state = {"status": 500, "sniff": False, "done": False}

        async def send_wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", rid.encode()))
                message = {**message, "headers": headers}
                ctype = dict(headers).get(b"content-type", b"")
                state["sniff"] = any(ctype.startswith(t) for t in _SNIFFED)
            elif message["type"] == "http.response.body":
                body = message.get("body", b"")
                if state["sniff"] and b"receipt_id" in body:
                    for found in _RECEIPT.findall(body):
                        for rc in _RECEIPT_ID.findall(found):
                            if rc.decode() not in ctx["receipt_ids"]:
                                ctx["receipt_ids"].append(rc.decode())
                if not message.get("more_body", False):
                    state["done"] = True
            await send(message)

        try:
            await self.app(scope, receive, send_wrapped)
        finally:
            self._finish(scope, ctx, int(state["status"]), time.perf_counter() - start)
            request_context.reset(token)

    def _finish(self, scope: Scope, ctx: dict[str, Any], status: int, seconds: float) -> None:
        route = getattr(scope.get("route"), "path", None) or "unmatched"
        method = scope.get("method", "")
        if "metrics" in self.node.__dict__:
            counted = method if method in METHODS else "other"
            self.node.metrics.request_done(route, counted, status, seconds)
        extra: dict[str, Any] = {
            "request_id": ctx["request_id"],
            "method": method,
            "path": scope.get("path", ""),
            "route": route,
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
        }
        if ctx["receipt_ids"]:
            extra["receipt_id"] = ctx["receipt_ids"][0]
            extra["receipt_ids"] = ctx["receipt_ids"]
        level = logging.ERROR if status >= 500 else logging.INFO
        log.log(
            level,
            "%s %s %s %.1f ms",
            method,
            scope.get("path", ""),
            status,
            seconds * 1000,
            extra=extra,
        )


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


def install_observability(app: FastAPI, node: Node) -> None:
    """The middleware (outermost, so refusals are timed too) and ``GET /metrics``."""
    node.metrics  # noqa: B018 - built now: services built later report to it
    app.add_middleware(Observability, node=node)

    def metrics(_: Request) -> Response:  # sync: scraping reads the database in a thread
        return Response(node.metrics.render(), media_type=CONTENT_TYPE)

    app.add_route("/metrics", metrics, methods=["GET"], include_in_schema=False)


__all__ = ["Observability", "install_observability"]
