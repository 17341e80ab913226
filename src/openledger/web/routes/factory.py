"""/web/api for the Model Factory: the bases to offer, training jobs, publishing."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from openledger.attribution.policy import parse_policy
from openledger.http.bounds import IdField, IdPath, Name
from openledger.http.deps import NodeDep
from openledger.units import parse_open
from openledger.web.auth import SessionDep
from openledger.web.wallet import OwnAccount, Writer, WriterDep

router = APIRouter(prefix="/web/api", tags=["web"], dependencies=OwnAccount)


class TrainBody(BaseModel):
    datanet: Name
    base: Annotated[str, Field(max_length=1000)]
    config: dict[str, Any] = Field(default_factory=dict, max_length=64)
    access: IdField | None = None  # the paid training access of a priced snapshot


class PayBody(BaseModel):
    version: IdField
    kind: Annotated[str, Field(max_length=16)] = "train"
    # the training job it pays for: checked first, so a job that would be refused costs nothing
    base: Annotated[str | None, Field(max_length=1000)] = None
    config: dict[str, Any] = Field(default_factory=dict, max_length=64)


class PublishBody(BaseModel):
    job: IdField
    name: Name
    price_in: Name = "0.001"
    price_out: Name = "0.002"
    attribution: Name = "gradient"


@router.get("/bases")
def bases(node: NodeDep) -> dict[str, Any]:
    """Base models to offer: the node's tiny base if built, and those of published models."""
    return {"items": node.models.bases()}


@router.post("/jobs", status_code=201)
def train(body: TrainBody, node: NodeDep, session: SessionDep) -> dict[str, Any]:
    """Queue a training job (the node's worker runs it); a priced snapshot needs the signed-in
    account's paid training access (``POST /web/api/datanets/{datanet}/access`` first),
    unless it contributed to the snapshot or owns the datanet."""
    return node.jobs.submit_train(
        body.datanet, body.base, body.config, owner=session.address, access=body.access
    )


@router.post("/datanets/{datanet}/access", status_code=201)
def pay_access(datanet: str, body: PayBody, node: NodeDep, writer: WriterDep) -> dict[str, Any]:
    """Pay a snapshot's access fee from the signed-in account (the node signs for a dev
    account; a wallet sends approve and payAccess itself). With ``base`` (and ``config``)
    the training job it is for is checked before anything is paid."""
    training = (body.base, body.config) if body.base is not None else None
    plan = node.access.plan_pay(datanet, body.version, body.kind, writer.address, training=training)
    return writer.act(plan)


def own_job(writer: Writer, job: int) -> None:
    """The signed-in account may act on jobs it queued, and a dev account on the devnet on
    the node's own jobs (as the demo's are); anything else is a 403."""
    writer.node.jobs.own(job, writer.principal, nodes_own=writer.dev_name is not None)


@router.post("/jobs/{job}/cancel")
def cancel(job: IdPath, node: NodeDep, writer: WriterDep) -> dict[str, Any]:
    """Ask a job the signed-in account queued to stop at its next check."""
    own_job(writer, job)
    return node.jobs.cancel(job)


@router.post("/jobs/{job}/resume", status_code=202)
def resume(job: IdPath, node: NodeDep, writer: WriterDep) -> dict[str, Any]:
    """Queue a failed, cancelled or crashed job of the signed-in account again (it resumes
    from its newest checkpoint)."""
    own_job(writer, job)
    node.jobs.requeue(job)
    return node.jobs.get(job)


@router.post("/models", status_code=201)
def publish(body: PublishBody, node: NodeDep, writer: WriterDep) -> dict[str, Any]:
    """Publish a job the signed-in account queued (or, on the devnet, one of the node's own
    jobs, as the demo's are) as a model it owns."""
    node.jobs.own(body.job, writer.principal, nodes_own=True, what="publish")
    plan = node.models.plan_publish(
        body.job,
        name=body.name,
        price_in=parse_open(body.price_in, field="price_in"),
        price_out=parse_open(body.price_out, field="price_out"),
        owner=writer.address,
        attribution_policy=parse_policy(body.attribution, field="attribution"),
    )
    return writer.act(plan)
