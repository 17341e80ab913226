"""Liveness and readiness: is the store usable, does the chain answer (``Node.health``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from openledger import __version__
from openledger.http.deps import NodeDep

router = APIRouter(tags=["health"])


@router.get("/health")
def health(node: NodeDep) -> dict[str, Any]:
    """Version, store and chain state. ``status`` is ``ok`` only when both answer."""
    checks = node.health()
    return {"status": checks.pop("status"), "version": __version__, **checks}
