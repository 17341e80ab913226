"""/web/api for paid inference and rewards: the playground's chat, earnings, claims."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from openledger.api.deps import NodeDep
from openledger.chain.client import TxResult
from openledger.ledger.receipts import check_served
from openledger.units import fmt_open
from openledger.web.auth import AuthDep, SessionDep
from openledger.web.chat import run_chat
from openledger.web.routes import tile
from openledger.web.wallet import PendingDep, act_recorded

router = APIRouter(prefix="/web/api", tags=["web"])


class ChatBody(BaseModel):
    model: str
    messages: list[dict[str, str]]
    max_tokens: int = 32
    temperature: float = 0.7
    seed: int | None = 0


@router.post("/chat")
async def chat(body: ChatBody, node: NodeDep, session: SessionDep) -> dict[str, Any]:
    """One paid chat turn, paid from the account's inference credit."""
    return await run_in_threadpool(run_chat, node.paid, session.address, body.model,
                                   body.messages, max_tokens=body.max_tokens,
                                   temperature=body.temperature, seed=body.seed)  # fmt: skip


@router.get("/rewards")
def rewards(node: NodeDep, session: SessionDep) -> dict[str, Any]:
    """The account's earnings with names, per epoch for the chart, and what it can claim."""
    earnings = node.rewards.earnings(session.address)
    datanets = {str(d["id"]): d["name"] for d in node.datanets.list(0, 500)["items"]}
    models = {str(m["id"]): m["name"] for m in node.models.list(0, 500)["items"]}
    epochs = {str(e["epoch"]): e for e in node.epochs.list()}
    timeline = [
        {"epoch": k, "amount": v,
         "at": (epochs.get(k) or {}).get("settled_at") or (epochs.get(k) or {}).get("created_at")}
        for k, v in earnings["by_epoch"].items()
    ]  # fmt: skip
    timeline.sort(key=lambda r: (r["epoch"] == "open", int(r["epoch"]) if r["epoch"].isdigit()
                                 else 0))  # fmt: skip
    return {
        "earnings": earnings,
        "names": {"datanet": datanets, "model": models},
        "timeline": timeline,
        "claimable": tile(lambda: node.rewards.claimable(session.address)),
        "balance": tile(lambda: str(node.contracts.token.balance_of(session.address))),
    }


@router.post("/claim")
def claim(node: NodeDep, auth: AuthDep, session: SessionDep, pending: PendingDep
          ) -> dict[str, Any]:  # fmt: skip
    """Claim everything claimable now: ``claim(account, cumulative, proof)`` on chain (sent by
    the node for a dev account, by the wallet otherwise)."""
    c = node.rewards.claimable(session.address)

    def shown(result: dict[str, Any]) -> dict[str, Any]:
        balance = node.contracts.token.balance_of(session.address)
        return {**result, "balance": str(balance), "paid_open": fmt_open(int(result["paid"]))}

    def finish(results: list[TxResult], _sig: str | None) -> dict[str, Any]:
        paid = node.contracts.rewards.events(results[-1], "Claimed")
        amount = int(paid[0]["amount"]) if paid else int(c["claimable"])
        return shown({**c, "paid": str(amount), "tx_hash": results[-1].tx_hash, "claimable": "0",
                      "claimed": str(int(c["claimed"]) + amount)})  # fmt: skip

    out = act_recorded(node.client, auth, session, pending,
                       lambda signer: node.rewards.claim(session.address, signer), finish,
                       f"claim {fmt_open(int(c['claimable']))} OPEN of rewards",
                       names=node.contracts.addresses.contracts)  # fmt: skip
    return out if "wallet" in out else shown(out)


@router.get("/receipts/{receipt}/check")
def check_receipt(receipt: str, node: NodeDep) -> dict[str, Any]:
    """Whether a receipt as served proves itself (content hash, chain link, the operator's
    signed head): the same check anyone can run with the document and the operator address."""
    doc = node.ledger.receipt(receipt)
    operator = node.accounts.operator_address()
    problem = check_served(doc, operator)
    return {"id": doc["id"], "ok": not problem, "problem": problem, "operator": operator}
