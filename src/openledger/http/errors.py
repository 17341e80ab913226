"""Error responses: ``openledger.errors`` types as JSON, and OpenAI's format under /v1.

Outside /v1 every failure answers the project's format, ``{"error": TYPE, "message",
"field", "value", "fix"}``: an ``OpenLedgerError`` with its ``http_status``, a request that
does not match the schema with 422 naming the field (400 for a body that is not JSON), an
unknown route or method with 404/405, anything unexpected with 500 (logged; the message
says nothing of the cause). Under /v1 every failure, whatever raised it, answers as OpenAI's
API does, so OpenAI clients raise their usual exceptions: ``{"error": {"message", "type",
"param", "code"}}``. A 429 carries ``Retry-After``.

A service names its field in the domain's words (``account``); the answer names it as the
route's request does (``as``), where the route takes it under another name.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from openledger.errors import (
    AuthError,
    OpenLedgerError,
    PaymentRequiredError,
    RateLimitedError,
    ValidationError,
)

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


@contextlib.contextmanager
def fields_renamed(fields: dict[str, str]) -> Iterator[None]:
    """Re-raise a ValidationError of a service under the request's own name for its field
    (``fields``: the service's name -> the request's; e.g. chat has no ``prompt``)."""
    try:
        yield
    except ValidationError as exc:
        if exc.field in fields and fields[exc.field] != exc.field:
            raise ValidationError(
                exc.message, field=fields[exc.field], value=exc.value, fix=exc.fix
            ) from exc
        raise


def openai_error_for(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """The status and OpenAI error body for any exception (a 500 for unexpected ones)."""
    if not isinstance(exc, OpenLedgerError):
        return 500, openai_error_body(
            "The server had an error while processing the request.",
            "server_error",
            code="internal_error",
        )
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
    elif status == 429:
        type_, code = "rate_limit_error", "rate_limit_exceeded"
    elif status == 403:
        type_, code = "permission_error", "forbidden"
    elif status == 413:
        type_, code = "invalid_request_error", "request_too_large"
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
            "The request has no JSON body."
            if kind == "missing"
            else "The request body is not a JSON object."
        ) + " Fix: send a JSON object with Content-Type: application/json."
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


def _headers(exc: BaseException) -> dict[str, str] | None:
    if isinstance(exc, RateLimitedError):
        return {"Retry-After": str(exc.retry_after)}
    return None


# A domain word the requests say otherwise, where a route takes it under that name.
REQUEST_NAMES = {"account": "as"}


def _route_names(request: Request) -> set[str]:
    """Every name the route's request takes: path, query, header and form parameters, and
    the fields of its JSON body (aliases, as sent)."""
    stack = [getattr(request.scope.get("route"), "dependant", None)]
    names: set[str] = set()
    while stack:
        dependant = stack.pop()
        if dependant is None:
            continue
        stack.extend(dependant.dependencies)
        for param in (
            *dependant.path_params,
            *dependant.query_params,
            *dependant.header_params,
            *dependant.body_params,
        ):
            names.add(param.alias)
            model = param.field_info.annotation
            if isinstance(model, type) and issubclass(model, BaseModel):
                names.update(f.alias or n for n, f in model.model_fields.items())
    return names


def request_field(field: str | None, request: Request) -> str | None:
    """A service's ``field`` (a domain word) as the request names it: ``account`` is ``as``
    on a route that takes ``as`` and no ``account``; ``credential`` is the API's
    ``Authorization`` header (the web app's credential is its session); any other stays as
    it is."""
    if field == "credential" and not request.url.path.startswith("/web/"):
        return "Authorization"
    if field is None or field not in REQUEST_NAMES:
        return field
    names = _route_names(request)
    return REQUEST_NAMES[field] if REQUEST_NAMES[field] in names and field not in names else field


async def _openledger_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OpenLedgerError)
    field = request_field(exc.field, request)
    if is_openai_path(request):
        status, body = openai_error_for(exc)
        if body["error"]["param"] is not None:
            body["error"]["param"] = field
        return JSONResponse(status_code=status, content=body, headers=_headers(exc))
    doc = exc.to_dict()
    if field is not None:
        doc["field"] = field
    return JSONResponse(status_code=exc.http_status, content=doc, headers=_headers(exc))


def validation_error(exc: RequestValidationError) -> tuple[int, OpenLedgerError]:
    """A request that does not match the schema as the project's error: the first field that
    is wrong, what is wrong with it and the value given (cut short)."""
    errors = exc.errors()
    first = errors[0] if errors else {}
    if first.get("type") == "json_invalid":
        reason = (first.get("ctx") or {}).get("error", "")
        return 400, ValidationError(
            f"The request body is not valid JSON ({reason}).",
            field="body",
            fix="send a JSON object with Content-Type: application/json.",
        )
    where = first.get("loc", ())
    param = _param(where) or (where[0] if where else "body")
    kind = first.get("type", "")
    given = None if kind == "missing" else first.get("input")
    shown = "" if given is None else f" (got {json.dumps(given, default=str)[:80]})"
    message = f"{param}: {first.get('msg', 'invalid value')}{shown}."
    others = sorted({p for e in errors[1:] if (p := _param(e.get("loc", ()))) and p != param})
    if others:
        message += f" Also check: {', '.join(others)}."
    value = given if isinstance(given, str | int | float | bool) else None
    if isinstance(value, str):
        value = value[:80]
    return 422, ValidationError(
        message,
        field=str(param),
        value=value,
        fix=f"send {param} as the API schema (/docs) describes.",
    )


async def _request_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if is_openai_path(request):
        return _validation_response(exc)
    status, err = validation_error(exc)
    return JSONResponse(status_code=status, content=err.to_dict())


_HTTP_NAMES = {404: "NotFoundError", 405: "MethodNotAllowedError", 413: "PayloadTooLargeError"}


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
    status = exc.status_code
    body = {
        "error": _HTTP_NAMES.get(status, "HTTPError"),
        "message": f"{exc.detail}: {request.method} {request.url.path[:200]}.",
        "fix": "see the API's routes at /docs.",
    }
    return JSONResponse(status_code=status, content=body, headers=exc.headers)


async def _unexpected(request: Request, exc: Exception) -> Response:
    # Starlette's ServerErrorMiddleware calls this, then re-raises (the error is logged).
    if is_openai_path(request):
        status, body = openai_error_for(exc)
        return JSONResponse(status_code=status, content=body)
    return JSONResponse(
        status_code=500,
        content={
            "error": "InternalError",
            "message": "The node had an unexpected error; it is in the node's log.",
            "fix": "try again; if it persists, report it with the time of the request.",
        },
    )


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string", "description": "The error's type"},
        "message": {"type": "string", "description": "What was wrong"},
        "field": {"type": "string", "description": "The field, header or part at fault"},
        "value": {"description": "The value given (cut short)"},
        "fix": {"type": "string", "description": "What to do about it"},
    },
}
OPENAI_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Declare every operation's 4XX and 5XX answers (the project's format, OpenAI's under
    /v1) in place of FastAPI's own 422 body, which the node never sends."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = ERROR_SCHEMA
    components["OpenAIError"] = OPENAI_ERROR_SCHEMA
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    for path, ops in schema.get("paths", {}).items():
        openai = path == OPENAI_PREFIX or path.startswith(OPENAI_PREFIX + "/")
        target = {"$ref": f"#/components/schemas/{'OpenAIError' if openai else 'Error'}"}
        ref = {"content": {"application/json": {"schema": target}}}
        for op in ops.values():
            responses = op.setdefault("responses", {})
            responses.pop("422", None)
            responses["4XX"] = {"description": "The request was refused", **ref}
            responses["5XX"] = {"description": "The node or the chain failed", **ref}
    return schema


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(OpenLedgerError, _openledger_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(HTTPException, _http_exception)
    app.add_exception_handler(Exception, _unexpected)
