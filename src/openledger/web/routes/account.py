"""/web/api for the account: who is signed in, balance and credit (deposit, withdraw),
API keys."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from openledger.api.deps import NodeDep
from openledger.chain.client import TxResult
from openledger.errors import AuthError, NotFoundError
from openledger.units import fmt_open, parse_open
from openledger.web.auth import AuthDep, SessionDep
from openledger.web.routes import tile
from openledger.web.sessions import Session
from openledger.web.wallet import PendingDep, act_recorded

router = APIRouter(prefix="/web/api", tags=["web"])


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
    amount: str


@router.post("/deposit")
def deposit(body: AmountBody, node: NodeDep, auth: AuthDep, session: SessionDep,
            pending: PendingDep) -> dict[str, Any]:  # fmt: skip
    """Move OPEN into the inference escrow as credit (a wallet approves, then deposits)."""
    amount = parse_open(body.amount, field="amount")

    def finish(results: list[TxResult], _sig: str | None) -> dict[str, Any]:
        node.sync_chain()  # the Deposited event: the credit is usable at once
        return {"tx_hash": results[-1].tx_hash, "amount": str(amount),
                **node.ledger.credit(session.address)}  # fmt: skip

    return act_recorded(node.client, auth, session, pending,
                        lambda signer: node.escrow.deposit(signer, amount), finish,
                        f"deposit {fmt_open(amount)} OPEN as inference credit",
                        names=node.contracts.addresses.contracts)  # fmt: skip


class KeyBody(BaseModel):
    label: str = ""


@router.post("/withdrawals")
def request_withdrawal(
    body: AmountBody, node: NodeDep, auth: AuthDep, session: SessionDep, pending: PendingDep
) -> dict[str, Any]:
    """Ask the escrow for unused credit back (paid after the withdrawal delay)."""
    amount = parse_open(body.amount, field="amount")

    def finish(results: list[TxResult], _sig: str | None) -> dict[str, Any]:
        node.sync_chain()
        _, ready_at = node.contracts.escrow.pending_withdrawal(session.address)
        return {"tx_hash": results[-1].tx_hash, "amount": str(amount), "ready_at": ready_at,
                **node.ledger.credit(session.address)}  # fmt: skip

    return act_recorded(node.client, auth, session, pending,
                        lambda signer: node.escrow.request_withdrawal(signer, amount), finish,
                        f"ask for {fmt_open(amount)} OPEN of credit back",
                        names=node.contracts.addresses.contracts)  # fmt: skip


@router.post("/withdrawals/complete")
def complete_withdrawal(node: NodeDep, auth: AuthDep, session: SessionDep,
                        pending: PendingDep) -> dict[str, Any]:  # fmt: skip
    def finish(results: list[TxResult], _sig: str | None) -> dict[str, Any]:
        paid = node.contracts.escrow.events(results[-1], "Withdrawn")
        node.sync_chain()
        return {"tx_hash": results[-1].tx_hash, "paid": str(int(paid[0]["amount"]) if paid else 0),
                **node.ledger.credit(session.address)}  # fmt: skip

    return act_recorded(
        node.client,
        auth,
        session,
        pending,
        node.escrow.withdraw,
        finish,
        "complete the credit withdrawal",
        names=node.contracts.addresses.contracts,
    )


def _key_account(session: Session) -> str:
    if session.dev is None:
        raise AuthError(
            f"API keys are bound to accounts this node holds; it holds none for {session.address}.",
            field="account",
            value=session.address,
            fix="sign in with a dev account on the devnet, or create keys with "
            "`openledger keys create` on your own node.",
        )
    return session.dev


@router.get("/keys")
def list_keys(node: NodeDep, session: SessionDep) -> dict[str, Any]:
    if session.dev is None:
        return {"items": [], "bound": False}
    return {"items": node.api_keys.list(session.dev), "bound": True}


@router.post("/keys", status_code=201)
def create_key(body: KeyBody, node: NodeDep, session: SessionDep) -> dict[str, Any]:
    """A new API key for the account (the secret is shown once)."""
    return node.api_keys.create(_key_account(session), body.label)


@router.post("/keys/{key_id}/revoke")
def revoke_key(key_id: str, node: NodeDep, session: SessionDep) -> dict[str, Any]:
    own = {k["key_id"] for k in node.api_keys.list(_key_account(session))}
    if key_id not in own:
        raise NotFoundError(f"No API key {key_id!r} of this account.", field="key",
                            value=key_id, fix="pick one of the keys listed.")  # fmt: skip
    return node.api_keys.revoke(key_id)
