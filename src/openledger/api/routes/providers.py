"""/providers: the compute providers registered on chain, as this gateway routes to them
(docs/providers.md). Read-only and public (the registry is on chain): a provider registers
from its own home with its own key (``openledger provider register``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from openledger.chain.addr import is_address
from openledger.errors import ValidationError
from openledger.http.deps import NodeDep

router = APIRouter(prefix="/providers", tags=["providers"])


@router.get("")
def list_providers(node: NodeDep) -> dict[str, Any]:
    """Every registered provider (active and exited), with the requests this gateway has
    had each one finish since it started."""
    items = node.providers.directory()
    return {"items": items, "total": len(items)}


@router.get("/{address}")
def show_provider(address: str, node: NodeDep) -> dict[str, Any]:
    """One provider as ProviderRegistry holds it, and what it earned on this gateway."""
    if not is_address(address):
        raise ValidationError(
            f"{address[:60]!r} is not an address.",
            field="address",
            value=address[:60],
            fix="give the provider's 0x… address (GET /providers lists them).",
        )
    return node.providers.detail(address)
