"""/web/api for the account: who is signed in, balance and credit (deposit, withdraw),
API keys."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field

from openledger.http.bounds import Name
from openledger.http.deps import NodeDep
from openledger.units import parse_open
from openledger.web.auth import SessionDep
from openledger.web.routes import tile
from openledger.web.wallet import OwnAccount, Writer, WriterDep

router = APIRouter(prefix="/web/api", tags=["web"], dependencies=OwnAccount)


@router.get("/me")
def me(node: NodeDep, session: SessionDep) -> dict[str, Any]:
    """The signed-in account: OPEN balance on chain, inference credit, claimable rewards."""
    a = session.address
    return {
        **session.to_dict(),
        "balance": tile(lambda: str(node.contracts.token.balance_of(a))),
        "credit": tile(lambda: node.ledger.credit(a)),
        "claimable": tile(lambda: node.rewards.claimable(a)),
    }


class AmountBody(BaseModel):
    amount: Name


class KeyBody(BaseModel):
    label: Annotated[str, Field(max_length=200)] = ""
    scopes: list[Name] | None = Field(None, max_length=3, description="inference, read, write")


@router.post("/deposit")
def deposit(body: AmountBody, node: NodeDep, writer: WriterDep) -> dict[str, Any]:
    """Move OPEN into the inference escrow as credit (a wallet approves, then deposits)."""
    amount = parse_open(body.amount, field="amount")
    return writer.act(node.escrow.plan_deposit(writer.address, amount))


@router.post("/withdrawals")
def request_withdrawal(body: AmountBody, node: NodeDep, writer: WriterDep) -> dict[str, Any]:
    """Ask the escrow for unused credit back (paid after the withdrawal delay)."""
    amount = parse_open(body.amount, field="amount")
    plan = node.escrow.plan_request_withdrawal(writer.address, amount)
    return writer.act(plan)


@router.post("/withdrawals/complete")
def complete_withdrawal(node: NodeDep, writer: WriterDep) -> dict[str, Any]:
    return writer.act(node.escrow.plan_withdraw(writer.address))


def _key_account(writer: Writer) -> str:
    """What a key of this session is bound to: the dev account's name on the devnet (so the
    CLI lists it too), else the wallet's address."""
    return writer.dev_name or writer.address


@router.get("/keys")
def list_keys(node: NodeDep, writer: WriterDep) -> dict[str, Any]:
    return {"items": node.api_keys.list(_key_account(writer)), "bound": True}


@router.post("/keys", status_code=201)
def create_key(body: KeyBody, request: Request, node: NodeDep, writer: WriterDep) -> dict[str, Any]:
    """A new API key bound to the signed-in account (the secret is shown once)."""
    request.app.state.limits.key_created(request, writer.address)
    return node.api_keys.create(_key_account(writer), body.label, body.scopes)


@router.post("/keys/{key_id}/revoke")
def revoke_key(
    key_id: Annotated[str, Path(max_length=64)], node: NodeDep, writer: WriterDep
) -> dict[str, Any]:
    return node.api_keys.revoke(key_id, requester=writer.principal)
