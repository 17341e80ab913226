"""/receipts, /credit, /rewards, /epochs: the ledger as JSON.

A receipt is read by its unguessable public id (``rc_…``, the ``receipt_id`` of a /v1
response) by anyone the payer gave it to: it proves itself with the operator's address. By
sequence number or hash only its payer (an API key with ``read``) or the operator token may
read it, so receipts are no directory of everyone's usage (docs/ledger.md). The list of
receipts and the credit are the credential's account's own. Rewards and epochs are public:
they are what the epoch roots on chain commit to. Deposits, withdrawals and claims act for
the credential's account (``http.acting``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from openledger.http.acting import act, actor
from openledger.http.bounds import AsField, IdPath, Limit, Name, Offset
from openledger.http.credentials import MaybePrincipal, Reader, Writer
from openledger.http.deps import NodeDep
from openledger.units import parse_open

router = APIRouter(tags=["ledger"])


@router.get("/receipts/{receipt}")
def show_receipt(receipt: str, node: NodeDep, principal: MaybePrincipal) -> dict[str, Any]:
    """A receipt by public id (``rc_…``: anyone holding it), or by sequence number or hash
    (its payer or the operator only): its canonical body, hash, the operator's signature of
    its group's head and the epoch that settled it (or null)."""
    return node.ledger.receipt_for(receipt, principal)


@router.get("/receipts")
def list_receipts(
    node: NodeDep, principal: Reader, offset: Offset = 0, limit: Limit = 50
) -> dict[str, Any]:
    """The receipts the credential's account paid, newest first."""
    return node.ledger.receipts(payer=principal.address, offset=offset, limit=limit)


@router.get("/credit")
def show_credit(node: NodeDep, principal: Reader) -> dict[str, Any]:
    """The credential's account's inference credit (wei): deposited, charged, held,
    available."""
    return node.ledger.credit(principal.address)


class AmountBody(BaseModel):
    amount: Name = Field(description="OPEN, e.g. '25' or '2.5'")
    as_: AsField = None


class SignerBody(BaseModel):
    as_: AsField = None


@router.post("/credit/deposits")
def deposit(body: AmountBody, node: NodeDep, principal: Writer) -> dict[str, Any]:
    """Move OPEN into the inference escrow as the account's credit (approve, then deposit)."""
    who = actor(node, principal, body.as_)
    amount = parse_open(body.amount, field="amount")
    return act(node, who, node.escrow.plan_deposit(who.address, amount))


@router.post("/credit/withdrawals")
def request_withdrawal(body: AmountBody, node: NodeDep, principal: Writer) -> dict[str, Any]:
    """Ask the escrow for unused credit back (paid after the withdrawal delay)."""
    who = actor(node, principal, body.as_)
    amount = parse_open(body.amount, field="amount")
    return act(node, who, node.escrow.plan_request_withdrawal(who.address, amount))


@router.post("/credit/withdrawals/complete")
def complete_withdrawal(body: SignerBody, node: NodeDep, principal: Writer) -> dict[str, Any]:
    who = actor(node, principal, body.as_)
    return act(node, who, node.escrow.plan_withdraw(who.address))


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


@router.post("/rewards/claim")
def claim(body: SignerBody, node: NodeDep, principal: Writer) -> dict[str, Any]:
    """Claim everything the account can claim now: ``claim(account, cumulative, proof)``."""
    who = actor(node, principal, body.as_)
    return act(node, who, node.rewards.plan_claim(who.address, who.address))


@router.get("/epochs")
def list_epochs(node: NodeDep) -> dict[str, Any]:
    """Every epoch this node sealed, oldest first."""
    items = node.epochs.list()
    return {"total": len(items), "items": items}


@router.get("/epochs/{number}")
def show_epoch(number: IdPath, node: NodeDep) -> dict[str, Any]:
    return node.epochs.get(number)
