"""Writes of the web app: the node signs for a dev account (devnet only); for a wallet the
write is prepared (``auth.prepared``, in the database) and the page sends the transactions
with ``eth_sendTransaction``, then reports the hashes to ``POST /web/api/wallet/submit``,
which checks them and records the write, exactly as for API clients (``http.acting``)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from openledger.auth.principal import Principal
from openledger.chain.calls import Plan
from openledger.http import acting
from openledger.http.acting import Actor
from openledger.http.deps import NodeDep
from openledger.node import Node
from openledger.web.auth import AuthDep, SessionDep, WebAuth, only_own_account
from openledger.web.sessions import Session


@dataclass(frozen=True)
class Writer:
    """The signed-in account, as a web route that writes or checks ownership acts for it."""

    node: Node
    auth: WebAuth
    session: Session

    @property
    def address(self) -> str:
        return self.session.address

    @cached_property
    def dev_name(self) -> str | None:
        """Its dev-account name on the devnet (the node holds that key), else None."""
        return self.auth.dev_name(self.session.address)

    @property
    def principal(self) -> Principal:
        return self.auth.principal(self.session)

    def act(self, plan: Plan) -> dict[str, Any]:
        """Send ``plan`` with the node's dev key for a dev account; otherwise offer it to the
        wallet (``{"wallet": {...}}``: the page sends it and reports to ``/wallet/submit``)."""
        return acting.act(self.node, Actor(self.address, self.dev_name), plan)


def get_writer(node: NodeDep, auth: AuthDep, session: SessionDep) -> Writer:
    return Writer(node, auth, session)


WriterDep = Annotated[Writer, Depends(get_writer)]


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
