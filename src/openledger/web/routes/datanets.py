"""/web/api for datanets: create, contribute files, the review queue, reviews, stake
withdrawals, snapshots and access prices, each signed by the signed-in account; exports of
a snapshot as the signed-in account (a priced one if it may read it)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from openledger.http.bounds import IdField, IdPath, Limit, Name, Offset, Text
from openledger.http.datanets import export_file, price_wei
from openledger.http.deps import NodeDep
from openledger.http.uploads import save_uploads
from openledger.units import parse_open
from openledger.web.auth import SessionDep
from openledger.web.wallet import OwnAccount, WriterDep

router = APIRouter(prefix="/web/api", tags=["web"], dependencies=OwnAccount)


class CreateBody(BaseModel):
    name: Name
    description: Text = ""
    validators: list[Name] = Field(max_length=64)
    quorum: IdField = 1
    min_stake: Name = "10"


class PricesBody(BaseModel):
    export: Name | None = None  # OPEN per snapshot export; None: unchanged
    train: Name | None = None  # OPEN per training job on a snapshot; None: unchanged


class ReviewBody(BaseModel):
    approve: bool
    reason: Text = ""


@router.post("/datanets", status_code=201)
def create_datanet(body: CreateBody, node: NodeDep, writer: WriterDep) -> dict[str, Any]:
    """Create a datanet owned by the signed-in account (validators: addresses, or on the
    devnet the node's account names)."""
    validators = [node.accounts.resolve(v.strip()) for v in body.validators if v.strip()]
    plan = node.datanets.plan_create(
        body.name,
        description=body.description,
        validators=validators,
        quorum=body.quorum,
        min_stake=parse_open(body.min_stake, field="min_stake"),
        owner=writer.address,
    )
    return writer.act(plan)


@router.post("/datanets/{datanet}/contributions", status_code=201)
async def contribute(
    datanet: str,
    node: NodeDep,
    writer: WriterDep,
    files: Annotated[list[UploadFile], File()],
    stake: Annotated[str, Form(max_length=80)],
    column: Annotated[str | None, Form(max_length=200)] = None,
) -> dict[str, Any]:
    """Contribute the uploaded files with a stake, signed by the signed-in account (a wallet
    signs the manifest and sends approve + contribute; the node records it once mined)."""
    with tempfile.TemporaryDirectory(prefix="web-upload-") as tmp:
        paths, names = await save_uploads(files, Path(tmp))
        plan = await run_in_threadpool(
            node.contributions.plan_contribute,
            datanet,
            paths,
            stake=parse_open(stake, field="stake"),
            contributor=writer.address,
            column=column or None,
            display_names=names,
        )
    return await run_in_threadpool(writer.act, plan)


@router.get("/review-queue")
def review_queue(node: NodeDep, session: SessionDep) -> dict[str, Any]:
    """Pending contributions of every datanet the account validates, with previews, the
    reviews so far and the stake at risk (what a rejection slashes)."""
    return node.reviews.queue(session.address)


@router.post("/contributions/{contribution}/review")
def review(
    contribution: IdPath, body: ReviewBody, node: NodeDep, writer: WriterDep
) -> dict[str, Any]:
    plan = node.reviews.plan_review(
        contribution, validator=writer.address, approve=body.approve, reason=body.reason
    )
    return writer.act(plan)


@router.post("/contributions/{contribution}/withdraw")
def withdraw_stake(contribution: IdPath, node: NodeDep, writer: WriterDep) -> dict[str, Any]:
    """Take back a decided contribution's stake (approved: after the unlock delay;
    rejected: the part not slashed)."""
    plan = node.reviews.plan_withdraw(contribution, contributor=writer.address)
    return writer.act(plan)


@router.post("/datanets/{datanet}/snapshots", status_code=201)
def snapshot(datanet: str, node: NodeDep, writer: WriterDep) -> dict[str, Any]:
    plan = node.snapshots.plan_snapshot(datanet, sender=writer.address)
    return writer.act(plan)


@router.put("/datanets/{datanet}/access")
def set_prices(datanet: str, body: PricesBody, node: NodeDep, writer: WriterDep) -> dict[str, Any]:
    """Set the datanet's access prices in OPEN (its owner only, each at most the governable
    max_access_price)."""
    plan = node.access.plan_set_prices(
        datanet,
        export=price_wei(body.export, "export"),
        train=price_wei(body.train, "train"),
        owner=writer.address,
    )
    return writer.act(plan)


@router.get("/datanets/{datanet}/snapshots/{version}/export")
def export(
    datanet: str,
    version: IdPath,
    node: NodeDep,
    session: SessionDep,
    format: Annotated[str, Query(max_length=16)] = "jsonl",
) -> FileResponse:
    """The snapshot as a file for the signed-in account: a priced one only if it paid for
    its export (POST /web/api/datanets/{datanet}/access, kind export), contributed to it
    or owns the datanet (402 otherwise, and nothing leaves)."""
    return export_file(node, datanet, version, format, session.address)


@router.get("/contributions/{contribution}")
def contribution(
    contribution: IdPath, node: NodeDep, session: SessionDep, offset: Offset = 0, limit: Limit = 50
) -> dict[str, Any]:
    """A contribution with its records as the signed-in account may read them (on a priced
    datanet: its owner, validators, the contributor, or an account that may export a
    snapshot holding it; ``records.withheld`` otherwise)."""
    return node.reviews.detail_for(contribution, session.address, offset=offset, limit=limit)
