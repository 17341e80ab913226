"""/web/api for the account: who is signed in, balance and credit (deposit, withdraw),
API keys."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field

from openledger.errors import NotFoundError
from openledger.http.bounds import Name
from openledger.http.deps import NodeDep
from openledger.units import parse_open
from openledger.web.auth import AuthDep, SessionDep, WebAuth
from openledger.web.routes import tile
from openledger.web.sessions import Session
from openledger.web.wallet import OwnAccount, act

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
def deposit(body: AmountBody, node: NodeDep, auth: AuthDep, session: SessionDep) -> dict[str, Any]:
    """Move OPEN into the inference escrow as credit (a wallet approves, then deposits)."""
    amount = parse_open(body.amount, field="amount")
    return act(node, auth, session, node.escrow.plan_deposit(session.address, amount))


@router.post("/withdrawals")
def request_withdrawal(
    body: AmountBody, node: NodeDep, auth: AuthDep, session: SessionDep
) -> dict[str, Any]:
    """Ask the escrow for unused credit back (paid after the withdrawal delay)."""
    amount = parse_open(body.amount, field="amount")
    plan = node.escrow.plan_request_withdrawal(session.address, amount)
    return act(node, auth, session, plan)


@router.post("/withdrawals/complete")
def complete_withdrawal(node: NodeDep, auth: AuthDep, session: SessionDep) -> dict[str, Any]:
    return act(node, auth, session, node.escrow.plan_withdraw(session.address))


def _key_account(auth: WebAuth, session: Session) -> str:
    """What a key of this session is bound to: the dev account's name on the devnet (so the
    CLI lists it too), else the wallet's address."""
    return auth.dev_name(session.address) or session.address


@router.get("/keys")
def list_keys(node: NodeDep, auth: AuthDep, session: SessionDep) -> dict[str, Any]:
    return {"items": node.api_keys.list(_key_account(auth, session)), "bound": True}


@router.post("/keys", status_code=201)
def create_key(
    body: KeyBody, request: Request, node: NodeDep, auth: AuthDep, session: SessionDep
) -> dict[str, Any]:
    """A new API key bound to the signed-in account (the secret is shown once)."""
    request.app.state.limits.key_created(request, session.address)
    return node.api_keys.create(_key_account(auth, session), body.label, body.scopes)


@router.post("/keys/{key_id}/revoke")
def revoke_key(
    key_id: Annotated[str, Path(max_length=64)], node: NodeDep, auth: AuthDep, session: SessionDep
) -> dict[str, Any]:
    owner = node.api_keys.owner(key_id)
    if owner is None:
        raise NotFoundError(
            f"No API key {key_id!r}.", field="key", value=key_id, fix="pick one of the keys listed."
        )
    if owner.lower() != session.address.lower():
        raise auth.principal(session).forbid(f"the API key {key_id}", "revoke it")
    return node.api_keys.revoke(key_id)
