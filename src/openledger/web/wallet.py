"""Writes of the web app: the node signs for a dev account (devnet only); for a wallet the
write is prepared (``auth.prepared``, in the database) and the page sends the transactions
with ``eth_sendTransaction``, then reports the hashes to ``POST /web/api/wallet/submit``,
which checks them and records the write, exactly as for API clients (``http.acting``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from openledger.chain.calls import Plan
from openledger.http import acting
from openledger.http.acting import Actor
from openledger.http.deps import NodeDep
from openledger.node import Node
from openledger.web.auth import SessionDep, WebAuth, only_own_account
from openledger.web.sessions import Session


def session_actor(auth: WebAuth, session: Session) -> Actor:
    return Actor(session.address, auth.dev_name(session.address))


def act(node: Node, auth: WebAuth, session: Session, plan: Plan) -> dict[str, Any]:
    """Send ``plan`` with the node's dev key for a dev account; otherwise offer it to the
    wallet (``{"wallet": {...}}``: the page sends it and reports to ``/wallet/submit``)."""
    return acting.act(node, session_actor(auth, session), plan)


OwnAccount = [Depends(only_own_account)]
router = APIRouter(prefix="/web/api", tags=["web"], dependencies=OwnAccount)


class SubmitBody(BaseModel):
    pending: Annotated[str, Field(max_length=64)]
    hashes: list[Annotated[str, Field(max_length=80)]] = Field(default_factory=list, max_length=8)
    signature: Annotated[str | None, Field(max_length=200)] = None


@router.post("/wallet/submit")
def submit(body: SubmitBody, node: NodeDep, session: SessionDep) -> dict[str, Any]:
    """The wallet sent the prepared transactions: check them, then record the write."""
    return node.prepared.submit(session.address, body.pending, body.hashes, body.signature)
