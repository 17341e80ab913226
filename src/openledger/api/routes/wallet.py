"""/wallet: the submit half of prepare → sign → submit for API clients.

A write for an account whose key the node does not hold answers ``{"wallet": {"pending",
"txs", "sign"}}``. The client signs ``sign`` (if any) with ``personal_sign``, sends each
transaction of ``txs`` in order from its own key to the chain, and reports the hashes here
with the same API key; the node checks them (mined, from the account, to the prepared
contract with the prepared calldata) and records the write.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from openledger.http.credentials import Writer
from openledger.http.deps import NodeDep

router = APIRouter(prefix="/wallet", tags=["wallet"])


class SubmitBody(BaseModel):
    pending: Annotated[str, Field(max_length=64)]
    hashes: list[Annotated[str, Field(max_length=80)]] = Field(default_factory=list, max_length=8)
    signature: Annotated[str | None, Field(max_length=200)] = None


@router.get("/pending")
def waiting(node: NodeDep, principal: Writer) -> dict[str, Any]:
    """The account's prepared writes still waiting for their transactions."""
    items = node.prepared.waiting(principal.address)
    return {"total": len(items), "items": items}


@router.post("/submit")
def submit(body: SubmitBody, node: NodeDep, principal: Writer) -> dict[str, Any]:
    """The account sent the prepared transactions: check them, then record the write."""
    return node.prepared.submit(principal.address, body.pending, body.hashes, body.signature)
