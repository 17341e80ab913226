"""Paid inference: credit holds before compute, then fee, split, signed receipt and accounting.

The flow of one request (``api/routes/openai.py`` and ``demo`` use the same calls):

1. ``reserve(account, model, prompt_tokens, max_tokens)`` before any compute: the largest fee
   the request can cost is held against the account's credit, or PaymentRequiredError (402).
2. the engine generates; attribution traces the completion to contributions.
3. ``charge(hold, completion_tokens, ...)``: the exact fee, its split, a signed receipt in the
   hash chain and the credit debit, written together; the hold is released.

Receipts are written by one writer thread that commits whatever requests are waiting as
one transaction (group commit), under the database write lock, so the chain has no gaps or
forks and a credit is never spent twice, even with other processes writing. Credit checks
read a cached balance per account (refreshed after each commit and every ``credit_ttl``
seconds) minus the holds in flight, under one lock with the writer's release of holds.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections import defaultdict
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import UTC, datetime
from queue import Empty, SimpleQueue
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from web3 import Web3

from openledger.attribution.types import Attribution
from openledger.errors import NotFoundError, PaymentRequiredError, StoreError, ValidationError
from openledger.ledger import beneficiaries as bene
from openledger.ledger.credits import new_credit_row
from openledger.ledger.params import ParamsCache
from openledger.ledger.pricing import WEIGHT_SCALE, fee, split_fee, weights_ppb
from openledger.ledger.receipts import (
    GENESIS,
    RECEIPT_VERSION,
    ReceiptSigner,
    SignedReceipt,
    canonical_json,
    hash_hex,
)
from openledger.store.db import WRITE_LOCK_KEY, Database
from openledger.store.ledger_tables import (
    BeneficiarySetRow,
    CreditRow,
    EarningRow,
    ReceiptRow,
)
from openledger.units import fmt_open as format_open

MAX_GROUP = 256  # receipts committed in one transaction at most
SET_TTL = 60.0  # seconds a model's beneficiary set is reused before it is read again


@dataclass
class Hold:
    """Credit set aside for one request until it is charged or released."""

    account: str
    model: dict[str, Any]
    prompt_tokens: int
    max_tokens: int
    amount: int
    id: int = 0
    settled: bool = False
    charging: bool = False


@dataclass
class _Job:
    hold: Hold
    completion_tokens: int
    request_hash: str
    attribution: Attribution | None
    done: Future = field(default_factory=Future)


def _checksum(account: str) -> str:
    return Web3.to_checksum_address(account) if Web3.is_address(account) else account


def request_hash(payer: str, model: str, request: Mapping[str, Any]) -> str:
    """keccak256 of the canonical JSON of what was asked, by whom, of which model."""
    return hash_hex(canonical_json({"payer": payer, "model": model, "request": request}))


def attribution_summary(a: Attribution | None) -> dict[str, Any]:
    """What a receipt says about attribution: integer weights (ppb), method, index."""
    if a is None:
        return {
            "method": "none",
            "index_hash": None,
            "shares": [],
            "unattributed_ppb": WEIGHT_SCALE,
        }
    ppb = weights_ppb(a.weights())
    contributors = {s.contribution: s.contributor for s in a.shares}
    shares = [
        {"contribution": c, "contributor": contributors.get(c, ""), "weight_ppb": w}
        for c, w in sorted(ppb.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    return {
        "method": a.method,
        "index_hash": a.index_hash,
        "shares": shares,
        "unattributed_ppb": WEIGHT_SCALE - sum(ppb.values()),
    }


class LedgerService:
    def __init__(
        self,
        db: Database,
        params: ParamsCache,
        signer: Callable[[], ReceiptSigner],
        *,
        chain_id: int,
        credit_ttl: float = 1.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        import time

        self.db = db
        self.params = params
        self._signer_source = signer
        self._signer: ReceiptSigner | None = None
        self.chain_id = chain_id
        self.credit_ttl = credit_ttl
        self._clock = clock or time.monotonic
        self._lock = threading.Lock()  # credit cache + holds
        self._in_commit = 0  # groups between their commit and their cache update
        self._cache: dict[str, tuple[int, float]] = {}
        self._held: dict[str, int] = defaultdict(int)
        self._hold_ids = itertools.count(1)
        self._queue: SimpleQueue[_Job | None] = SimpleQueue()
        self._writer: threading.Thread | None = None
        self._writer_lock = threading.Lock()
        self._sets: dict[tuple[int, tuple[str, ...]], tuple[str, list, float]] = {}

    # ------------------------------------------------------------------ credit

    def credit(self, account: str) -> dict[str, Any]:
        """The account's credit as the node sees it (wei as decimal strings)."""
        account = _checksum(account)
        with self.db.session() as s:
            row = s.get(CreditRow, account)
            values = {
                k: getattr(row, k) if row else 0
                for k in ("deposited", "withdrawn", "charged", "collected", "pending_withdrawal")
            }
            ready_at = row.withdrawal_ready_at if row else 0
        with self._lock:
            held = self._held.get(account, 0)
        available = (
            values["deposited"]
            - values["withdrawn"]
            - values["charged"]
            - values["pending_withdrawal"]
        )
        return {
            "account": account,
            **{k: str(v) for k, v in values.items()},
            "withdrawal_ready_at": ready_at,
            "held": str(held),
            "available": str(available - held),
        }

    def _db_available(self, account: str) -> int:
        with self.db.session() as s:
            row = s.get(CreditRow, account)
            return row.available if row else 0

    def reserve(
        self, account: str, model: dict[str, Any], prompt_tokens: int, max_tokens: int
    ) -> Hold:
        """Hold the largest fee this request can cost, or raise PaymentRequiredError (402)."""
        account = _checksum(account)
        price_in, price_out = int(model["price_in"]), int(model["price_out"])
        amount = fee(prompt_tokens, max_tokens, price_in, price_out)
        with self._lock:
            cached = self._cache.get(account)
            now = self._clock()
            # while a group commits, the cached value (from before it) plus the holds (still
            # counting it) is right; a fresh read would count the group twice
            stale = cached is None or now - cached[1] >= self.credit_ttl
            if cached is None or (stale and not self._in_commit):
                cached = (self._db_available(account), now)
                self._cache[account] = cached
            available = cached[0] - self._held[account]
            if amount > available:
                raise PaymentRequiredError(
                    f"account {account} has {format_open(max(available, 0))} OPEN of inference "
                    f"credit; this request can cost up to {format_open(amount)} OPEN "
                    f"({prompt_tokens} prompt + up to {max_tokens} completion tokens at "
                    f"{format_open(price_in)}/{format_open(price_out)} OPEN per 1k).",
                    field="credit",
                    value=str(max(available, 0)),
                    fix="deposit OPEN into the InferenceEscrow (`openledger deposit AMOUNT "
                    "--as ACCOUNT`) or ask for fewer tokens (max_tokens).",
                )
            self._held[account] += amount
        return Hold(account, model, prompt_tokens, max_tokens, amount, next(self._hold_ids))

    def release(self, hold: Hold) -> None:
        """Give back a hold that will not be charged (the request failed before any output)."""
        with self._lock:
            if not hold.settled and not hold.charging:
                hold.settled = True
                self._held[hold.account] -= hold.amount

    # ------------------------------------------------------------------ charge

    def charge(
        self,
        hold: Hold,
        completion_tokens: int,
        *,
        request_hash: str,
        attribution: Attribution | None,
        timeout: float | None = 60.0,
    ) -> SignedReceipt:
        """Price, split, receipt and debit one finished request; returns its signed receipt.

        The hold is claimed at once: a second charge of it is refused, and ``release`` leaves
        it alone while its charge is queued."""
        with self._lock:
            claimed = not (hold.settled or hold.charging)
            hold.charging = True
        if not claimed:
            raise ValidationError(
                f"hold #{hold.id} of {hold.account} was already charged or released.",
                field="hold",
                value=hold.id,
                fix="reserve again for a new request.",
            )
        if completion_tokens > hold.max_tokens:
            with self._lock:
                hold.charging = False
            raise ValidationError(
                f"{completion_tokens} completion tokens exceed the {hold.max_tokens} reserved.",
                field="completion_tokens",
                value=completion_tokens,
                fix="reserve with the request's max_tokens.",
            )
        job = _Job(hold, completion_tokens, request_hash, attribution)
        self._ensure_writer()
        self._queue.put(job)
        try:
            return job.done.result(timeout=timeout)
        except FutureTimeout as exc:
            raise StoreError(
                f"the ledger did not record the charge of hold #{hold.id} within {timeout} s; "
                "it stays queued and will be recorded (its credit stays held).",
                field="ledger",
                value=hold.id,
                fix="check the database is reachable and not locked by another process.",
            ) from exc

    def _ensure_writer(self) -> None:
        with self._writer_lock:
            if self._writer is None or not self._writer.is_alive():
                self._writer = threading.Thread(
                    target=self._write_loop, name="ledger-writer", daemon=True
                )
                self._writer.start()

    def close(self) -> None:
        with self._writer_lock:
            if self._writer is not None and self._writer.is_alive():
                self._queue.put(None)
                self._writer.join(timeout=30)
            self._writer = None

    def _write_loop(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            jobs = [job]
            stop = False
            while len(jobs) < MAX_GROUP:
                try:
                    more = self._queue.get_nowait()
                except Empty:
                    break
                if more is None:
                    stop = True
                    break
                jobs.append(more)
            self._commit_group(jobs)
            if stop:
                return

    def _commit_group(self, jobs: list[_Job]) -> None:
        with self._lock:
            self._in_commit += 1
        try:
            results, balances = self._write(jobs)
        except BaseException as exc:  # the transaction failed: every waiting request fails
            self._sets.clear()  # a set first stored in the rolled-back transaction is gone
            results, balances = [exc] * len(jobs), {}
        now = self._clock()
        with self._lock:
            self._in_commit -= 1
            for account, available in balances.items():
                self._cache[account] = (available, now)
            for j in jobs:  # charged or failed: either way the hold is over
                if not j.hold.settled:
                    j.hold.settled = True
                    self._held[j.hold.account] -= j.hold.amount
        for j, r in zip(jobs, results, strict=True):
            if isinstance(r, BaseException):
                j.done.set_exception(r)
            else:
                j.done.set_result(r)

    def _price(self, j: _Job, s: Session, params: Any) -> tuple[dict[str, Any], int, list]:
        """Everything of one receipt but its place in the chain (pure but for the set)."""
        h, model = j.hold, j.hold.model
        set_id, contributions = self._beneficiaries(s, model)
        price_in, price_out = int(model["price_in"]), int(model["price_out"])
        amount = fee(h.prompt_tokens, j.completion_tokens, price_in, price_out)
        summary = attribution_summary(j.attribution)
        ppb = {x["contribution"]: x["weight_ppb"] for x in summary["shares"]}
        parts, payouts = split_fee(
            amount,
            params.split,
            treasury=params.treasury,
            owner=model["owner"],
            contributions=contributions,
            attribution=ppb,
        )
        return (
            {
                "payer": h.account,
                "request_hash": j.request_hash,
                "model": {
                    "id": int(model["id"]),
                    "name": model["name"],
                    "adapter_sha256": model["adapter_sha256"],
                    "base": model["base"],
                },
                "tokens": {"prompt": h.prompt_tokens, "completion": j.completion_tokens},
                "prices": {"in": str(price_in), "out": str(price_out)},
                "fee": str(amount),
                "split": {
                    "params_version": params.split.version,
                    "bps": list(params.split.bps),
                    **{role: str(v) for role, v in parts.items()},
                },
                "beneficiaries": set_id,
                "payouts": [p.to_dict() for p in payouts],
                "attribution": summary,
            },
            amount,
            payouts,
        )

    def _write(
        self, jobs: list[_Job]
    ) -> tuple[list[SignedReceipt | BaseException], dict[str, int]]:
        params = self.params.current()
        if self._signer is None:
            self._signer = self._signer_source()
        signer = self._signer
        stamp = datetime.now(UTC)
        created = stamp.replace(microsecond=0).isoformat()
        results: list[SignedReceipt | BaseException] = []
        receipt_rows: list[dict[str, Any]] = []
        # one earnings row per (account, role, model, datanet, contribution) per group, keyed
        # to the group's first receipt: a group commits, and is sealed, as a unit
        earnings: dict[tuple, int] = defaultdict(int)
        debits: dict[str, int] = defaultdict(int)
        with self.db.locked_session(WRITE_LOCK_KEY) as s:
            last = s.execute(
                select(ReceiptRow.seq, ReceiptRow.hash).order_by(ReceiptRow.seq.desc()).limit(1)
            ).first()
            seq, prev = (int(last[0]), last[1]) if last else (0, GENESIS)
            first_seq = seq + 1
            for j in jobs:
                try:  # a request that cannot be priced fails alone, not its whole group
                    priced, amount, payouts = self._price(j, s, params)
                except Exception as exc:
                    results.append(exc)
                    continue
                seq += 1
                body = {
                    "v": RECEIPT_VERSION,
                    "seq": seq,
                    "prev": prev,
                    "chain_id": self.chain_id,
                    "operator": signer.address,
                    "created_at": created,
                    **priced,
                }
                text = canonical_json(body)
                digest = hash_hex(text)
                signature = signer.sign(digest)
                receipt_rows.append(
                    {
                        "seq": seq,
                        "hash": digest,
                        "prev_hash": prev,
                        "signature": signature,
                        "payer": j.hold.account,
                        "model_id": priced["model"]["id"],
                        "fee": amount,
                        "epoch": None,
                        "body": text.decode(),
                        "created_at": stamp,
                    }
                )
                model_id = priced["model"]["id"]
                for p in payouts:
                    earnings[(p.account, p.role, model_id, p.datanet, p.contribution)] += p.amount
                debits[j.hold.account] += amount
                results.append(SignedReceipt(seq, body, digest, signature))
                prev = digest
            if not receipt_rows:
                return results, {}
            conn = s.connection()
            conn.execute(ReceiptRow.__table__.insert(), receipt_rows)
            conn.execute(
                EarningRow.__table__.insert(),
                [
                    {
                        "receipt_seq": first_seq,
                        "account": a,
                        "role": r,
                        "amount": v,
                        "model_id": m,
                        "datanet_id": d,
                        "contribution_id": c,
                    }
                    for (a, r, m, d, c), v in earnings.items()
                ],
            )
            rows = {
                r.account: r
                for r in s.scalars(select(CreditRow).where(CreditRow.account.in_(list(debits))))
            }
            balances: dict[str, int] = {}
            for account, amount in debits.items():
                row = rows.get(account)
                if row is None:
                    row = new_credit_row(account)
                    s.add(row)
                row.charged = (row.charged or 0) + amount
                row.updated_at = stamp
                balances[account] = row.available
        return results, balances

    def _beneficiaries(self, s: Session, model: dict[str, Any]) -> tuple[str, list]:
        """The model's training contributions and the hash of that set (stored once).

        Cached per model and snapshot roots for ``SET_TTL`` seconds: stakes of approved
        contributions change only when one is withdrawn after the unlock delay (possibly by
        another process), so a minute of staleness moves no wei that was not already due."""
        key = (int(model["id"]), tuple(model.get("snapshot_roots") or ()))
        cached = self._sets.get(key)
        now = self._clock()
        if cached is not None and now - cached[2] < SET_TTL:
            return cached[0], cached[1]
        contributions = bene.training_contributions(s, key[1])
        body = bene.set_body(key[0], contributions)
        digest = bene.set_hash(body)
        if s.get(BeneficiarySetRow, digest) is None:
            s.add(BeneficiarySetRow(hash=digest, model_id=key[0], body=json.dumps(body)))
            s.flush()
        self._sets[key] = (digest, contributions, now)
        return digest, contributions

    def invalidate_beneficiaries(self) -> None:
        self._sets.clear()

    def invalidate_credit(self, account: str | None = None) -> None:
        with self._lock:
            if account is None:
                self._cache.clear()
            else:
                self._cache.pop(account, None)

    # ------------------------------------------------------------------ reads

    def receipt(self, ref: int | str) -> dict[str, Any]:
        """A stored receipt by id (its sequence number) or by hash."""
        with self.db.session() as s:
            if isinstance(ref, int) or str(ref).isdigit():
                row = s.get(ReceiptRow, int(ref))
            else:
                row = s.scalars(
                    select(ReceiptRow).where(ReceiptRow.hash == str(ref).lower())
                ).first()
            if row is None:
                raise NotFoundError(
                    f"no receipt {ref!r} on this node.",
                    field="receipt",
                    value=str(ref),
                    fix="use the receipt_id a response returned, or list them with "
                    "`openledger receipts list`.",
                )
            return {
                "id": row.seq,
                "hash": row.hash,
                "signature": row.signature,
                "epoch": row.epoch,
                "receipt": json.loads(row.body),
            }

    def receipts(self, *, payer: str | None = None, offset: int = 0, limit: int = 50) -> dict:
        with self.db.session() as s:
            q = select(ReceiptRow)
            count = select(func.count()).select_from(ReceiptRow)
            if payer:
                payer = _checksum(payer)
                q, count = (
                    q.where(ReceiptRow.payer == payer),
                    count.where(ReceiptRow.payer == payer),
                )
            rows = s.scalars(q.order_by(ReceiptRow.seq.desc()).offset(offset).limit(limit)).all()
            total = int(s.execute(count).scalar_one())
            items = [
                {
                    "id": r.seq,
                    "hash": r.hash,
                    "payer": r.payer,
                    "model_id": r.model_id,
                    "fee": str(r.fee),
                    "epoch": r.epoch,
                    "created_at": r.created_at.isoformat(),
                }
                for r in rows
            ]
        return {"total": total, "items": items}
