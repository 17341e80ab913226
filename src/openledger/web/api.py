"""/web/api: the web app's writes, acting as the signed-in account, and the few views the
public JSON API does not have. Every write goes through the same node services as the CLI
and /datanets, /jobs, /models, /v1; reads the pages need are otherwise the public routes."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from openledger.api.deps import NodeDep
from openledger.api.routes.datanets import SAFE_NAME
from openledger.attribution.policy import parse_policy
from openledger.errors import OpenLedgerError
from openledger.units import fmt_open, parse_open
from openledger.web.auth import AuthDep, SessionDep
from openledger.web.chat import run_chat

router = APIRouter(prefix="/web/api", tags=["web"])


def _try(fn: Any) -> Any:
    """A value for a dashboard tile, or ``{"error": message}`` when its service is down."""
    try:
        return fn()
    except OpenLedgerError as exc:
        return {"error": exc.message}


@router.get("/me")
def me(node: NodeDep, session: SessionDep) -> dict[str, Any]:
    """The signed-in account: OPEN balance on chain, inference credit, claimable rewards."""
    a = session.address
    return {
        **session.to_dict(),
        "balance": _try(lambda: str(node.contracts.token.balance_of(a))),
        "credit": _try(lambda: node.ledger.credit(a)),
        "claimable": _try(lambda: node.rewards.claimable(a)),
    }


# ---------------------------------------------------------------------------- datanets


class CreateBody(BaseModel):
    name: str
    description: str = ""
    validators: list[str]
    quorum: int = 1
    min_stake: str = "10"


class ReviewBody(BaseModel):
    approve: bool
    reason: str = ""


@router.post("/datanets", status_code=201)
def create_datanet(
    body: CreateBody, node: NodeDep, auth: AuthDep, session: SessionDep
) -> dict[str, Any]:
    """Create a datanet owned by the signed-in account (validators: addresses, or on the
    devnet the node's account names)."""
    validators = [node.accounts.resolve(v.strip()) for v in body.validators if v.strip()]
    return node.datanets.create(
        body.name,
        description=body.description,
        validators=validators,
        quorum=body.quorum,
        min_stake=parse_open(body.min_stake, field="min_stake"),
        signer=auth.signer(session),
    )


@router.post("/datanets/{datanet}/contributions", status_code=201)
async def contribute(
    datanet: str, node: NodeDep, auth: AuthDep, session: SessionDep,
    files: Annotated[list[UploadFile], File()], stake: Annotated[str, Form()],
    column: Annotated[str | None, Form()] = None,
) -> dict[str, Any]:  # fmt: skip
    """Contribute the uploaded files with a stake, signed by the signed-in account."""
    signer = auth.signer(session)
    with tempfile.TemporaryDirectory(prefix="web-upload-") as tmp:
        paths, names = [], []
        for i, f in enumerate(files):
            name = SAFE_NAME.sub("_", Path(f.filename or f"file{i}").name) or f"file{i}"
            path = Path(tmp) / str(i) / name  # errors and records name the file as uploaded
            path.parent.mkdir()
            path.write_bytes(await f.read())
            paths.append(path)
            names.append(name)
        result = await run_in_threadpool(
            node.contributions.contribute, datanet, paths, stake=parse_open(stake, field="stake"),
            signer=signer, column=column or None, display_names=names,
        )  # fmt: skip
    return result.to_dict()


@router.get("/review-queue")
def review_queue(node: NodeDep, session: SessionDep) -> dict[str, Any]:
    """Pending contributions of every datanet the account validates, with previews, the
    reviews so far and the stake at risk (what a rejection slashes)."""
    slash_bps = node.contracts.params.snapshot().slash_bps
    out = []
    for dn in node.datanets.list(0, 500)["items"]:
        if session.address not in dn["validators"]:
            continue
        pending = node.reviews.pending(dn["name"], 0, 100)
        for item in pending["items"]:
            stake = int(item["stake"])
            item["at_risk"] = str(stake * slash_bps // 10_000)
            item["reviewed"] = any(r["validator"] == session.address for r in item["reviews"])
            item["quorum"] = pending["quorum"]
            out.append(item)
    return {"items": out, "slash_bps": slash_bps}


@router.post("/contributions/{contribution}/review")
def review(contribution: int, body: ReviewBody, node: NodeDep, auth: AuthDep,
           session: SessionDep) -> dict[str, Any]:  # fmt: skip
    return node.reviews.review(contribution, signer=auth.signer(session), approve=body.approve,
                               reason=body.reason)  # fmt: skip


@router.post("/contributions/{contribution}/withdraw")
def withdraw_stake(
    contribution: int, node: NodeDep, auth: AuthDep, session: SessionDep
) -> dict[str, Any]:
    """Take back a decided contribution's stake (approved: after the unlock delay;
    rejected: the part not slashed)."""
    return node.reviews.withdraw(contribution, signer=auth.signer(session))


@router.post("/datanets/{datanet}/snapshots", status_code=201)
def snapshot(datanet: str, node: NodeDep, auth: AuthDep, session: SessionDep) -> dict[str, Any]:
    return node.snapshots.snapshot(datanet, signer=auth.signer(session))


# ---------------------------------------------------------------------------- factory


class TrainBody(BaseModel):
    datanet: str
    base: str
    config: dict[str, Any] = Field(default_factory=dict)


class PublishBody(BaseModel):
    job: int
    name: str
    price_in: str = "0.001"
    price_out: str = "0.002"
    attribution: str = "gradient"


@router.get("/bases")
def bases(node: NodeDep) -> dict[str, Any]:
    """Base models to offer: the node's tiny base if built, and those of published models."""
    found: list[str] = []
    tiny = node.settings.layout.models_dir / "tiny-base"
    if (tiny / "config.json").exists():
        found.append(str(tiny))
    for m in node.models.list(0, 500)["items"]:
        if m["base"] not in found and (
            not m["base"].startswith("/") or (Path(m["base"]) / "config.json").exists()
        ):
            found.append(m["base"])
    return {"items": found}


@router.post("/jobs", status_code=201)
def train(body: TrainBody, node: NodeDep, session: SessionDep) -> dict[str, Any]:
    """Queue a training job (the node's worker runs it)."""
    return node.jobs.submit_train(body.datanet, body.base, body.config)


@router.post("/models", status_code=201)
def publish(body: PublishBody, node: NodeDep, auth: AuthDep, session: SessionDep
            ) -> dict[str, Any]:  # fmt: skip
    return node.models.publish(
        body.job, name=body.name, price_in=parse_open(body.price_in, field="price_in"),
        price_out=parse_open(body.price_out, field="price_out"), signer=auth.signer(session),
        attribution_policy=parse_policy(body.attribution, field="attribution"),
    )  # fmt: skip


# ---------------------------------------------------------------------------- market


class ChatBody(BaseModel):
    model: str
    messages: list[dict[str, str]]
    max_tokens: int = 32
    temperature: float = 0.7
    seed: int | None = 0


class AmountBody(BaseModel):
    amount: str


@router.post("/chat")
async def chat(body: ChatBody, node: NodeDep, session: SessionDep) -> dict[str, Any]:
    """One paid chat turn, paid from the account's inference credit."""
    return await run_in_threadpool(run_chat, node.paid, session.address, body.model,
                                   body.messages, max_tokens=body.max_tokens,
                                   temperature=body.temperature, seed=body.seed)  # fmt: skip


@router.post("/deposit")
def deposit(body: AmountBody, node: NodeDep, auth: AuthDep, session: SessionDep
            ) -> dict[str, Any]:  # fmt: skip
    """Move OPEN into the inference escrow as credit."""
    return node.escrow.deposit(auth.signer(session), parse_open(body.amount, field="amount"))


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
        "claimable": _try(lambda: node.rewards.claimable(session.address)),
        "balance": _try(lambda: str(node.contracts.token.balance_of(session.address))),
    }


@router.post("/claim")
def claim(node: NodeDep, auth: AuthDep, session: SessionDep) -> dict[str, Any]:
    """Claim everything claimable now: ``claim(account, cumulative, proof)`` on chain."""
    result = node.rewards.claim(session.address, auth.signer(session))
    balance = node.contracts.token.balance_of(session.address)
    return {**result, "balance": str(balance), "paid_open": fmt_open(int(result["paid"]))}


@router.get("/claim-tx")
def claim_tx(node: NodeDep, session: SessionDep) -> dict[str, Any]:
    """The claim as an unsigned transaction, for a browser wallet to send itself."""
    c = node.rewards.claimable(session.address)
    rewards_contract = node.contracts.rewards
    proof = [bytes.fromhex(p[2:]) for p in c["proof"]]
    data = rewards_contract.contract.encode_abi(
        "claim", args=[c["account"], int(c["cumulative"]), proof]
    )
    return {"from": session.address, "to": rewards_contract.address, "data": data,
            "claimable": c["claimable"], "chain_id": node.settings.chain_id}  # fmt: skip
