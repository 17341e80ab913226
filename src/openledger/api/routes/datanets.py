"""/datanets: the datanet services as JSON (paginated lists)."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask

from openledger.api.deps import NodeDep
from openledger.datanets.snapshots import EXPORT_FORMATS
from openledger.units import parse_open

router = APIRouter(prefix="/datanets", tags=["datanets"])

Offset = Annotated[int, Query(ge=0)]
Limit = Annotated[int, Query(ge=1, le=500)]
SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


async def save_uploads(files: list[UploadFile], directory: Path) -> tuple[list[Path], list[str]]:
    """Write uploads under ``directory``, each under its own (sanitised) name in a folder of
    its own, so parse errors and the manifest's records name the file as uploaded; returns
    the paths and those names."""
    paths, names = [], []
    for i, f in enumerate(files):
        name = SAFE_NAME.sub("_", Path(f.filename or f"file{i}").name) or f"file{i}"
        path = directory / str(i) / name
        path.parent.mkdir()
        path.write_bytes(await f.read())
        paths.append(path)
        names.append(name)
    return paths, names


class Signer(BaseModel):
    as_: str = Field(
        alias="as",
        description="A node-held account that signs (devnet accounts, or the operator). "
        "Browser wallets sign for themselves through the web app.",
    )


class CreateDatanet(Signer):
    name: str
    description: str = ""
    validators: list[str]
    quorum: int = 1
    min_stake: str = Field("10", description="In OPEN, e.g. '10' or '2.5'.")


class Review(Signer):
    approve: bool
    reason: str = ""


@router.get("")
def list_datanets(node: NodeDep, offset: Offset = 0, limit: Limit = 50) -> dict[str, Any]:
    return node.datanets.list(offset, limit)


@router.post("", status_code=201)
def create_datanet(body: CreateDatanet, node: NodeDep) -> dict[str, Any]:
    validators = [v if v.startswith("0x") else node.accounts.address(v) for v in body.validators]
    return node.datanets.create(
        body.name,
        description=body.description,
        validators=validators,
        quorum=body.quorum,
        min_stake=parse_open(body.min_stake, field="min_stake"),
        signer=node.accounts.signer(body.as_),
    )


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
    files: Annotated[list[UploadFile], File(description=".txt .md .jsonl .csv .parquet")],
    stake: Annotated[str, Form(description="Stake in OPEN.")],
    as_: Annotated[str, Form(alias="as")],
    column: Annotated[str | None, Form()] = None,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="upload-") as tmp:
        paths, names = await save_uploads(files, Path(tmp))
        result = node.contributions.contribute(
            datanet, paths, stake=parse_open(stake, field="stake"),
            signer=node.accounts.signer(as_), column=column, display_names=names,
        )  # fmt: skip
    return result.to_dict()


@router.get("/{datanet}/contributions/{contribution}")
def show_contribution(
    datanet: str, contribution: int, node: NodeDep, offset: Offset = 0, limit: Limit = 50
) -> dict[str, Any]:
    return node.reviews.detail(contribution, offset=offset, limit=limit)


@router.post("/{datanet}/contributions/{contribution}/reviews")
def review(datanet: str, contribution: int, body: Review, node: NodeDep) -> dict[str, Any]:
    return node.reviews.review(
        contribution, signer=node.accounts.signer(body.as_), approve=body.approve,
        reason=body.reason,
    )  # fmt: skip


@router.post("/{datanet}/contributions/{contribution}/withdraw")
def withdraw(datanet: str, contribution: int, body: Signer, node: NodeDep) -> dict[str, Any]:
    return node.reviews.withdraw(contribution, signer=node.accounts.signer(body.as_))


@router.get("/{datanet}/snapshots")
def list_snapshots(datanet: str, node: NodeDep) -> dict[str, Any]:
    items = node.snapshots.list(datanet)
    return {"items": items, "total": len(items)}


@router.post("/{datanet}/snapshots", status_code=201)
def snapshot(datanet: str, body: Signer, node: NodeDep) -> dict[str, Any]:
    return node.snapshots.snapshot(datanet, signer=node.accounts.signer(body.as_))


@router.get("/{datanet}/snapshots/{version}")
def show_snapshot(datanet: str, version: int, node: NodeDep) -> dict[str, Any]:
    return node.snapshots.get(datanet, version)


@router.get("/{datanet}/snapshots/{version}/export")
def export_snapshot(
    datanet: str, version: int, node: NodeDep,
    format: Annotated[str, Query(description=f"One of {', '.join(EXPORT_FORMATS)}.")] = "jsonl",
) -> FileResponse:  # fmt: skip
    tmp = tempfile.TemporaryDirectory(prefix="export-")
    name = f"{datanet}-v{version}.{format}"
    path = node.snapshots.export(f"{datanet}@{version}", format, Path(tmp.name) / name)
    return FileResponse(path, filename=name, background=BackgroundTask(tmp.cleanup))
