"""/receipts, /credit, /rewards, /epochs: the ledger as JSON.

A receipt is public (anyone holding it can check its hash and the operator's signature);
the list of receipts and the credit are the API key's account's own. Rewards and epochs
are public: they are what the epoch roots on chain commit to.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from openledger.api.deps import NodeDep, PrincipalDep

router = APIRouter(tags=["ledger"])

Offset = Annotated[int, Query(ge=0)]
Limit = Annotated[int, Query(ge=1, le=500)]


@router.get("/receipts/{receipt}")
def show_receipt(receipt: str, node: NodeDep) -> dict[str, Any]:
    """A receipt by id (``receipt_id`` of a /v1 response) or by hash: its canonical body,
    hash, the operator's signature of the hash and the epoch that settled it (or null)."""
    return node.ledger.receipt(receipt)


@router.get("/receipts")
def list_receipts(
    node: NodeDep, principal: PrincipalDep, offset: Offset = 0, limit: Limit = 50
) -> dict[str, Any]:
    """The receipts the API key's account paid, newest first."""
    return node.ledger.receipts(payer=principal.address, offset=offset, limit=limit)


@router.get("/credit")
def show_credit(node: NodeDep, principal: PrincipalDep) -> dict[str, Any]:
    """The API key's account's inference credit (wei): deposited, charged, held, available."""
    return node.ledger.credit(principal.address)


@router.get("/rewards/{account}")
def show_rewards(account: str, node: NodeDep) -> dict[str, Any]:
    """What an account (a 0x address, or a named account of this node) earned, by model,
    datanet, contribution, role and epoch, and what it can claim on chain now."""
    address = node.accounts.resolve(account)
    return {
        "account": address,
        "earnings": node.rewards.earnings(address),
        "claimable": node.rewards.claimable(address),
    }


@router.get("/epochs")
def list_epochs(node: NodeDep) -> dict[str, Any]:
    """Every epoch this node sealed, oldest first."""
    items = node.epochs.list()
    return {"total": len(items), "items": items}


@router.get("/epochs/{number}")
def show_epoch(number: int, node: NodeDep) -> dict[str, Any]:
    return node.epochs.get(number)
