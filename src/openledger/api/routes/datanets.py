"""/datanets: the datanet services as JSON (paginated lists). Reads are public; writes need
a credential with the ``write`` scope and act for its account (see ``http.acting``)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from openledger.datanets.snapshots import EXPORT_FORMATS
from openledger.errors import PaymentRequiredError, ValidationError
from openledger.http.acting import act, actor
from openledger.http.bounds import MAX_INT, AsField, IdField, IdPath, Limit, Name, Offset, Text
from openledger.http.credentials import MaybePrincipal, Writer
from openledger.http.datanets import export_file, price_wei
from openledger.http.deps import NodeDep
from openledger.http.uploads import save_uploads
from openledger.ledger.access import AccessDueError
from openledger.units import parse_open

NOBODY = "0x" + "00" * 20  # a request without a credential: never a contributor or payer

router = APIRouter(prefix="/datanets", tags=["datanets"])


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


class AccessPrices(Signer):
    export: Name | None = Field(
        None, description="OPEN per snapshot export (0: free); omitted: unchanged."
    )
    train: Name | None = Field(
        None, description="OPEN per training job on a snapshot (0: free); omitted: unchanged."
    )


class PayAccess(Signer):
    version: IdField = Field(description="The snapshot version.")
    kind: Annotated[str, Field(max_length=16, description="export or train")]
    base: Annotated[
        str | None,
        Field(
            max_length=1000,
            description="kind train: the job's "
            "base model, checked (with config) before anything is "
            "paid",
        ),
    ] = None
    config: dict[str, Any] = Field(
        default_factory=dict, max_length=64, description="kind train: the job's training keys"
    )


Version = Annotated[
    int | None, Query(ge=1, le=MAX_INT, description="Snapshot version (default: the latest).")
]


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
            node.contributions.plan_contribute,
            datanet,
            paths,
            stake=parse_open(stake, field="stake"),
            contributor=who.address,
            column=column or None,
            display_names=names,
        )
    return await run_in_threadpool(act, node, who, plan)


@router.get("/{datanet}/contributions/{contribution}")
def show_contribution(
    datanet: str,
    contribution: IdPath,
    node: NodeDep,
    principal: MaybePrincipal,
    offset: Offset = 0,
    limit: Limit = 50,
) -> dict[str, Any]:
    """A contribution, its reviews and a page of its records. On a priced datanet the
    records are left out (``records.withheld`` says why and how to read them) unless the
    credential's account may read them: its owner, validators, the contributor, or an
    account that may export a snapshot holding it."""
    account = None if principal is None else principal.address
    return node.reviews.detail_for(
        contribution, account, requester=principal, offset=offset, limit=limit
    )


@router.post("/{datanet}/contributions/{contribution}/reviews")
def review(
    datanet: str, contribution: IdPath, body: Review, node: NodeDep, principal: Writer
) -> dict[str, Any]:
    """Approve or reject, as the acting account (a validator of the datanet)."""
    who = actor(node, principal, body.as_)
    plan = node.reviews.plan_review(
        contribution, validator=who.address, approve=body.approve, reason=body.reason
    )
    return act(node, who, plan)


@router.post("/{datanet}/contributions/{contribution}/withdraw")
def withdraw(
    datanet: str, contribution: IdPath, body: Signer, node: NodeDep, principal: Writer
) -> dict[str, Any]:
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
    datanet: str,
    version: IdPath,
    node: NodeDep,
    principal: MaybePrincipal,
    format: Annotated[
        str, Query(description=f"One of {', '.join(EXPORT_FORMATS)}.", max_length=16)
    ] = "jsonl",
    as_: Annotated[str | None, Query(alias="as", max_length=64)] = None,
) -> FileResponse:
    """The snapshot as a file. A priced snapshot needs the credential (``read`` scope) of an
    account that paid for its export (POST /datanets/{datanet}/access), contributed to it or
    owns the datanet: 402 otherwise, and nothing leaves."""
    account = actor(node, principal, as_).address if principal is not None else NOBODY
    try:
        return export_file(node, datanet, version, format, account)
    except AccessDueError as exc:
        if principal is not None:
            raise
        g = exc.grant
        raise PaymentRequiredError(
            f"{g.datanet}@{g.version} is priced at {g.to_dict()['price_open']} OPEN per "
            "export; only an account that paid for it, contributed to it or owns it exports "
            "it, and this request sends no credential.",
            field="Authorization",
            value=f"{g.datanet}@{g.version}",
            fix=f"send this request with that account's API key (read scope); to pay, "
            f'POST /datanets/{g.datanet}/access {{"version": {g.version}, "kind": "export"}}.',
        ) from exc


@router.get("/{datanet}/access")
def access_prices(
    datanet: str,
    node: NodeDep,
    principal: MaybePrincipal,
    version: Version = None,
    kind: Annotated[
        str | None,
        Query(max_length=16, description="export or train: also quote what `account` pays"),
    ] = None,
    account: Annotated[
        str | None, Query(max_length=64, description="Address (default: the credential's account)")
    ] = None,
) -> dict[str, Any]:
    """A datanet's access prices (per export, per training job) and the bound; with
    ``kind``, what ``account`` pays now for that snapshot (free for its contributors and
    owner, or already paid)."""
    doc = node.access.prices(datanet)
    if kind is not None:
        who = account or (principal.address if principal is not None else None)
        if who is None:
            raise ValidationError(
                "A quote needs the account it is for.",
                field="account",
                fix="pass ?account=0x… or send a credential.",
            )
        doc["quote"] = node.access.quote(datanet, version, kind, node.accounts.resolve(who))
    return doc


@router.put("/{datanet}/access")
def set_access_prices(
    datanet: str, body: AccessPrices, node: NodeDep, principal: Writer
) -> dict[str, Any]:
    """Set a datanet's access prices in OPEN (its owner only; each at most the governable
    max_access_price)."""
    who = actor(node, principal, body.as_)
    plan = node.access.plan_set_prices(
        datanet,
        export=price_wei(body.export, "export"),
        train=price_wei(body.train, "train"),
        owner=who.address,
    )
    return act(node, who, plan)


@router.post("/{datanet}/access", status_code=201)
def pay_access(datanet: str, body: PayAccess, node: NodeDep, principal: Writer) -> dict[str, Any]:
    """Pay the access fee of a snapshot (kind ``export`` or ``train``) from the acting
    account: approve and payAccess, signed by the node for its own accounts or prepared for
    the account's wallet. The fee reaches the snapshot's contributors and stakers at the
    next epoch; the answer is the access record (its ``access`` id). With ``base`` (and
    ``config``) the training job it is for is checked first, so a job that would be refused
    costs nothing."""
    who = actor(node, principal, body.as_)
    training = (body.base, body.config) if body.base is not None else None
    plan = node.access.plan_pay(datanet, body.version, body.kind, who.address, training=training)
    return act(node, who, plan)
