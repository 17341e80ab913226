"""What every request passes before any route sees it (an ASGI middleware).

- **Origin**: a state-changing request (anything but GET, HEAD, OPTIONS) that a browser sent
  from another site is refused with 403: an ``Origin`` header that is not one of the node's
  own origins, or ``Sec-Fetch-Site: cross-site``. Clients that are not browsers send neither.
- **Size**: a body is read at most up to its cap (``api_upload_max_bytes`` for multipart
  uploads, ``api_json_max_bytes`` for everything else): a larger ``Content-Length`` or a
  longer stream is refused with 413 before the body is read whole.
- **JSON**: a body that is JSON (a JSON content type, none, or a body that opens with ``[``
  or ``{``) is checked before it is parsed: it must be UTF-8 (RFC 8259) with no byte-order
  mark and no NUL (the decoder would otherwise guess UTF-16 or UTF-32, and decode UTF-8's
  encoding of a surrogate, past the scan); arrays and objects nested deeper than
  ``api_json_max_depth``, a ``\\uD800``–``\\uDFFF`` escape that is not half of a
  surrogate pair (text no encoder can write) and a ``\\u0000`` (text PostgreSQL cannot
  store) are refused with 400.
- **NUL in the URL**: a path or query string holding ``%00`` is refused with 400 (on every
  method: PostgreSQL refuses the look-up with an error otherwise).

Refusals use the project's JSON error format (OpenAI's under /v1).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openledger.config import Settings
from openledger.errors import ForbiddenError, OpenLedgerError, PayloadTooLargeError, ValidationError
from openledger.http.errors import OPENAI_PREFIX, openai_error_for

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PYTHON_RECURSION_LIMIT = 1000
LOOPBACK = ("127.0.0.1", "localhost", "[::1]")
# a surrogate pair, a lone surrogate escape, a NUL escape, any other escape, a quote,
# a bracket
_TOKENS = re.compile(
    rb"\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}"
    rb'|(\\u[dD][89a-fA-F][0-9a-fA-F]{2})|(\\u0000)|\\.|["\[\]{}]'
)


def restore_recursion_limit() -> None:
    """py_ecc (imported by web3) raises the recursion limit to 100,000, so C code that
    recurses (the JSON decoder) overflows the stack before Python can raise: set it back."""
    if sys.getrecursionlimit() > PYTHON_RECURSION_LIMIT:
        sys.setrecursionlimit(PYTHON_RECURSION_LIMIT)


def node_hosts(settings: Settings) -> frozenset[str]:
    """The host:port names the node answers as: ``api_host:api_port`` (with the other
    loopback names when that is a loopback address) and the configured ``web_hosts``."""
    port = settings.api_port
    hosts = {f"{settings.api_host}:{port}"}
    if settings.api_host in (*LOOPBACK, "::1", "0.0.0.0"):
        hosts |= {f"{h}:{port}" for h in LOOPBACK}
    hosts |= {h.strip() for h in settings.web_hosts.split(",") if h.strip()}
    return frozenset(hosts)


def node_origins(hosts: Iterable[str]) -> frozenset[str]:
    out = set()
    for h in hosts:
        name, _, port = h.rpartition(":") if not h.endswith("]") else (h, "", "")
        out |= {f"http://{h}", f"https://{h}"}
        if port == "80":
            out.add(f"http://{name}")
        if port == "443":
            out.add(f"https://{name}")
    return frozenset(out)


def _not_utf8(body: bytes) -> OpenLedgerError | None:
    """A JSON body that is not plain UTF-8 text: a byte-order mark, a NUL (UTF-16 or UTF-32,
    which the decoder would guess), or bytes strict UTF-8 refuses (an encoded surrogate,
    which the decoder's ``surrogatepass`` would turn into a lone surrogate)."""
    where: int | None = None
    if body.startswith((b"\xef\xbb\xbf", b"\xfe\xff", b"\xff\xfe")):
        where = 0
    elif b"\x00" in body:
        where = body.index(b"\x00")
    else:
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            where = exc.start
    if where is None:
        return None
    return ValidationError(
        f"The JSON body is not UTF-8 text (byte {where}: {body[where : where + 4]!r}).",
        field="body",
        value=where,
        fix="send JSON encoded as UTF-8, without a byte-order mark (RFC 8259).",
    )


def json_problem(body: bytes, max_depth: int) -> OpenLedgerError | None:
    """What is wrong with a JSON body that the decoder must not see, or None."""
    bad = _not_utf8(body)
    if bad is not None:
        return bad
    depth, in_string = 0, False
    for m in _TOKENS.finditer(body):
        tok = m.group()
        if tok == b'"':
            in_string = not in_string
        elif not in_string and tok in (b"[", b"{"):
            depth += 1
            if depth > max_depth:
                return ValidationError(
                    f"The JSON body nests arrays and objects deeper than {max_depth} levels.",
                    field="body",
                    value=depth,
                    fix=f"send at most {max_depth} levels of nesting.",
                )
        elif not in_string and tok in (b"]", b"}"):
            depth -= 1
        elif in_string and m.group(2) is not None:
            return ValidationError(
                "The JSON body holds a NUL character (\\u0000), which no text field takes "
                "(PostgreSQL cannot store one).",
                field="body",
                value="\\u0000",
                fix="remove the NUL characters from the strings you send.",
            )
        elif in_string and m.group(1) is not None:
            return ValidationError(
                f"The JSON body holds a lone surrogate escape {m.group(1).decode()!r}, which "
                "is not text.",
                field="body",
                value=m.group(1).decode(),
                fix="send valid Unicode: a \\uD800-\\uDBFF escape only followed by a "
                "\\uDC00-\\uDFFF one.",
            )
    return None


def _refusal(scope: Scope, exc: OpenLedgerError, status: int | None = None) -> JSONResponse:
    path = scope.get("path", "")
    if path == OPENAI_PREFIX or path.startswith(OPENAI_PREFIX + "/"):
        code, body = openai_error_for(exc)
        return JSONResponse(body, status_code=status or code)
    return JSONResponse(exc.to_dict(), status_code=status or exc.http_status)


class _TooLarge(Exception):
    pass


def _nul_in_target(scope: Scope) -> OpenLedgerError | None:
    """A NUL character in the path or the query string (``%00``): no name, id or option holds
    one, and PostgreSQL refuses it in a query (a 500 otherwise)."""
    if "\x00" in scope.get("path", ""):
        return ValidationError(
            "The request's path holds a NUL character (%00).",
            field="path",
            value=scope["path"].replace("\x00", "%00"),
            fix="remove it from the URL.",
        )
    query = scope.get("query_string", b"")
    if b"%00" in query or b"\x00" in query:
        return ValidationError(
            "The query string holds a NUL character (%00).",
            field="query",
            value=query.decode("latin-1").replace("\x00", "%00"),
            fix="remove it from the URL.",
        )
    return None


def _is_json(headers: Headers, body: bytes) -> bool:
    """Whether the app would parse ``body`` as JSON (FastAPI does for a JSON content type
    and for none), or it looks like JSON whatever it claims."""
    kind = headers.get("content-type", "").split(";")[0].strip().lower()
    json_type = kind == "application/json" or (
        kind.startswith("application/") and kind.endswith("+json")
    )
    return not kind or json_type or body.lstrip()[:1] in (b"[", b"{")


class RequestGuard:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.origins = node_origins(node_hosts(settings))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nul = _nul_in_target(scope)
        if nul is not None:
            await _refusal(scope, nul, status=400)(scope, receive, send)
            return
        if scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        problem = self._foreign(headers)
        if problem is not None:
            await _refusal(scope, problem)(scope, receive, send)
            return
        multipart = headers.get("content-type", "").lower().startswith("multipart/")
        cap = self.settings.api_upload_max_bytes if multipart else self.settings.api_json_max_bytes
        try:
            declared = int(headers.get("content-length", "0") or 0)
        except ValueError:
            declared = 0
        try:
            if declared > cap:
                raise _TooLarge
            body, more = await self._read(receive, cap)
        except _TooLarge:
            await _refusal(
                scope,
                PayloadTooLargeError(
                    f"The request body is larger than this node takes ({cap:,} bytes for "
                    f"{'an upload' if multipart else 'a request'}).",
                    field="body",
                    value=max(declared, cap + 1),
                    fix="send a smaller body"
                    + (", or split the files over several contributions." if multipart else "."),
                ),
            )(scope, receive, send)
            return
        if not multipart and body and _is_json(headers, body):
            bad = json_problem(body, self.settings.api_json_max_depth)
            if bad is not None:
                await _refusal(scope, bad, status=400)(scope, receive, send)
                return
        await self.app(scope, _replay(body, more, receive), send)

    def _foreign(self, headers: Headers) -> OpenLedgerError | None:
        origin = headers.get("origin")
        site = headers.get("sec-fetch-site")
        if (origin is not None and origin not in self.origins) or site == "cross-site":
            shown = origin or f"Sec-Fetch-Site: {site}"
            return ForbiddenError(
                f"This request came from another site ({shown}); the node takes writes only "
                "from its own pages and from programs.",
                field="Origin",
                value=shown,
                fix="use the node's own web app, or call the API from a program with an "
                "API key (programs send no Origin header).",
            )
        return None

    @staticmethod
    async def _read(receive: Receive, cap: int) -> tuple[bytes, list[Message]]:
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(chunks), [message]
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > cap:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks), []


def _replay(body: bytes, after: list[Message], upstream: Receive) -> Receive:
    """The body read already, then whatever the server sends next (a disconnect)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        if after:
            return after.pop(0)
        return await upstream()

    return receive
