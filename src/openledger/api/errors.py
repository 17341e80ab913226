"""One handler turns every ``openledger.errors`` type into a JSON response."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from openledger.errors import OpenLedgerError


async def _openledger_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, OpenLedgerError)
    return JSONResponse(status_code=exc.http_status, content=exc.to_dict())


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(OpenLedgerError, _openledger_error)
