"""Snapshots: approved records frozen into a versioned Parquet file plus a manifest
(record -> contribution -> contributor), its Merkle root committed on chain; and exports
that Hugging Face ``datasets`` loads."""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from eth_account.signers.local import LocalAccount

from openledger.chain.calls import Plan, build, pack, resumable, unpack
from openledger.chain.deploy import Contracts
from openledger.chain.merkle import SimpleMerkleTree
from openledger.chain.tx import TxResult
from openledger.datanets import queries as q
from openledger.datanets.formats import EXPORT_FORMATS
from openledger.datanets.manifest import canonical_bytes
from openledger.errors import AuthError, ConflictError, ValidationError
from openledger.store.blobs import BlobStore
from openledger.store.datanet_tables import SnapshotRow
from openledger.store.db import Database
from openledger.store.models import digits_id

MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])
SCHEMA = pa.schema(
    [
        ("record", pa.int64()),
        ("sha256", pa.string()),
        ("kind", pa.string()),
        ("text", pa.string()),
        ("prompt", pa.string()),
        ("completion", pa.string()),
        ("messages", pa.list_(MESSAGE)),
        ("contribution", pa.int64()),
        ("contributor", pa.string()),
    ]
)


def snapshot_dict(row: SnapshotRow, datanet: str) -> dict[str, Any]:
    return {
        "datanet": datanet,
        "version": row.version,
        "root": row.root,
        "record_count": row.record_count,
        "contributions": list(row.contribution_ids),
        "parquet_sha": row.parquet_sha,
        "manifest_sha": row.manifest_sha,
        "tx_hash": row.tx_hash,
        "created_at": row.created_at.isoformat(),
    }


def parse_ref(ref: str) -> tuple[str, int | None]:
    """'name@3' -> ('name', 3); 'name' -> ('name', None) meaning the latest version."""
    name, _, version = ref.partition("@")
    if not version:
        return name, None
    if not (number := digits_id(version)):
        raise ValidationError(
            f"Snapshot version {version!r} in {ref!r} is not a positive number.",
            field="version",
            value=version,
            fix="write DATANET@VERSION, e.g. medical-qa@2, or omit @VERSION for the latest.",
        )
    return name, number


def _table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def _parquet_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


