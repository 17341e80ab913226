"""/web/api for paid inference and rewards: the playground's chat, earnings, claims."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from openledger.http.deps import NodeDep
from openledger.ledger.settlement.timeline import earnings_view
from openledger.web.auth import SessionDep
from openledger.web.chat import run_agent_chat, run_chat
from openledger.web.routes import tile
from openledger.web.wallet import OwnAccount, WriterDep

router = APIRouter(prefix="/web/api", tags=["web"], dependencies=OwnAccount)


class ChatBody(BaseModel):
    model: Annotated[str, Field(max_length=200)]
    messages: list[
        dict[Annotated[str, Field(max_length=32)], Annotated[str, Field(max_length=100_000)]]
    ] = Field(max_length=64)
    max_tokens: int = Field(32, ge=1, le=4096)
    temperature: float = Field(0.7, ge=0.0, le=2.0)
    seed: int | None = Field(0, ge=0, le=2**63 - 1)


@router.post("/chat")
async def chat(
    body: ChatBody, request: Request, node: NodeDep, session: SessionDep
) -> dict[str, Any]:
    """One paid chat turn, paid from the account's inference credit; ``agent/NAME`` calls
    an agent (its price on top, docs/agents.md)."""
    request.app.state.limits.paid_request(request, session.address)
    if body.model.startswith("agent/"):
        return await run_in_threadpool(
            run_agent_chat,
            node.agents,
            node.paid,
            session.address,
            body.model,
            body.messages,
            max_tokens=body.max_tokens,
            temperature=body.temperature,
            seed=body.seed,
        )
    return await run_in_threadpool(
        run_chat,
        node.paid,
        session.address,
        body.model,
        body.messages,
        max_tokens=body.max_tokens,
        temperature=body.temperature,
        seed=body.seed,
    )


@router.get("/rewards")
def rewards(node: NodeDep, session: SessionDep) -> dict[str, Any]:
    """The account's earnings with names, per epoch for the chart, and what it can claim."""
    view = earnings_view(
        node.rewards.earnings(session.address),
        datanets=node.datanets.list(0, 500)["items"],
        models=node.models.list(0, 500)["items"],
        epochs=node.epochs.list(),
    )
    return {
        **view,
        "claimable": tile(lambda: node.rewards.claimable(session.address)),
        "balance": tile(lambda: str(node.contracts.token.balance_of(session.address))),
    }


@router.post("/claim")
def claim(node: NodeDep, writer: WriterDep) -> dict[str, Any]:
    """Claim everything claimable now: ``claim(account, cumulative, proof)`` on chain (sent by
    the node for a dev account, by the wallet otherwise)."""
    plan = node.rewards.plan_claim(writer.address, writer.address)
    return writer.act(plan)


@router.get("/receipts/{receipt}/check")
def check_receipt(receipt: Annotated[str, Path(max_length=80)], node: NodeDep) -> dict[str, Any]:
    """Whether a receipt as served proves itself (content hash, chain link, the operator's
    signed head): the same check anyone can run with the document and the operator address.
    By its public id only (``rc_…``), as ``GET /receipts/{id}`` serves it to anyone."""
    return node.ledger.check_served(receipt, node.accounts.operator_address())
