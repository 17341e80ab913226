"""Error responses: ``openledger.errors`` types as JSON, and OpenAI's format under /v1.

Outside /v1 an ``OpenLedgerError`` answers ``{"error": TYPE, "message", "field", "fix"}`` with
its ``http_status`` and everything else keeps FastAPI's defaults. Under /v1 every failure,
whatever raised it, answers as OpenAI's API does, so OpenAI clients raise their usual
exceptions: ``{"error": {"message", "type", "param", "code"}}``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException

from openledger.errors import AuthError, OpenLedgerError, PaymentRequiredError

log = logging.getLogger(__name__)

OPENAI_PREFIX = "/v1"
_CONTEXT_FIELDS = {"prompt", "messages", "max_tokens", "max_completion_tokens"}
_TYPE_NAMES = {"str", "int", "float", "bool", "list", "dict", "none", "literal"}


def is_openai_path(request: Request) -> bool:
    path = request.url.path
    return path == OPENAI_PREFIX or path.startswith(OPENAI_PREFIX + "/")


def openai_error(
    status: int, message: str, *, type_: str, param: str | None = None, code: str | None = None
) -> JSONResponse:
    return JSONResponse(status_code=status, content=openai_error_body(message, type_, param, code))


def openai_error_body(
    message: str, type_: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def openai_error_for(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """The status and OpenAI error body for any exception (a 500 for unexpected ones)."""
    if not isinstance(exc, OpenLedgerError):
        return 500, openai_error_body(
            "The server had an error while processing the request.", "server_error",
            code="internal_error",
        )  # fmt: skip
    status = 400 if exc.http_status == 422 else exc.http_status
    param, code = exc.field, None
    if isinstance(exc, AuthError):
        type_, param, code = "authentication_error", None, "invalid_api_key"
    elif isinstance(exc, PaymentRequiredError) or status == 402:
        type_, code = "insufficient_quota", "insufficient_quota"
    elif status == 404:
        type_ = "invalid_request_error"
        code = "model_not_found" if exc.field == "model" else "not_found"
    elif status == 409:
        type_, code = "invalid_request_error", "conflict"
    elif status >= 500:
        type_, code = "server_error", "service_unavailable"
    else:
        type_, code = "invalid_request_error", "invalid_value"
        if exc.field in _CONTEXT_FIELDS and "context" in exc.message:
            code = "context_length_exceeded"
    return status, openai_error_body(str(exc), type_, param, code)


def _param(loc: Sequence[Any]) -> str | None:
    """``("body", "messages", 0, "content")`` → ``messages[0].content`` (union tags dropped)."""
    out = ""
    for part in loc[1:] if loc and loc[0] in ("body", "query", "path", "header") else loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.isidentifier() and part.lower() not in _TYPE_NAMES:
            out += f".{part}" if out else part
    return out or None


def _validation_response(exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    first = errors[0] if errors else {}
    kind = first.get("type", "")
    if kind == "json_invalid":
        reason = (first.get("ctx") or {}).get("error", "")
        return openai_error(
            400,
            f"The request body is not valid JSON ({reason}). Fix: send a JSON object "
            "with Content-Type: application/json.",
            type_="invalid_request_error",
            code="invalid_json",
        )
    param = _param(first.get("loc", ()))
    if param is None:
        message = (
            "The request has no JSON body." if kind == "missing" else
            "The request body is not a JSON object."
        ) + " Fix: send a JSON object with Content-Type: application/json."  # fmt: skip
    else:
        given = first.get("input")
        shown = "" if kind == "missing" else f" (got {json.dumps(given, default=str)[:80]})"
        message = f"{param or 'body'}: {first.get('msg', 'invalid value')}{shown}."
        if len(errors) > 1:
            others = sorted({p for e in errors[1:] if (p := _param(e.get("loc", ()))) != param})
            if others:
                message += f" Also check: {', '.join(p or 'body' for p in others)}."
    return openai_error(
        400, message, type_="invalid_request_error", param=param, code="invalid_value"
    )


async def _openledger_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OpenLedgerError)
    if is_openai_path(request):
        status, body = openai_error_for(exc)
        return JSONResponse(status_code=status, content=body)
    return JSONResponse(status_code=exc.http_status, content=exc.to_dict())


async def _request_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if is_openai_path(request):
        return _validation_response(exc)
    return await request_validation_exception_handler(request, exc)


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if is_openai_path(request):
        status = exc.status_code
        type_ = "invalid_request_error" if status < 500 else "server_error"
        code = {404: "not_found", 405: "method_not_allowed"}.get(status)
        message = str(exc.detail)
        if status in (404, 405):
            message = (
                f"{message}: {request.method} {request.url.path}. Fix: use GET /v1/models, "
                "POST /v1/completions or POST /v1/chat/completions."
            )
        return openai_error(status, message, type_=type_, code=code)
    return await http_exception_handler(request, exc)


async def _unexpected(request: Request, exc: Exception) -> Response:
    # Starlette's ServerErrorMiddleware calls this, then re-raises (the error is logged).
    if is_openai_path(request):
        status, body = openai_error_for(exc)
        return JSONResponse(status_code=status, content=body)
    return PlainTextResponse("Internal Server Error", status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(OpenLedgerError, _openledger_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(HTTPException, _http_exception)
    app.add_exception_handler(Exception, _unexpected)
