"""/grants: OpenCircle applications, approval proposals, milestone releases, cancellation."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from openledger.api.deps import NodeDep
from openledger.units import parse_open

router = APIRouter(prefix="/grants", tags=["grants"])


class Signer(BaseModel):
    as_: str = Field(alias="as")


class ApplyBody(Signer):
    tier: str = Field(description="exploration, building or expansion")
    amount: str = Field(description="OPEN, e.g. '30000'")
    milestones: list[str] = Field(description="OPEN per milestone, summing to the amount")
    metadata_uri: str = ""


@router.get("")
def list_grants(node: NodeDep) -> dict[str, Any]:
    """Every grant, newest first, and the tiers' bounds in wei of OPEN."""
    items = node.governance.grants()
    return {"tiers": node.governance.tiers(), "total": len(items), "items": items}


@router.get("/{grant}")
def show_grant(grant: int, node: NodeDep) -> dict[str, Any]:
    return node.governance.grant(grant)


@router.post("", status_code=201)
def apply(body: ApplyBody, node: NodeDep) -> dict[str, Any]:
    """Apply; a tier's bounds or milestones that do not sum to the amount are a 422."""
    milestones = [parse_open(m, field="milestones") for m in body.milestones]
    return node.governance.apply(
        node.accounts.signer(body.as_),
        body.tier,
        parse_open(body.amount),
        milestones,
        body.metadata_uri,
    )


@router.post("/{grant}/approve", status_code=201)
def approve(grant: int, body: Signer, node: NodeDep) -> dict[str, Any]:
    """Propose approving the grant (returns the proposal)."""
    return {"proposal": node.governance.propose_approval(node.accounts.signer(body.as_), grant)}


@router.post("/{grant}/release")
def release(grant: int, body: Signer, node: NodeDep) -> dict[str, Any]:
    """Release the next milestone (committee), or propose it."""
    return node.governance.release(node.accounts.signer(body.as_), grant)


@router.post("/{grant}/cancel")
def cancel(grant: int, body: Signer, node: NodeDep) -> dict[str, Any]:
    return node.governance.cancel_grant(node.accounts.signer(body.as_), grant)