@dataclass
class SnapshotService:
    db: Database
    blobs: BlobStore
    contracts: Callable[[], Contracts]
    #: the node's admission of exports of priced snapshots (``ledger.access``, wired by
    #: ``node.py``): ``(datanet, version, account) -> grant``, a 402 when the account must
    #: pay first
    admit: Callable[[str, int, str | None], Any] | None = None

    def build(self, datanet: str | int) -> tuple[list[dict[str, Any]], bytes, list[int]]:
        """The snapshot's rows (in contribution then record order), its Merkle root and the
        contributions it includes. Pure function of the approved records."""
        with self.db.session() as s:
            dn = q.get_datanet(s, datanet)
            pairs = q.approved_records(s, dn.id)
            rows: list[dict[str, Any]] = []
            for i, (rec, con) in enumerate(pairs):
                content = json.loads(rec.content)
                messages = content.get("messages")
                rows.append(
                    {
                        "record": i,
                        "sha256": rec.sha256,
                        "kind": rec.kind,
                        "text": content.get("text"),
                        "prompt": content.get("prompt"),
                        "completion": content.get("completion"),
                        "messages": [
                            {"role": m[0], "content": m[1]} if isinstance(m, list | tuple) else m
                            for m in messages
                        ]
                        if messages
                        else None,
                        "contribution": con.chain_id,
                        "contributor": con.contributor,
                    }
                )
            contributions = sorted({con.chain_id for _, con in pairs})
        if not rows:
            raise ValidationError(
                f"Datanet {dn.name!r} has no approved records to freeze.",
                field="datanet",
                value=dn.name,
                fix="wait until validators approve contributions.",
            )
        root = SimpleMerkleTree.from_leaves([bytes.fromhex(r["sha256"]) for r in rows]).root
        return rows, root, contributions

    def snapshot(self, datanet: str | int, *, signer: LocalAccount) -> dict[str, Any]:
        return self.plan_snapshot(datanet, sender=signer.address).run(signer)

    def plan_snapshot(self, datanet: str | int, *, sender: str) -> Plan:
        """The checks and ``commitSnapshot`` (by the owner); the blobs and the row are
        written once mined."""
        rows, root, contributions = self.build(datanet)
        contracts = self.contracts()
        with self.db.session() as s:
            dn = q.get_datanet(s, datanet)
            name, dn_chain, owner, dn_id = dn.name, dn.chain_id, dn.owner, dn.id
            last = q.latest_snapshot(s, dn.id)
            if last is not None and list(last.contribution_ids) == contributions:
                raise ConflictError(
                    f"Nothing new since snapshot {name}@{last.version}: the same "
                    f"{len(contributions)} approved contribution(s).",
                    field="datanet",
                    value=name,
                    fix=f"train on {name}@{last.version}, or wait for new approvals.",
                )
        if sender != owner:
            raise AuthError(
                f"Only the datanet's owner {owner} can commit its snapshots.",
                field="account",
                value=sender,
                fix="take the snapshot as the datanet's owner.",
            )
        parquet = _parquet_bytes(_table(rows))
        parquet_sha = hashlib.sha256(parquet).hexdigest()
        manifest = {
            "type": "openledger.snapshot",
            "datanet": {"id": dn_chain, "name": name},
            "root": "0x" + root.hex(),
            "record_count": len(rows),
            "parquet_sha256": parquet_sha,
            "contributions": contributions,
            "records": [[r["sha256"], r["contribution"], r["contributor"]] for r in rows],
        }
        manifest_bytes = canonical_bytes(manifest)
        manifest_sha = hashlib.sha256(manifest_bytes).hexdigest()
        registry = contracts.datanets

        args = {
            "dn_id": dn_id,
            "name": name,
            "root": "0x" + root.hex(),
            "record_count": len(rows),
            "contributions": contributions,
            "parquet_sha": parquet_sha,
            "manifest_sha": manifest_sha,
        }
        finish, resume = resumable(
            "snapshots.finish_snapshot", self.finish_snapshot, args, pack([parquet, manifest_bytes])
        )
        call = build(registry, "commitSnapshot", dn_chain, root, len(rows), f"blob:{manifest_sha}")
        return Plan(
            contracts.client,
            sender,
            [call],
            finish,
            resume=resume,
            what=f"freeze snapshot of {name!r} ({len(rows)} records)",
        )

    def finish_snapshot(
        self, args: dict[str, Any], payload: bytes | None, results: list[TxResult], _sig: str | None
    ) -> dict[str, Any]:
        """The Parquet and manifest blobs and the snapshot row, once the commit is mined."""
        registry = self.contracts().datanets
        version = int(registry.events(results[-1], "SnapshotCommitted")[0]["version"])
        for blob in unpack(payload):
            self.blobs.put(blob)
        with self.db.session() as s:
            row = SnapshotRow(
                datanet_id=args["dn_id"],
                version=version,
                root=args["root"],
                record_count=args["record_count"],
                contribution_ids=args["contributions"],
                parquet_sha=args["parquet_sha"],
                manifest_sha=args["manifest_sha"],
                tx_hash=results[-1].tx_hash,
            )
            s.add(row)
            s.flush()
            return snapshot_dict(row, args["name"])

    def list(self, datanet: str | int) -> list[dict[str, Any]]:
        with self.db.session() as s:
            dn = q.get_datanet(s, datanet)
            return [snapshot_dict(r, dn.name) for r in q.list_snapshots(s, dn.id)]

    def get(self, datanet: str | int, version: int | None) -> dict[str, Any]:
        with self.db.session() as s:
            dn = q.get_datanet(s, datanet)
            return snapshot_dict(q.get_snapshot(s, dn, version), dn.name)

    def table(self, datanet: str | int, version: int | None = None) -> pa.Table:
        """The frozen rows of a snapshot, read from its verified Parquet blob."""
        snap = self.get(datanet, version)
        return pq.read_table(io.BytesIO(self.blobs.get(snap["parquet_sha"])))

    def export(self, ref: str, fmt: str, out: Path, *, account: str | None = None) -> Path:
        """Write DATANET[@VERSION] as JSONL or Parquet (atomically); returns the path. A
        priced snapshot is written only for an ``account`` (None: the operator) that paid
        for its export, contributed to it or owns the datanet; else a 402 and nothing."""
        if fmt not in EXPORT_FORMATS:
            raise ValidationError(
                f"Export format {fmt!r} is not supported.",
                field="format",
                value=fmt,
                fix=f"use one of: {', '.join(EXPORT_FORMATS)}.",
            )
        name, version = parse_ref(ref)
        snap = self.get(name, version)
        if self.admit is not None:
            self.admit(name, snap["version"], account)
        data = self.blobs.get(snap["parquet_sha"])
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        if fmt == "parquet":
            tmp.write_bytes(data)
        else:
            table = pq.read_table(io.BytesIO(data))
            with tmp.open("w", encoding="utf-8") as fh:
                for row in table.to_pylist():
                    slim = {k: v for k, v in row.items() if v is not None}
                    fh.write(json.dumps(slim, ensure_ascii=False, sort_keys=True) + "\n")
        os.replace(tmp, out)
        return out
