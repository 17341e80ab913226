"""/jobs and /models: the Model Factory as JSON. Training runs in its own process."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from openledger.api.deps import NodeDep
from openledger.attribution.policy import parse_policy
from openledger.errors import NotFoundError
from openledger.units import parse_open

router = APIRouter(tags=["factory"])
Offset = Annotated[int, Query(ge=0)]
Limit = Annotated[int, Query(ge=1, le=500)]


class TrainRequest(BaseModel):
    datanet: str = Field(description="DATANET or DATANET@VERSION")
    base: str = Field(description="Local Hugging Face directory or hub id")
    config: dict[str, Any] = Field(
        default_factory=dict, description="Training keys (method, rank, …)"
    )


class PublishRequest(BaseModel):
    job: int
    name: str
    price_in: str = Field("0.001", description="OPEN per 1,000 prompt tokens")
    price_out: str = Field("0.002", description="OPEN per 1,000 completion tokens")
    as_: str = Field(alias="as", description="Node-held owner account")
    attribution: str = Field(
        "gradient", description="gradient, spans, rag or a mix, e.g. gradient:0.7,spans:0.3"
    )


@router.post("/jobs", status_code=201)
def submit(body: TrainRequest, node: NodeDep) -> dict[str, Any]:
    """Queue a training job; the node's worker runs it (watch it under /jobs/{id})."""
    return node.jobs.submit_train(body.datanet, body.base, body.config)


@router.get("/jobs")
def list_jobs(node: NodeDep, status: str | None = None, offset: Offset = 0,
              limit: Limit = 50) -> dict[str, Any]:  # fmt: skip
    return node.jobs.list(status=status, offset=offset, limit=limit)


@router.get("/jobs/{job}")
def show_job(job: int, node: NodeDep) -> dict[str, Any]:
    return node.jobs.get(job)


@router.get("/jobs/{job}/metrics")
def job_metrics(job: int, node: NodeDep) -> dict[str, Any]:
    return {"items": node.jobs.metrics(job)}


@router.get("/jobs/{job}/loss.png")
def loss_curve(job: int, node: NodeDep) -> FileResponse:
    path = node.jobs.get(job)["loss_curve"]
    if not path:
        raise NotFoundError(f"Job {job} has no loss curve yet.", field="job", value=job,
                            fix="it is drawn at the first evaluation.")  # fmt: skip
    return FileResponse(Path(path), media_type="image/png")


@router.post("/jobs/{job}/cancel")
def cancel(job: int, node: NodeDep) -> dict[str, Any]:
    return node.jobs.cancel(job)


@router.post("/jobs/{job}/resume", status_code=202)
def resume(job: int, node: NodeDep) -> dict[str, Any]:
    """Resume a failed, cancelled or crashed job from its newest checkpoint."""
    node.jobs.requeue(job)
    return node.jobs.get(job)


@router.get("/models")
def list_models(node: NodeDep, offset: Offset = 0, limit: Limit = 50) -> dict[str, Any]:
    return node.models.list(offset, limit)


@router.get("/models/{model}")
def show_model(model: str, node: NodeDep) -> dict[str, Any]:
    return node.models.get(model)


@router.post("/models", status_code=201)
def publish(body: PublishRequest, node: NodeDep) -> dict[str, Any]:
    return node.models.publish(
        body.job, name=body.name, price_in=parse_open(body.price_in, field="price_in"),
        price_out=parse_open(body.price_out, field="price_out"),
        signer=node.accounts.signer(body.as_),
        attribution_policy=parse_policy(body.attribution, field="attribution"),
    )  # fmt: skip
