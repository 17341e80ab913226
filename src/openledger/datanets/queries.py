"""Data access for datanets: every query of the datanet tables lives here."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from openledger.errors import NotFoundError, ValidationError
from openledger.store.datanet_tables import (
    ContributionRow,
    DatanetRow,
    RecordRow,
    ReviewRow,
    SnapshotRow,
)
from openledger.store.models import digits_id

MAX_PAGE = 500


def page_bounds(offset: int, limit: int) -> tuple[int, int]:
    if offset < 0:
        raise ValidationError(
            f"offset {offset} is negative.", field="offset", value=offset, fix="use 0 or more."
        )
    if not 1 <= limit <= MAX_PAGE:
        raise ValidationError(
            f"limit {limit} is out of range.",
            field="limit",
            value=limit,
            fix=f"use a page size from 1 to {MAX_PAGE}.",
        )
    return offset, limit


def get_datanet(s: Session, ref: str | int) -> DatanetRow:
    """A datanet by name, or by its on-chain id (an int or a string of digits)."""
    row = s.scalar(select(DatanetRow).where(DatanetRow.name == str(ref)))
    if row is None and (chain_id := digits_id(ref)) is not None:
        row = s.scalar(select(DatanetRow).where(DatanetRow.chain_id == chain_id))
    if row is None:
        raise NotFoundError(
            f"No datanet named {ref!r}.",
            field="datanet",
            value=str(ref),
            fix="name one of this node's datanets, or create it first.",
        )
    return row


def list_datanets(s: Session, offset: int = 0, limit: int = 50) -> tuple[list[DatanetRow], int]:
    offset, limit = page_bounds(offset, limit)
    total = s.scalar(select(func.count()).select_from(DatanetRow)) or 0
    rows = s.scalars(select(DatanetRow).order_by(DatanetRow.id).offset(offset).limit(limit))
    return list(rows), total


def get_contribution(s: Session, chain_id: int) -> ContributionRow:
    row = s.scalar(select(ContributionRow).where(ContributionRow.chain_id == chain_id))
    if row is None:
        raise NotFoundError(
            f"No contribution #{chain_id}.",
            field="contribution",
            value=chain_id,
            fix="see the datanet's contributions for their numbers.",
        )
    return row


def list_contributions(
    s: Session, datanet_id: int, *, status: str | None = None, offset: int = 0, limit: int = 50
) -> tuple[list[ContributionRow], int]:
    offset, limit = page_bounds(offset, limit)
    where = [ContributionRow.datanet_id == datanet_id]
    if status is not None:
        where.append(ContributionRow.status == status)
    total = s.scalar(select(func.count()).select_from(ContributionRow).where(*where)) or 0
    rows = s.scalars(
        select(ContributionRow)
        .where(*where)
        .order_by(ContributionRow.chain_id)
        .offset(offset)
        .limit(limit)
    )
    return list(rows), total


def files_since(s: Session, contributor: str, since: datetime) -> int:
    """How many files ``contributor`` uploaded (in accepted contributions) since ``since``."""
    total = s.scalar(
        select(func.coalesce(func.sum(ContributionRow.file_count), 0)).where(
            ContributionRow.contributor == contributor, ContributionRow.created_at >= since
        )
    )
    return int(total or 0)


def existing_hashes(s: Session, datanet_id: int, hashes: Iterable[str]) -> dict[str, int]:
    """Of ``hashes``, those already live in the datanet -> their contribution's chain id."""
    found: dict[str, int] = {}
    chunk: list[str] = []

    def flush() -> None:
        rows = s.execute(
            select(RecordRow.dedup_key, ContributionRow.chain_id)
            .join(ContributionRow, RecordRow.contribution_id == ContributionRow.id)
            .where(RecordRow.datanet_id == datanet_id, RecordRow.dedup_key.in_(chunk))
        )
        found.update({k: c for k, c in rows})
        chunk.clear()

    for h in hashes:
        chunk.append(h)
        if len(chunk) == 500:
            flush()
    if chunk:
        flush()
    return found


def contribution_of_records(s: Session, record_ids: Iterable[int]) -> dict[int, tuple[int, str]]:
    """record id -> (contribution chain id, record location) for naming a near duplicate."""
    ids = list(record_ids)
    if not ids:
        return {}
    rows = s.execute(
        select(RecordRow.id, ContributionRow.chain_id, RecordRow.source, RecordRow.location)
        .join(ContributionRow, RecordRow.contribution_id == ContributionRow.id)
        .where(RecordRow.id.in_(ids))
    )
    return {rid: (cid, f"{src} {loc}") for rid, cid, src, loc in rows}


def live_records(s: Session, datanet_id: int) -> list[tuple[int, str]]:
    """(record id, canonical content) of every record that still counts for dedup."""
    rows = s.execute(
        select(RecordRow.id, RecordRow.content)
        .where(RecordRow.datanet_id == datanet_id, RecordRow.dedup_key.is_not(None))
        .order_by(RecordRow.id)
    )
    return [(rid, content) for rid, content in rows]


def approved_records(s: Session, datanet_id: int) -> list[tuple[RecordRow, ContributionRow]]:
    rows = s.execute(
        select(RecordRow, ContributionRow)
        .join(ContributionRow, RecordRow.contribution_id == ContributionRow.id)
        .where(RecordRow.datanet_id == datanet_id, ContributionRow.status == "approved")
        .order_by(ContributionRow.chain_id, RecordRow.position)
    )
    return [(r, c) for r, c in rows]


def records_of(
    s: Session, contribution_id: int, limit: int | None = None, offset: int = 0
) -> list[RecordRow]:
    q = select(RecordRow).where(RecordRow.contribution_id == contribution_id)
    q = q.order_by(RecordRow.position).offset(offset)
    if limit is not None:
        q = q.limit(limit)
    return list(s.scalars(q))


def reviews_of(s: Session, contribution_id: int) -> list[ReviewRow]:
    q = select(ReviewRow).where(ReviewRow.contribution_id == contribution_id)
    return list(s.scalars(q.order_by(ReviewRow.id)))


def latest_snapshot(s: Session, datanet_id: int) -> SnapshotRow | None:
    return s.scalar(
        select(SnapshotRow)
        .where(SnapshotRow.datanet_id == datanet_id)
        .order_by(SnapshotRow.version.desc())
        .limit(1)
    )


def get_snapshot(s: Session, datanet: DatanetRow, version: int | None) -> SnapshotRow:
    if version is None:
        row = latest_snapshot(s, datanet.id)
    else:
        row = s.scalar(
            select(SnapshotRow).where(
                SnapshotRow.datanet_id == datanet.id, SnapshotRow.version == version
            )
        )
    if row is None:
        which = "any snapshot" if version is None else f"snapshot version {version}"
        raise NotFoundError(
            f"Datanet {datanet.name!r} has no {which}.",
            field="version",
            value=version,
            fix="ask the datanet's owner to take a snapshot of its approved records.",
        )
    return row


def list_snapshots(s: Session, datanet_id: int) -> list[SnapshotRow]:
    q = select(SnapshotRow).where(SnapshotRow.datanet_id == datanet_id)
    return list(s.scalars(q.order_by(SnapshotRow.version)))
