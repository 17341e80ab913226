"""Contributing files to a datanet: parse, check, sign, stake on chain, then store.

Order of work, so that a rejected contribution leaves nothing behind: every check that can
fail (caps, parsing, duplicates, stake, balance, allowance) runs before anything is sent or
written (``plan_contribute``); then the manifest is signed and the chain transactions
(approve if needed, contribute) are sent, by the node's key or by the contributor's wallet;
only once the contribution is mined are the blobs, rows and index written (the plan's
``finish``). A failure before that leaves no rows and no blobs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from eth_account.signers.local import LocalAccount
from sqlalchemy import select

from openledger.chain.calls import Plan, approval, build, pack, resumable, unpack
from openledger.chain.deploy import Contracts
from openledger.chain.tx import TxResult
from openledger.datanets import queries as q
from openledger.datanets.dedup import NearDupIndex, jaccard
from openledger.datanets.limits import IngestLimits
from openledger.datanets.manifest import build_manifest, canonical_bytes
from openledger.datanets.neardup import NearDupRegistry, record_text
from openledger.datanets.parsers import IngestError, parse_files
from openledger.datanets.records import Record, contribution_root
from openledger.errors import InsufficientFundsError, ValidationError
from openledger.store.blobs import BlobStore
from openledger.store.datanet_tables import ContributionRow, RecordRow
from openledger.store.db import Database


@dataclass(frozen=True)
class ContributionResult:
    contribution_id: int
    datanet: str
    contributor: str
    record_count: int
    root: str
    stake: int
    manifest_sha: str
    signature: str
    tx_hash: str
    files: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "stake": str(self.stake)}


#: candidates for the exact copy check: estimates this far under ``copy_threshold`` (about
#: 4 standard deviations of a 128-permutation estimate) are still looked at
COPY_SLACK = 0.15


def _copy_error(r: Record, j: float, threshold: float, of: str) -> IngestError:
    return IngestError(
        f"{r.source} {r.location}: a reworded copy (Jaccard {j:.2f} of character 5-grams ≥ "
        f"{threshold}) of {of}. Copies with a few words changed add no data, and would take "
        "a share of the fees from the record they copy.",
        file=r.source,
        location=r.location,
        rule="reworded_copy",
        fix="contribute only new material in your own words; one record per fact.",
    )


def check_within(
    index: NearDupIndex, records: list[Record], sigs: np.ndarray, threshold: float
) -> None:
    """Records of one contribution must not be near-duplicates of each other either: the
    unattributed part is paid pro rata to approved records, so padding a file with
    near-copies of its own records would raise its share. Candidates share an LSH band (as
    in the datanet's index); each pair is confirmed by its estimated Jaccard. (One
    contributor's own records are held to this rule only, not to the reworded-copy rule:
    rows of one template differ by a word or two and are still different facts.)"""
    if len(records) < 2:
        return
    bands = index.band_hashes(sigs)
    seen: dict[tuple[int, int], int] = {}
    for i in range(len(records)):
        for b, h in enumerate(bands[i].tolist()):
            j = seen.setdefault((b, h), i)
            if j == i:
                continue
            score = float(np.mean(sigs[i] == sigs[j]))
            if score >= threshold:
                a, r = records[j], records[i]
                raise IngestError(
                    f"{r.source} {r.location}: near duplicate (estimated Jaccard {score:.2f} ≥ "
                    f"{threshold}) of {a.source} {a.location} in the same contribution.",
                    file=r.source,
                    location=r.location,
                    rule="near_duplicate",
                    fix="keep one of the two; near-copies of a record do not add data.",
                )


def _day_start(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _file_sha(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class ContributionService:
    db: Database
    blobs: BlobStore
    contracts: Callable[[], Contracts]
    neardup: NearDupRegistry
    base_limits: IngestLimits = field(default_factory=IngestLimits)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    # test hook: called after blobs and rows are written, before any chain transaction
    before_chain: Callable[[], None] | None = None

    def limits(self, contracts: Contracts) -> IngestLimits:
        """The caps in force: upload caps from ProtocolParams, the rest from ``base_limits``."""
        p = contracts.params
        return replace(
            self.base_limits,
            max_file_bytes=p.get("max_file_bytes"),
            max_files_per_day=p.get("max_files_per_day"),
        )

    def contribute(
        self,
        datanet: str | int,
        paths: list[Path],
        *,
        stake: int,
        signer: LocalAccount,
        column: str | None = None,
        approve: bool = True,
        display_names: list[str] | None = None,
    ) -> ContributionResult:
        plan = self.plan_contribute(
            datanet,
            paths,
            stake=stake,
            contributor=signer.address,
            column=column,
            approve=approve,
            display_names=display_names,
        )
        done = plan.run(signer)
        return ContributionResult(**{**done, "stake": int(done["stake"])})

    def plan_contribute(
        self,
        datanet: str | int,
        paths: list[Path],
        *,
        stake: int,
        contributor: str,
        column: str | None = None,
        approve: bool = True,
        display_names: list[str] | None = None,
    ) -> Plan:
        """Every check, the manifest to sign and the calls (approve if needed, contribute);
        the plan's ``finish`` stores the blobs and rows once the contribution is mined.
        The files are read now: ``paths`` may be gone by then."""
        if not paths:
            raise ValidationError(
                "No files given.", field="files", fix="name at least one file to contribute."
            )
        contracts = self.contracts()
        limits = self.limits(contracts)
        now = self.clock()
        with self.db.session() as s:
            dn = q.get_datanet(s, datanet)
            dn_id, dn_chain, dn_name, dn_min = dn.id, dn.chain_id, dn.name, dn.min_stake
            today = q.files_since(s, contributor, _day_start(now))
        if today + len(paths) > limits.max_files_per_day:
            raise ValidationError(
                f"{contributor} already uploaded {today} file(s) today; {len(paths)} more would "
                f"pass the daily cap of {limits.max_files_per_day} files.",
                field="files",
                value=len(paths),
                fix="contribute the rest tomorrow (UTC), or ask governance to raise "
                "max_files_per_day.",
            )
        minimum = max(dn_min, contracts.params.get("min_stake"))
        if stake < minimum:
            raise ValidationError(
                f"Stake {stake} wei is under the minimum of {minimum} wei for datanet {dn_name!r}.",
                field="stake",
                value=stake,
                fix=f"stake at least {minimum / 10**18:g} OPEN.",
            )

        records = parse_files(paths, limits=limits, column=column)
        self._check_duplicates(dn_id, records)
        sigs = self.neardup.signatures(records)
        index = self.neardup.index_for(dn_id)
        check_within(index, records, sigs, limits.near_dup_threshold)
        self._check_near_duplicates(index, records, sigs, limits.near_dup_threshold)
        self._check_copies(index, records, sigs, limits.copy_threshold, contributor)
        self._check_funds(contracts, contributor, stake, approve)

        names = display_names or [p.name for p in paths]
        contents = [p.read_bytes() for p in paths]
        files = [
            {
                "name": n,
                "sha256": hashlib.sha256(data).hexdigest(),
                "bytes": len(data),
                "records": sum(1 for r in records if r.source == n),
            }
            for n, data in zip(names, contents, strict=True)
        ]
        root = "0x" + contribution_root(records).hex()
        manifest = build_manifest(
            datanet_chain_id=dn_chain,
            datanet_name=dn_name,
            contributor=contributor,
            root=root,
            record_hashes=[r.sha256 for r in records],
            files=files,
            stake=stake,
            created_at=now.isoformat(),
        )
        registry = contracts.datanets
        calls = approval(contracts.token, contributor, registry.address, stake) if approve else []
        calls.append(
            build(registry, "contribute", dn_chain, bytes.fromhex(root[2:]), len(records), stake)
        )
        if self.before_chain is not None:
            self.before_chain()

        args = {
            "dn_id": dn_id,
            "dn_name": dn_name,
            "contributor": contributor,
            "root": root,
            "records": [[r.canonical_json().decode(), r.source, r.location] for r in records],
            "files": files,
            "manifest": manifest,
            "stake": stake,
            "now": now.isoformat(),
        }
        finish, resume = resumable(
            "contributions.finish_contribute", self.finish_contribute, args, pack(contents)
        )
        return Plan(
            registry.client,
            contributor,
            calls,
            finish,
            message=canonical_bytes(manifest),
            resume=resume,
            what=f"contribute {len(records)} record(s) to {dn_name!r} with a stake of "
            f"{stake / 10**18:g} OPEN",
        )

    def finish_contribute(
        self,
        args: dict[str, Any],
        payload: bytes | None,
        results: list[TxResult],
        signature: str | None,
    ) -> dict[str, Any]:
        """The off-chain side of a mined contribution: blobs, rows, the near-duplicate index."""
        registry = self.contracts().datanets
        result = results[-1]
        chain_id = int(registry.events(result, "ContributionSubmitted")[0]["contribution_id"])
        records = [
            Record.from_canonical(json.loads(c), source, location)
            for c, source, location in args["records"]
        ]
        sigs = self.neardup.signatures(records)
        index = self.neardup.index_for(args["dn_id"])
        files = args["files"]
        manifest_sha = self._record(
            args["dn_id"],
            chain_id,
            result.tx_hash,
            args["contributor"],
            records,
            sigs,
            index,
            unpack(payload),
            files,
            args["manifest"],
            str(signature),
            args["stake"],
            datetime.fromisoformat(args["now"]),
        )
        out = ContributionResult(
            contribution_id=chain_id,
            datanet=args["dn_name"],
            contributor=args["contributor"],
            record_count=len(records),
            root=args["root"],
            stake=args["stake"],
            manifest_sha=manifest_sha,
            signature=str(signature),
            tx_hash=result.tx_hash,
            files=files,
        )
        return out.to_dict()

    def _record(
        self,
        dn_id: int,
        chain_id: int,
        tx_hash: str,
        contributor: str,
        records: list[Record],
        sigs: np.ndarray,
        index: NearDupIndex,
        contents: list[bytes],
        files: list[dict[str, Any]],
        manifest: dict[str, Any],
        signature: str,
        stake: int,
        now: datetime,
    ) -> str:
        """The off-chain side of a mined contribution: blobs, rows, the near-duplicate index."""
        created: list[str] = []
        try:
            for data, f in zip(contents, files, strict=True):
                self._put_new(created, f["sha256"], lambda data=data: self.blobs.put(data))
            envelope = canonical_bytes({"manifest": manifest, "signature": signature})
            manifest_sha = hashlib.sha256(envelope).hexdigest()
            self._put_new(created, manifest_sha, lambda: self.blobs.put(envelope))
            with self.db.session() as s:
                row = ContributionRow(
                    datanet_id=dn_id,
                    contributor=contributor,
                    root=manifest["root"],
                    record_count=len(records),
                    stake=stake,
                    files=files,
                    file_count=len(files),
                    manifest_sha=manifest_sha,
                    signature=signature,
                    tx_hash=tx_hash,
                    created_at=now,
                    chain_id=chain_id,
                )
                s.add(row)
                s.flush()
                record_rows = [
                    RecordRow(
                        datanet_id=dn_id,
                        contribution_id=row.id,
                        position=i,
                        sha256=r.sha256,
                        dedup_key=r.sha256,
                        kind=r.kind,
                        content=r.canonical_json().decode(),
                        source=r.source[:256],
                        location=r.location[:64],
                        char_len=r.char_len,
                    )
                    for i, r in enumerate(records)
                ]
                s.add_all(record_rows)
                s.flush()
                record_ids = [r.id for r in record_rows]
        except BaseException:
            for sha in created:
                self.blobs.delete(sha, missing_ok=True)
            raise
        index.add(np.array(record_ids, dtype=np.int64), sigs)
        index.commit()
        return manifest_sha

    # -- checks -----------------------------------------------------------------------------
    def _check_duplicates(self, datanet_id: int, records: list[Record]) -> None:
        with self.db.session() as s:
            found = q.existing_hashes(s, datanet_id, (r.sha256 for r in records))
        for r in records:
            if r.sha256 in found:
                raise IngestError(
                    f"{r.source} {r.location}: exact duplicate of a record already in the "
                    f"datanet (contribution #{found[r.sha256]}).",
                    file=r.source,
                    location=r.location,
                    rule="exact_duplicate",
                    fix="remove the record; the datanet already holds it.",
                )

    def _check_near_duplicates(
        self, index: NearDupIndex, records: list[Record], sigs: np.ndarray, threshold: float
    ) -> None:
        if len(index) == 0:
            return
        matches = index.query_many(sigs, threshold)
        hits = [(r, m) for r, m in zip(records, matches, strict=True) if m is not None]
        if not hits:
            return
        r, (key, score) = hits[0]
        with self.db.session() as s:
            where = q.contribution_of_records(s, [key]).get(key, (0, "?"))
        raise IngestError(
            f"{r.source} {r.location}: near duplicate (estimated Jaccard {score:.2f} ≥ "
            f"{threshold}) of {where[1]} in contribution #{where[0]}"
            + (f" (and {len(hits) - 1} more record(s))." if len(hits) > 1 else "."),
            file=r.source,
            location=r.location,
            rule="near_duplicate",
            fix="contribute only new material; rephrasing an existing record does not count.",
        )

    def _check_copies(
        self,
        index: NearDupIndex,
        records: list[Record],
        sigs: np.ndarray,
        threshold: float,
        contributor: str,
    ) -> None:
        """A record must not be a reworded copy of another contributor's record: two words
        changed in someone else's note leave its character 5-gram Jaccard at about 0.76,
        under the near-duplicate threshold, yet the copy would take a share of the
        unattributed fees that note earns. LSH candidates a little under ``threshold`` are
        confirmed by their exact Jaccard against the stored text."""
        if len(index) == 0:
            return
        found = index.candidates(sigs, max(0.05, threshold - COPY_SLACK))
        if not found:
            return
        with self.db.session() as s:
            stored = {
                rid: (record_text(content), who)
                for rid, content, who in s.execute(
                    select(RecordRow.id, RecordRow.content, ContributionRow.contributor)
                    .join(ContributionRow, RecordRow.contribution_id == ContributionRow.id)
                    .where(RecordRow.id.in_({key for _, key, _ in found}))
                )
            }
            for row, key, _est in found:
                if key not in stored or stored[key][1].lower() == contributor.lower():
                    continue
                exact = jaccard(stored[key][0], records[row].content_text)
                if exact >= threshold:
                    cid, where = q.contribution_of_records(s, [key]).get(key, (0, "?"))
                    raise _copy_error(
                        records[row],
                        exact,
                        threshold,
                        f"another contributor's record, {where} in contribution #{cid}",
                    )

    def _check_funds(self, contracts: Contracts, who: str, stake: int, approve: bool) -> None:
        balance = contracts.token.balance_of(who)
        if balance < stake:
            raise InsufficientFundsError(
                f"{who} holds {balance / 10**18:g} OPEN, less than the stake of "
                f"{stake / 10**18:g} OPEN.",
                field="stake",
                value=stake,
                fix="lower the stake or top up the account's OPEN.",
            )
        allowance = contracts.token.allowance(who, contracts.datanets.address)
        if not approve and allowance < stake:
            raise InsufficientFundsError(
                f"The allowance of {allowance / 10**18:g} OPEN for the DatanetRegistry is less "
                f"than the stake of {stake / 10**18:g} OPEN.",
                field="allowance",
                value=allowance,
                fix="approve the DatanetRegistry for the stake first, or let the node approve it.",
            )

    def _put_new(self, created: list[str], sha: str, put: Callable[[], str]) -> None:
        """Store a blob, remembering it for clean-up unless it was already there."""
        existed = self.blobs.exists(sha)
        put()
        if not existed:
            created.append(sha)
