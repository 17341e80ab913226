"""Creating and listing datanets (on chain and in the store)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from openledger.chain.addr import is_address, to_checksum_address
from openledger.chain.calls import Plan, build, resumable
from openledger.datanets import queries as q
from openledger.errors import ConflictError, ValidationError
from openledger.store.blobs import BlobStore
from openledger.store.datanet_tables import (
    CONTRIBUTION_STATUSES,
    ContributionRow,
    DatanetRow,
    RecordRow,
)
from openledger.store.db import Database

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from openledger.chain.deploy import Contracts
    from openledger.chain.tx import TxResult

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{1,62}$")
MAX_VALIDATORS = 32


def datanet_dict(row: DatanetRow) -> dict[str, Any]:
    return {
        "id": row.chain_id,
        "name": row.name,
        "description": row.description,
        "owner": row.owner,
        "validators": list(row.validators),
        "quorum": row.quorum,
        "min_stake": str(row.min_stake),
        "metadata_uri": row.metadata_uri,
        "tx_hash": row.tx_hash,
        "created_at": row.created_at.isoformat(),
    }


def check_validators(validators: list[str], quorum: int) -> list[str]:
    out: list[str] = []
    for v in validators:
        if not is_address(v):
            raise ValidationError(
                f"Validator {v!r} is not an address.",
                field="validators",
                value=v,
                fix="give 0x-prefixed 20-byte addresses (or node account names in the CLI).",
            )
        addr = to_checksum_address(v)
        if addr in out:
            raise ValidationError(
                f"Validator {addr} is listed twice.",
                field="validators",
                value=addr,
                fix="list each validator once.",
            )
        out.append(addr)
    if not 1 <= len(out) <= MAX_VALIDATORS:
        raise ValidationError(
            f"A datanet needs 1 to {MAX_VALIDATORS} validators, got {len(out)}.",
            field="validators",
            value=len(out),
            fix=f"name 1 to {MAX_VALIDATORS} validators (addresses).",
        )
    if not 1 <= quorum <= len(out):
        raise ValidationError(
            f"Quorum {quorum} must be between 1 and the number of validators ({len(out)}).",
            field="quorum",
            value=quorum,
            fix=f"use a quorum of 1 to {len(out)}.",
        )
    return out


@dataclass
class DatanetService:
    db: Database
    blobs: BlobStore
    contracts: Callable[[], Contracts]

    def create(
        self,
        name: str,
        *,
        description: str,
        validators: list[str],
        quorum: int,
        min_stake: int,
        signer: LocalAccount,
    ) -> dict[str, Any]:
        plan = self.plan_create(
            name,
            description=description,
            validators=validators,
            quorum=quorum,
            min_stake=min_stake,
            owner=signer.address,
        )
        return plan.run(signer)

    def plan_create(
        self,
        name: str,
        *,
        description: str,
        validators: list[str],
        quorum: int,
        min_stake: int,
        owner: str,
    ) -> Plan:
        """The checks and ``createDatanet``; the metadata blob and row are written once mined."""
        if not NAME_RE.match(name):
            raise ValidationError(
                f"Datanet name {name!r} is not allowed.",
                field="name",
                value=name,
                fix="use 2-63 lower-case letters, digits, '-' or '_', starting with a letter "
                "or digit.",
            )
        if min_stake < 0:
            raise ValidationError(
                "min_stake is negative.", field="min_stake", value=min_stake, fix="use 0 or more."
            )
        checked = check_validators(validators, quorum)
        with self.db.session() as s:
            if s.scalar(select(DatanetRow).where(DatanetRow.name == name)) is not None:
                raise ConflictError(
                    f"A datanet named {name!r} already exists.",
                    field="name",
                    value=name,
                    fix="choose another name, or contribute to the existing one.",
                )
        meta = json.dumps({"name": name, "description": description}, sort_keys=True).encode()
        uri = f"blob:{hashlib.sha256(meta).hexdigest()}"
        registry = self.contracts().datanets
        args = {
            "name": name,
            "description": description,
            "owner": owner,
            "validators": checked,
            "quorum": quorum,
            "min_stake": min_stake,
            "uri": uri,
        }
        finish, resume = resumable("datanets.finish_create", self.finish_create, args)
        call = build(
            registry,
            "createDatanet",
            uri,
            [to_checksum_address(v) for v in checked],
            quorum,
            min_stake,
        )
        return Plan(
            registry.client, owner, [call], finish, what=f"create datanet {name!r}", resume=resume
        )

    def finish_create(
        self,
        args: dict[str, Any],
        _payload: bytes | None,
        results: list[TxResult],
        _sig: str | None,
    ) -> dict[str, Any]:
        """The off-chain side of a mined ``createDatanet``: the metadata blob and the row."""
        registry = self.contracts().datanets
        chain_id = int(registry.events(results[-1], "DatanetCreated")[0]["datanet_id"])
        meta = {"name": args["name"], "description": args["description"]}
        self.blobs.put(json.dumps(meta, sort_keys=True).encode())
        with self.db.session() as s:
            row = DatanetRow(
                chain_id=chain_id,
                name=args["name"],
                description=args["description"],
                owner=args["owner"],
                validators=args["validators"],
                quorum=args["quorum"],
                min_stake=args["min_stake"],
                metadata_uri=args["uri"],
                tx_hash=results[-1].tx_hash,
            )
            s.add(row)
            s.flush()
            return datanet_dict(row)

    def list(self, offset: int = 0, limit: int = 50) -> dict[str, Any]:
        with self.db.session() as s:
            rows, total = q.list_datanets(s, offset, limit)
            return {
                "items": [datanet_dict(r) for r in rows],
                "total": total,
                "offset": offset,
                "limit": limit,
            }

    def show(self, ref: str | int) -> dict[str, Any]:
        with self.db.session() as s:
            row = q.get_datanet(s, ref)
            counts = dict(
                s.execute(
                    select(ContributionRow.status, func.count())
                    .where(ContributionRow.datanet_id == row.id)
                    .group_by(ContributionRow.status)
                ).all()
            )
            records = s.scalar(
                select(func.count())
                .select_from(RecordRow)
                .join(ContributionRow, RecordRow.contribution_id == ContributionRow.id)
                .where(RecordRow.datanet_id == row.id, ContributionRow.status == "approved")
            )
            contributors = s.scalar(
                select(func.count(func.distinct(ContributionRow.contributor))).where(
                    ContributionRow.datanet_id == row.id
                )
            )
            snaps = q.list_snapshots(s, row.id)
            return {
                **datanet_dict(row),
                "contributions": {st: int(counts.get(st, 0)) for st in CONTRIBUTION_STATUSES},
                "approved_records": int(records or 0),
                "contributors": int(contributors or 0),
                "snapshots": [
                    {
                        "version": sn.version,
                        "root": sn.root,
                        "records": sn.record_count,
                        "created_at": sn.created_at.isoformat(),
                    }
                    for sn in snaps
                ],
            }
