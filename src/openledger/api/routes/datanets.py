"""/datanets: the datanet services as JSON (paginated lists). Reads are public; writes need
a credential with the ``write`` scope and act for its account (see ``api.acting``)."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from openledger.api.acting import act, actor
from openledger.api.bounds import AsField, IdField, IdPath, Limit, Name, Offset, Text
from openledger.api.credentials import Writer
from openledger.api.deps import NodeDep
from openledger.datanets.snapshots import EXPORT_FORMATS
from openledger.units import parse_open

router = APIRouter(prefix="/datanets", tags=["datanets"])

SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
MAX_NAME_BYTES = 255


def safe_name(raw: str | None, i: int) -> str:
    """An upload's name as it may be written to disk: its last component, letters, digits,
    ``.``, ``_`` and ``-`` only, no leading dot (so never ``.`` or ``..``), at most 255
    bytes with its extension kept; ``file{i}`` when nothing is left."""
    base = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = SAFE_NAME.sub("_", base).lstrip(".")
    if len(name) > MAX_NAME_BYTES:
        stem, dot, ext = name.rpartition(".")
        ext = ext[:16] if dot and stem else ""
        name = name[: MAX_NAME_BYTES - len(ext) - 1].rstrip(".") + ("." + ext if ext else "")
    return name or f"file{i}"


async def save_uploads(files: list[UploadFile], directory: Path) -> tuple[list[Path], list[str]]:
    """Write uploads under ``directory``, each under its own (sanitised) name in a folder of
    its own, so parse errors and the manifest's records name the file as uploaded; returns
    the paths and those names."""
    paths, names = [], []
    for i, f in enumerate(files):
        name = safe_name(f.filename, i)
        path = directory / str(i) / name
        path.parent.mkdir()
        path.write_bytes(await f.read())
        paths.append(path)
        names.append(name)
    return paths, names


class Signer(BaseModel):
    as_: AsField = None


class CreateDatanet(Signer):
    name: Name
    description: Text = ""
    validators: list[Name] = Field(max_length=64)
    quorum: IdField = 1
    min_stake: Name = Field("10", description="In OPEN, e.g. '10' or '2.5'.")


class Review(Signer):
    approve: bool
    reason: Text = ""


@router.get("")
def list_datanets(node: NodeDep, offset: Offset = 0, limit: Limit = 50) -> dict[str, Any]:
    return node.datanets.list(offset, limit)


@router.post("", status_code=201)
def create_datanet(body: CreateDatanet, node: NodeDep, principal: Writer) -> dict[str, Any]:
    """Create a datanet owned by the acting account (validators: addresses or, on the devnet,
    the node's account names)."""
    who = actor(node, principal, body.as_)
    validators = [node.accounts.resolve(v.strip()) for v in body.validators if v.strip()]
    plan = node.datanets.plan_create(
        body.name,
        description=body.description,
        validators=validators,
        quorum=body.quorum,
        min_stake=parse_open(body.min_stake, field="min_stake"),
        owner=who.address,
    )
    return act(node, who, plan)


@router.get("/{datanet}")
def show_datanet(datanet: str, node: NodeDep) -> dict[str, Any]:
    return node.datanets.show(datanet)


@router.get("/{datanet}/contributions")
def list_contributions(
    datanet: str, node: NodeDep, status: str | None = None, offset: Offset = 0, limit: Limit = 50
) -> dict[str, Any]:
    if status == "pending":
        return node.reviews.pending(datanet, offset, limit)
    return node.reviews.listing(datanet, status=status, offset=offset, limit=limit)


@router.post("/{datanet}/contributions", status_code=201)
async def contribute(
    datanet: str,
    node: NodeDep,
    principal: Writer,
    files: Annotated[list[UploadFile], File(description=".txt .md .jsonl .csv .parquet")],
    stake: Annotated[str, Form(description="Stake in OPEN.", max_length=80)],
    as_: Annotated[str | None, Form(alias="as", max_length=64)] = None,
    column: Annotated[str | None, Form(max_length=200)] = None,
) -> dict[str, Any]:
    """Contribute files with a stake, for the acting account: the node signs for its own
    accounts; anyone else gets the prepared write (sign the manifest, send approve and
    contribute, report them to /wallet/submit)."""
    who = actor(node, principal, as_)
    with tempfile.TemporaryDirectory(prefix="upload-") as tmp:
        paths, names = await save_uploads(files, Path(tmp))
        plan = await run_in_threadpool(
            node.contributions.plan_contribute, datanet, paths,
            stake=parse_open(stake, field="stake"), contributor=who.address,
            column=column or None, display_names=names,
        )  # fmt: skip
    return await run_in_threadpool(act, node, who, plan)


@router.get("/{datanet}/contributions/{contribution}")
def show_contribution(
    datanet: str, contribution: IdPath, node: NodeDep, offset: Offset = 0, limit: Limit = 50
) -> dict[str, Any]:
    return node.reviews.detail(contribution, offset=offset, limit=limit)


@router.post("/{datanet}/contributions/{contribution}/reviews")
def review(datanet: str, contribution: IdPath, body: Review, node: NodeDep,
           principal: Writer) -> dict[str, Any]:  # fmt: skip
    """Approve or reject, as the acting account (a validator of the datanet)."""
    who = actor(node, principal, body.as_)
    plan = node.reviews.plan_review(contribution, validator=who.address, approve=body.approve,
                                    reason=body.reason)  # fmt: skip
    return act(node, who, plan)


@router.post("/{datanet}/contributions/{contribution}/withdraw")
def withdraw(datanet: str, contribution: IdPath, body: Signer, node: NodeDep,
             principal: Writer) -> dict[str, Any]:  # fmt: skip
    """Take back a decided contribution's stake (the contributor only)."""
    who = actor(node, principal, body.as_)
    return act(node, who, node.reviews.plan_withdraw(contribution, contributor=who.address))


@router.get("/{datanet}/snapshots")
def list_snapshots(datanet: str, node: NodeDep) -> dict[str, Any]:
    items = node.snapshots.list(datanet)
    return {"items": items, "total": len(items)}


@router.post("/{datanet}/snapshots", status_code=201)
def snapshot(datanet: str, body: Signer, node: NodeDep, principal: Writer) -> dict[str, Any]:
    """Freeze a snapshot (the datanet's owner only)."""
    who = actor(node, principal, body.as_)
    return act(node, who, node.snapshots.plan_snapshot(datanet, sender=who.address))


@router.get("/{datanet}/snapshots/{version}")
def show_snapshot(datanet: str, version: IdPath, node: NodeDep) -> dict[str, Any]:
    return node.snapshots.get(datanet, version)


@router.get("/{datanet}/snapshots/{version}/export")
def export_snapshot(
    datanet: str, version: IdPath, node: NodeDep,
    format: Annotated[str, Query(description=f"One of {', '.join(EXPORT_FORMATS)}.",
                                 max_length=16)] = "jsonl",
) -> FileResponse:  # fmt: skip
    tmp = tempfile.TemporaryDirectory(prefix="export-")
    name = f"{datanet}-v{version}.{format}"
    path = node.snapshots.export(f"{datanet}@{version}", format, Path(tmp.name) / name)
    return FileResponse(path, filename=name, background=BackgroundTask(tmp.cleanup))
