"""/jobs and /models: the Model Factory as JSON. Training runs in its own process.

A job belongs to the account that queued it (``owner``; the node's own jobs, queued from the
CLI, have none): only that account, or the operator token, cancels, resumes or publishes it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from openledger.attribution.policy import parse_policy
from openledger.errors import NotFoundError
from openledger.http.acting import act, actor
from openledger.http.bounds import AsField, IdField, IdPath, Limit, Name, Offset
from openledger.http.credentials import Writer
from openledger.http.deps import NodeDep
from openledger.units import parse_open

router = APIRouter(tags=["factory"])


class TrainRequest(BaseModel):
    datanet: Name = Field(description="DATANET or DATANET@VERSION")
    base: Annotated[
        str, Field(max_length=1000, description="Local Hugging Face directory or hub id")
    ]
    config: dict[str, Any] = Field(
        default_factory=dict, description="Training keys (method, rank, …)", max_length=64
    )
    access: IdField | None = Field(
        None,
        description="The paid training access to spend on a priced snapshot "
        "(POST /datanets/{datanet}/access); default: any unspent one of the account.",
    )
    as_: AsField = None


class PublishRequest(BaseModel):
    job: IdField
    name: Name
    price_in: Name = Field("0.001", description="OPEN per 1,000 prompt tokens")
    price_out: Name = Field("0.002", description="OPEN per 1,000 completion tokens")
    as_: AsField = None
    attribution: Name = Field(
        "gradient", description="gradient, spans, rag or a mix, e.g. gradient:0.7,spans:0.3"
    )


@router.post("/jobs", status_code=201)
def submit(body: TrainRequest, node: NodeDep, principal: Writer) -> dict[str, Any]:
    """Queue a training job for the credential's account (the operator token: the node's
    own, or with ``"as"`` that node-held account's); the node's worker runs it. On a priced
    snapshot the account spends a paid training access (402 without one; nothing is charged
    and nothing queued), unless it contributed to the snapshot or owns the datanet."""
    who = actor(node, principal, body.as_)
    return node.jobs.submit_train_for(
        principal,
        body.datanet,
        body.base,
        body.config,
        account=who.address,
        named=bool(body.as_),
        access=body.access,
    )


@router.get("/jobs")
def list_jobs(
    node: NodeDep,
    status: Annotated[str | None, Query(max_length=16)] = None,
    offset: Offset = 0,
    limit: Limit = 50,
) -> dict[str, Any]:
    return node.jobs.list(status=status, offset=offset, limit=limit)


@router.get("/jobs/{job}")
def show_job(job: IdPath, node: NodeDep) -> dict[str, Any]:
    return node.jobs.get(job)


@router.get("/jobs/{job}/metrics")
def job_metrics(job: IdPath, node: NodeDep) -> dict[str, Any]:
    return {"items": node.jobs.metrics(job)}


@router.get("/jobs/{job}/loss.png", response_class=FileResponse)
def loss_curve(job: IdPath, node: NodeDep) -> FileResponse:
    path = node.jobs.get(job)["loss_curve"]
    if not path:
        raise NotFoundError(
            f"Job {job} has no loss curve yet.",
            field="job",
            value=job,
            fix="it is drawn at the first evaluation.",
        )
    return FileResponse(Path(path), media_type="image/png")


@router.post("/jobs/{job}/cancel")
def cancel(job: IdPath, node: NodeDep, principal: Writer) -> dict[str, Any]:
    node.jobs.own(job, principal)
    return node.jobs.cancel(job)


@router.post("/jobs/{job}/resume", status_code=202)
def resume(job: IdPath, node: NodeDep, principal: Writer) -> dict[str, Any]:
    """Resume a failed, cancelled or crashed job from its newest checkpoint."""
    node.jobs.own(job, principal)
    node.jobs.requeue(job)
    return node.jobs.get(job)


@router.get("/models")
def list_models(node: NodeDep, offset: Offset = 0, limit: Limit = 50) -> dict[str, Any]:
    return node.models.list(offset, limit)


@router.get("/models/{model}")
def show_model(model: str, node: NodeDep) -> dict[str, Any]:
    return node.models.get(model)


@router.post("/models", status_code=201)
def publish(body: PublishRequest, node: NodeDep, principal: Writer) -> dict[str, Any]:
    """Publish a finished job's adapter, owned by the acting account (the job's owner)."""
    who = actor(node, principal, body.as_)
    node.jobs.own(body.job, principal)
    plan = node.models.plan_publish(
        body.job,
        name=body.name,
        price_in=parse_open(body.price_in, field="price_in"),
        price_out=parse_open(body.price_out, field="price_out"),
        owner=who.address,
        attribution_policy=parse_policy(body.attribution, field="attribution"),
    )
    return act(node, who, plan)
