"""Liveness and readiness: is the store usable, does the chain answer."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import text

from openledger import __version__
from openledger.errors import OpenLedgerError
from openledger.http.deps import NodeDep

router = APIRouter(tags=["health"])


@router.get("/health")
def health(node: NodeDep) -> dict[str, Any]:
    """Version, store and chain state. ``status`` is ``ok`` only when both answer."""
    checks: dict[str, Any] = {}
    try:
        with node.db.session() as s:
            s.execute(text("SELECT 1"))
        checks["store"] = {"ok": True, "revision": node.db.current_revision()}
    except OpenLedgerError as exc:
        checks["store"] = {"ok": False, "error": exc.message}
    try:
        checks["chain"] = {
            "ok": True,
            "chain_id": node.client.check(),
            "block": node.client.block_number(),
            "url": node.settings.rpc_url,
        }
    except OpenLedgerError as exc:
        checks["chain"] = {"ok": False, "error": exc.message, "fix": exc.fix}
    ok = all(c["ok"] for c in checks.values())
    return {"status": "ok" if ok else "degraded", "version": __version__, **checks}
