"""Validator review of contributions, and stake withdrawal. The chain decides; the store
mirrors each contribution's on-chain state after every transaction."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from eth_account.signers.local import LocalAccount
from sqlalchemy import update
from sqlalchemy.orm import Session

from openledger.chain.bindings import DatanetRegistry
from openledger.chain.calls import Plan, build, resumable
from openledger.chain.deploy import Contracts
from openledger.chain.tx import TxResult
from openledger.datanets import queries as q
from openledger.datanets.neardup import NearDupRegistry
from openledger.datanets.records import Record
from openledger.errors import AuthError, ConflictError, Requester, ValidationError
from openledger.store.datanet_tables import (
    CONTRIBUTION_STATUSES,
    ContributionRow,
    DatanetRow,
    RecordRow,
    ReviewRow,
)
from openledger.store.db import Database

STATUS = {
    DatanetRegistry.PENDING: "pending",
    DatanetRegistry.APPROVED: "approved",
    DatanetRegistry.REJECTED: "rejected",
}
PREVIEW_RECORDS = 3


def contribution_dict(row: ContributionRow, datanet: str | None = None) -> dict[str, Any]:
    return {
        "id": row.chain_id,
        "datanet": datanet,
        "contributor": row.contributor,
        "status": row.status,
        "record_count": row.record_count,
        "stake": str(row.stake),
        "approvals": row.approvals,
        "rejections": row.rejections,
        "slashed": str(row.slashed),
        "unlock_at": row.unlock_at,
        "withdrawn": row.withdrawn,
        "root": row.root,
        "files": row.files,
        "manifest_sha": row.manifest_sha,
        "signature": row.signature,
        "tx_hash": row.tx_hash,
        "created_at": row.created_at.isoformat(),
        "decided_at": row.decided_at.isoformat() if row.decided_at else None,
    }


@dataclass
class ReviewService:
    db: Database
    contracts: Callable[[], Contracts]
    neardup: NearDupRegistry
    #: why an account may not read a contribution's records (None: it may); the node's
    #: ``AccessService.withheld`` (None here: every account reads every record)
    withheld: Callable[[int, str | None], dict[str, Any] | None] | None = None

    def pending(self, datanet: str | int, offset: int = 0, limit: int = 50) -> dict[str, Any]:
        """Pending contributions of a datanet with previews of their first records."""
        with self.db.session() as s:
            dn = q.get_datanet(s, datanet)
            rows, total = q.list_contributions(
                s, dn.id, status="pending", offset=offset, limit=limit
            )
            items = []
            for row in rows:
                item = contribution_dict(row, dn.name)
                item["previews"] = [
                    {
                        "location": f"{r.source} {r.location}",
                        "kind": r.kind,
                        "text": _preview(r.content),
                    }
                    for r in q.records_of(s, row.id, limit=PREVIEW_RECORDS)
                ]
                item["reviews"] = [_review_dict(v) for v in q.reviews_of(s, row.id)]
                items.append(item)
            return {
                "items": items,
                "total": total,
                "offset": offset,
                "limit": limit,
                "quorum": dn.quorum,
                "validators": dn.validators,
            }

    def queue(self, validator: str) -> dict[str, Any]:
        """The review queue of ``validator``: the pending contributions (the first 100 of
        each) of every datanet it validates, each with what a rejection slashes of its stake
        (``at_risk``, at the protocol's ``slash_bps``), whether ``validator`` reviewed it
        already and its datanet's quorum; and the names of the datanets it validates."""
        slash_bps = self.contracts().params.snapshot().slash_bps
        with self.db.session() as s:
            rows, _ = q.list_datanets(s, 0, q.MAX_PAGE)
            validates = [dn.name for dn in rows if validator in dn.validators]
        items = []
        for name in validates:
            pending = self.pending(name, 0, 100)
            for item in pending["items"]:
                item["at_risk"] = str(slashed(int(item["stake"]), slash_bps))
                item["reviewed"] = any(r["validator"] == validator for r in item["reviews"])
                item["quorum"] = pending["quorum"]
                items.append(item)
        return {"items": items, "slash_bps": slash_bps, "validates": validates}

    def listing(
        self, datanet: str | int, *, status: str | None = None, offset: int = 0, limit: int = 50
    ) -> dict[str, Any]:
        """A page of a datanet's contributions, optionally of one status."""
        if status is not None and status not in CONTRIBUTION_STATUSES:
            raise ValidationError(
                f"Unknown status {status!r}.",
                field="status",
                value=status,
                fix=f"use one of: {', '.join(CONTRIBUTION_STATUSES)}.",
            )
        with self.db.session() as s:
            dn = q.get_datanet(s, datanet)
            rows, total = q.list_contributions(s, dn.id, status=status, offset=offset, limit=limit)
            items = [contribution_dict(r, dn.name) for r in rows]
        return {"items": items, "total": total, "offset": offset, "limit": limit}

    def detail(self, contribution_id: int, *, offset: int = 0, limit: int = 50) -> dict[str, Any]:
        """One contribution with its reviews and a page of its records."""
        offset, limit = q.page_bounds(offset, limit)
        with self.db.session() as s:
            row = q.get_contribution(s, contribution_id)
            dn = s.get(DatanetRow, row.datanet_id)
            assert dn is not None  # foreign key
            records = q.records_of(s, row.id, limit=limit, offset=offset)
            return {
                **contribution_dict(row, dn.name),
                "reviews": [_review_dict(v) for v in q.reviews_of(s, row.id)],
                "records": {
                    "items": [
                        {
                            "position": r.position,
                            "sha256": r.sha256,
                            "kind": r.kind,
                            "location": f"{r.source} {r.location}",
                            "content": json.loads(r.content),
                        }
                        for r in records
                    ],
                    "total": row.record_count,
                    "offset": offset,
                    "limit": limit,
                },
            }

    def detail_for(
        self,
        contribution_id: int,
        account: str | None,
        *,
        requester: Requester | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> dict[str, Any]:
        """:meth:`detail` as ``account`` may read it (None: a request without a credential):
        on a priced datanet the records are left out for an account that may not read them,
        and ``records.withheld`` says why and how to. A ``requester`` who speaks for the node
        (the operator: ``requester.owns(None)``) reads them all."""
        doc = self.detail(contribution_id, offset=offset, limit=limit)
        everyone = requester is not None and requester.owns(None)
        withheld = (
            None if everyone or self.withheld is None else self.withheld(contribution_id, account)
        )
        if withheld is not None:
            doc["records"] = {**doc["records"], "items": [], "withheld": withheld}
        return doc

    def review(
        self, contribution_id: int, *, signer: LocalAccount, approve: bool, reason: str = ""
    ) -> dict[str, Any]:
        plan = self.plan_review(
            contribution_id, validator=signer.address, approve=approve, reason=reason
        )
        return plan.run(signer)

    def plan_review(
        self, contribution_id: int, *, validator: str, approve: bool, reason: str = ""
    ) -> Plan:
        """The checks, then ``review(id, approve)``; the review row is written once mined."""
        reason = reason.strip()
        if not approve and not reason:
            raise ValidationError(
                "A rejection needs a reason.",
                field="reason",
                fix="give a reason, so the contributor learns why the stake was slashed.",
            )
        with self.db.session() as s:
            row = q.get_contribution(s, contribution_id)
            dn = s.get(DatanetRow, row.datanet_id)
            assert dn is not None  # foreign key
            if validator not in dn.validators:
                raise AuthError(
                    f"{validator} is not a validator of datanet {dn.name!r}.",
                    field="account",
                    value=validator,
                    fix=f"review as one of: {', '.join(dn.validators)}.",
                )
            if row.status != "pending":
                raise ConflictError(
                    f"Contribution #{contribution_id} is already {row.status}.",
                    field="contribution",
                    value=contribution_id,
                    fix="only pending contributions can be reviewed.",
                )
            if any(v.validator == validator for v in q.reviews_of(s, row.id)):
                raise ConflictError(
                    f"{validator} already reviewed contribution #{contribution_id}.",
                    field="contribution",
                    value=contribution_id,
                    fix="each validator reviews a contribution once.",
                )
        contracts = self.contracts()

        args = {
            "contribution_id": contribution_id,
            "validator": validator,
            "approve": approve,
            "reason": reason,
        }
        finish, resume = resumable("reviews.finish_review", self.finish_review, args)
        call = build(contracts.datanets, "review", contribution_id, approve)
        verdict = "approve" if approve else "reject"
        return Plan(
            contracts.client,
            validator,
            [call],
            finish,
            resume=resume,
            what=f"{verdict} contribution #{contribution_id}",
        )

    def finish_review(
        self,
        args: dict[str, Any],
        _payload: bytes | None,
        results: list[TxResult],
        _sig: str | None,
    ) -> dict[str, Any]:
        """The review row, and the contribution mirrored from the chain (decided or not)."""
        contracts = self.contracts()
        with self.db.session() as s:
            row = q.get_contribution(s, args["contribution_id"])
            s.add(
                ReviewRow(
                    contribution_id=row.id,
                    validator=args["validator"],
                    approve=args["approve"],
                    reason=args["reason"],
                    tx_hash=results[-1].tx_hash,
                )
            )
            removed = self._mirror(s, row, contracts)
            out = contribution_dict(row, s.get(DatanetRow, row.datanet_id).name)
            datanet_id = row.datanet_id
        self._forget(datanet_id, removed)
        return out

    def withdraw(self, contribution_id: int, *, signer: LocalAccount) -> dict[str, Any]:
        return self.plan_withdraw(contribution_id, contributor=signer.address).run(signer)

    def plan_withdraw(self, contribution_id: int, *, contributor: str) -> Plan:
        """The checks, then ``withdrawStake(id)``; the row mirrors the chain once mined."""
        contracts = self.contracts()
        with self.db.session() as s:
            row = q.get_contribution(s, contribution_id)
            if row.contributor != contributor:
                raise AuthError(
                    f"Contribution #{contribution_id} belongs to {row.contributor}.",
                    field="account",
                    value=contributor,
                    fix="withdraw as the contributor.",
                )
            if row.withdrawn:
                raise ConflictError(
                    f"The stake of contribution #{contribution_id} was already withdrawn.",
                    field="contribution",
                    value=contribution_id,
                    fix="nothing to do.",
                )
            if row.status == "pending":
                raise ConflictError(
                    f"Contribution #{contribution_id} is still pending review.",
                    field="contribution",
                    value=contribution_id,
                    fix="wait for the validators' decision.",
                )
            now = contracts.client.timestamp()
            if row.status == "approved" and now < row.unlock_at:
                when = datetime.fromtimestamp(row.unlock_at, UTC).isoformat()
                raise ConflictError(
                    f"The stake of contribution #{contribution_id} is locked until {when} "
                    f"({row.unlock_at - now} s from now).",
                    field="contribution",
                    value=contribution_id,
                    fix="withdraw after the unlock time.",
                )
            amount = row.stake - row.slashed

        args = {"contribution_id": contribution_id, "amount": amount}
        finish, resume = resumable("reviews.finish_withdraw", self.finish_withdraw, args)
        return Plan(
            contracts.client,
            contributor,
            [build(contracts.datanets, "withdrawStake", contribution_id)],
            finish,
            what=f"take back the stake of contribution #{contribution_id}",
            resume=resume,
        )

    def finish_withdraw(
        self,
        args: dict[str, Any],
        _payload: bytes | None,
        results: list[TxResult],
        _sig: str | None,
    ) -> dict[str, Any]:
        contracts = self.contracts()
        with self.db.session() as s:
            row = q.get_contribution(s, args["contribution_id"])
            self._mirror(s, row, contracts)
            name = s.get(DatanetRow, row.datanet_id).name
            return {
                **contribution_dict(row, name),
                "amount": str(args["amount"]),
                "withdraw_tx": results[-1].tx_hash,
            }

    def refresh(self, contribution_id: int) -> dict[str, Any]:
        """Re-read a contribution's state from the chain (decisions made elsewhere)."""
        contracts = self.contracts()
        with self.db.session() as s:
            row = q.get_contribution(s, contribution_id)
            removed = self._mirror(s, row, contracts)
            out = contribution_dict(row, s.get(DatanetRow, row.datanet_id).name)
            datanet_id = row.datanet_id
        self._forget(datanet_id, removed)
        return out

    def _forget(self, datanet_id: int, record_ids: list[int]) -> None:
        """Rejected records stop counting as near duplicates."""
        if record_ids:
            index = self.neardup.index_for(datanet_id)
            index.remove(np.array(record_ids, dtype=np.int64))
            index.commit()

    def _mirror(self, s: Session, row: ContributionRow, contracts: Contracts) -> list[int]:
        """Copy the on-chain state into ``row``; returns record ids that stop counting for
        dedup because the contribution was rejected."""
        c = contracts.datanets.contribution(row.chain_id)
        was = row.status
        row.status = STATUS[c.status]
        row.approvals, row.rejections = c.approvals, c.rejections
        row.slashed, row.unlock_at, row.withdrawn = c.slashed, c.unlock_at, c.withdrawn
        if c.decided_at and row.decided_at is None:
            row.decided_at = datetime.fromtimestamp(c.decided_at, UTC)
        if row.status == "rejected" and was != "rejected":
            ids = [r.id for r in q.records_of(s, row.id)]
            s.execute(
                update(RecordRow).where(RecordRow.contribution_id == row.id).values(dedup_key=None)
            )
            return ids
        return []


def slashed(stake: int, slash_bps: int) -> int:
    """What a rejection slashes of ``stake`` at ``slash_bps`` (basis points, rounded down as
    DatanetRegistry does)."""
    return stake * slash_bps // 10_000


def _preview(content: str, n: int = 160) -> str:
    return Record.from_canonical(json.loads(content), source="", location="").preview(n)


def _review_dict(v: ReviewRow) -> dict[str, Any]:
    return {
        "validator": v.validator,
        "approve": v.approve,
        "reason": v.reason,
        "tx_hash": v.tx_hash,
        "created_at": v.created_at.isoformat(),
    }
