"""The web app's /web/api routes, one module per stage; every write acts as the signed-in
account through the same node services as the CLI and the JSON API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from openledger.errors import OpenLedgerError


def tile(fn: Callable[[], Any]) -> Any:
    """A value for a dashboard tile, or ``{"error": message}`` when its service is down."""
    try:
        return fn()
    except OpenLedgerError as exc:
        return {"error": exc.message}
