"""The receipt writer: claimed holds in, signed receipts committed in groups out.

``submit`` hands a charge to the pricing stage (``pricer``: one thread for every request
thread, the pure-Python work in the pricing process on another core), which hands each
priced charge back in order; one writer thread commits whatever requests are waiting
(gathering them for a few ms while they keep arriving, ``GATHER_S``, up to ``MAX_GROUP``) as
one transaction under the database write lock: each receipt linked into the hash chain, the
operator's signature on the hash of the group's last receipt, the earnings and pool rows,
the payers' debits and the leases the settled holds consumed (``writing``). So the chain has
no gaps or forks and a credit is never spent twice, even with other processes writing.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from queue import Empty, SimpleQueue
from typing import Any, NamedTuple

from sqlalchemy import select

from openledger.attribution.types import Attribution
from openledger.ledger.credit.book import CreditBook, Hold
from openledger.ledger.pricing.params import ParamsCache
from openledger.ledger.pricing.pricer import Prepared, Pricer
from openledger.ledger.receipts.canonical import GENESIS, ReceiptSigner, SignedReceipt, link_hash
from openledger.ledger.receipts.content import (
    AttributionInput,
    Charge,
    Priced,
    Terms,
    price_charge,
)
from openledger.ledger.receipts.writer_db import (
    PendingReceipt,
    debit,
    insert_many,
    insert_rows,
    now_iso,
    store_sets,
)
from openledger.ledger.settlement.beneficiaries import BeneficiaryCache, BeneficiarySet
from openledger.store.db import WRITE_LOCK_KEY, Database
from openledger.store.ledger_tables import EarningRow, PoolRow, ReceiptRow

MAX_GROUP = 256  # receipts committed in one transaction at most
GATHER_S = 0.01  # how long a group under way may wait for requests that keep arriving
RECEIPT_COLUMNS = [
    "seq",
    "hash",
    "prev_hash",
    "content_hash",
    "head_signature",
    "payer",
    "model_id",
    "fee",
    "epoch",
    "body",
    "created_at",
]


class _Charge(NamedTuple):
    """A submitted charge waiting for the pricer."""

    hold: Hold
    completion_tokens: int
    request_hash: str
    attribution: Attribution | None
    done: PendingReceipt


class _Job(NamedTuple):
    """One priced request waiting for its place in the chain."""

    hold: Hold
    text: str  # the canonical JSON of the receipt's content
    content_hash: str
    amount: int
    beneficiaries: BeneficiarySet
    earnings: list[tuple[tuple, int]]  # ((account, role, model, datanet, contribution), wei)
    pools: list[tuple[tuple, int]]  # ((set hash, role, model), wei)
    done: PendingReceipt


class ReceiptWriter:
    """Prices and commits the charges of ``book``'s holds (see the module docstring)."""

    def __init__(
        self,
        db: Database,
        params: ParamsCache,
        signer: Callable[[], ReceiptSigner],
        book: CreditBook,
        beneficiaries: BeneficiaryCache,
        *,
        chain_id: int,
        pricing_process: bool = True,
    ) -> None:
        self.db = db
        self.params = params
        self.book = book
        self.beneficiaries = beneficiaries
        self.chain_id = chain_id
        self._signer_source = signer
        self.signer: ReceiptSigner | None = None  # loaded with the first charge priced
        self._signer_lock = threading.Lock()
        self._queue: SimpleQueue[_Job | None] = SimpleQueue()
        self._terms: dict[tuple, Terms] = {}
        self.pricer = Pricer(
            self._prepare,
            self._deliver,
            self._refuse,
            max_batch=MAX_GROUP,
            use_process=pricing_process,
        )
        self._writer: threading.Thread | None = None
        self._writer_lock = threading.Lock()
        self._stored_sets: set[str] = set()  # beneficiary-set hashes known to be stored
        self.metrics: Any = None  # NodeMetrics (ledger_committed)

    def submit(
        self,
        hold: Hold,
        completion_tokens: int,
        *,
        request_hash: str,
        attribution: Attribution | None,
    ) -> PendingReceipt:
        """Claim ``hold`` (``CreditBook.claim``) and queue its charge for pricing; returns
        at once with the pending receipt."""
        self.book.claim(hold, completion_tokens)
        done = PendingReceipt()
        self._ensure_writer()
        self.pricer.submit(_Charge(hold, completion_tokens, request_hash, attribution, done))
        return done

    def close(self) -> None:
        """Record every charge already submitted, then stop the pricer, the pricing process
        and the writer."""
        self.pricer.close()  # every submitted charge is in the writer's queue (or refused)
        with self._writer_lock:
            if self._writer is not None and self._writer.is_alive():
                self._queue.put(None)
                self._writer.join(timeout=30)
            self._writer = None

    # ------------------------------------------------------------------ pricing

    def _prepare(self, c: _Charge) -> Prepared:
        """What pricing ``c`` needs: the model's terms (one object per model, parameter
        version and beneficiary set), its beneficiary set and the charge itself."""
        model = c.hold.model
        params = self.params.current()
        bset = self.beneficiaries.get(model)
        key = (
            bset.hash,
            bset.model_id,
            model["name"],
            model["adapter_sha256"],
            model["base"],
            model["owner"],
            model["price_in"],
            model["price_out"],
            params.split,
            params.treasury,
            c.hold.agent,
        )
        terms = self._terms.get(key)
        if terms is None:
            signer = self.signer or self.load_signer()
            terms = Terms(
                self.chain_id,
                signer.address,
                params.split,
                params.treasury,
                bset.hash,
                bset.model_id,
                model["name"],
                model["adapter_sha256"],
                model["base"],
                model["owner"],
                int(model["price_in"]),
                int(model["price_out"]),
                c.hold.agent,
            )
            if len(self._terms) > 1024:
                self._terms.clear()
            self._terms[key] = terms
        a = c.attribution
        attribution = (
            None
            if a is None
            else AttributionInput(a.method, a.index_hash, a.weights(), a.query_hash)
        )
        charge = Charge(
            c.hold.account,
            c.hold.prompt_tokens,
            c.completion_tokens,
            c.request_hash,
            attribution,
            now_iso(),
            c.hold.inner,
            c.hold.compute,
        )
        return Prepared(terms, bset.members, charge, bset)

    def price(self, c: _Charge) -> _Job:
        """Price one charge in this thread (raises what refuses it)."""
        p = self._prepare(c)
        return self._job(c, p.context, price_charge(p.terms, p.members, p.charge))

    @staticmethod
    def _job(c: _Charge, bset: BeneficiarySet, p: Priced | tuple) -> _Job:
        """The priced charge for the writer (``p`` a ``Priced``, or one as a plain tuple)."""
        text, content_hash, amount, earnings, pools = p
        return _Job(c.hold, text.decode(), content_hash, amount, bset, earnings, pools, c.done)

    def _deliver(self, c: _Charge, bset: BeneficiarySet, priced: Priced | tuple) -> None:
        self._queue.put(self._job(c, bset, priced))

    def _refuse(self, c: _Charge, exc: BaseException) -> None:
        """A charge that cannot be priced: its hold is released and its request told why
        (once: a charge already answered is left alone)."""
        self.book.settle(c.hold)
        if not c.done.done():
            c.done.settle(None, exc)

    def load_signer(self) -> ReceiptSigner:
        with self._signer_lock:
            if self.signer is None:
                self.signer = self._signer_source()
            return self.signer

    # ------------------------------------------------------------------ writing

    def _ensure_writer(self) -> None:
        writer = self._writer
        if writer is not None and writer.is_alive():
            return  # the common case, without the lock
        with self._writer_lock:
            if self._writer is None or not self._writer.is_alive():
                self._writer = threading.Thread(
                    target=self._write_loop, name="ledger-writer", daemon=True
                )
                self._writer.start()

    def _write_loop(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            jobs = [job]
            stop = False
            deadline = time.monotonic() + GATHER_S
            arrived = True
            while len(jobs) < MAX_GROUP:
                try:
                    more = self._queue.get_nowait()
                except Empty:
                    # a group pays one transaction and one fsync however small it is: while
                    # requests keep arriving, let them gather (1 ms at a time, ≤ GATHER_S)
                    if len(jobs) < 2 or not arrived or time.monotonic() >= deadline:
                        break
                    arrived = False
                    time.sleep(0.001)
                    continue
                if more is None:
                    stop = True
                    break
                arrived = True
                jobs.append(more)
            self.commit_group(jobs)
            if stop:
                return

    def commit_group(self, jobs: list[_Job]) -> None:
        """Write ``jobs`` in one transaction, end their holds and answer their requests."""
        try:
            results, used = self.write(jobs)
        except BaseException as exc:  # the transaction failed: every waiting request fails
            self._stored_sets.clear()  # a set first stored in the rolled-back transaction
            results, used = [exc] * len(jobs), {}
        self.book.settle_group(used, [j.hold for j in jobs])
        if self.metrics is not None and not isinstance(results[0], BaseException):
            self.metrics.ledger_committed(len(jobs), sum(j.amount for j in jobs))
        for j, r in zip(jobs, results, strict=True):
            if isinstance(r, BaseException):
                j.done.settle(None, r)
            else:
                j.done.settle(r, None)

    def write(self, jobs: list[_Job]) -> tuple[list[SignedReceipt | BaseException], dict[str, int]]:
        """One transaction: ``jobs`` linked into the chain and signed, their rows and debits;
        returns their signed receipts and what they consumed of this node's leases."""
        signer = self.signer or self.load_signer()
        stamp = datetime.now(UTC)
        receipt_rows: list[tuple[Any, ...]] = []
        # one earnings row per (account, role, model, datanet, contribution) per group, keyed
        # to the group's first receipt: a group commits, and is sealed, as a unit
        earnings: dict[tuple, int] = defaultdict(int)
        pools: dict[tuple[str, str, int], int] = defaultdict(int)
        debits: dict[str, int] = defaultdict(int)
        consumed: dict[str, int] = defaultdict(int)  # the leases the settled holds used
        new_sets = {
            j.beneficiaries.hash: j.beneficiaries
            for j in jobs
            if j.beneficiaries.hash not in self._stored_sets
        }
        with self.db.locked_session(WRITE_LOCK_KEY) as s:
            conn = s.connection()
            if new_sets:
                store_sets(conn, new_sets)
            last = conn.execute(
                select(ReceiptRow.seq, ReceiptRow.hash).order_by(ReceiptRow.seq.desc()).limit(1)
            ).first()
            seq, prev = (int(last[0]), last[1]) if last else (0, GENESIS)
            first_seq = seq + 1
            links: list[tuple[int, str, str]] = []
            for j in jobs:
                seq += 1
                digest = link_hash(prev, seq, j.content_hash)
                receipt_rows.append(
                    (
                        seq,
                        digest,
                        prev,
                        j.content_hash,
                        "",
                        j.hold.account,
                        j.beneficiaries.model_id,
                        j.amount,
                        None,
                        j.text,
                        stamp,
                    )
                )
                for key, wei in j.earnings:
                    earnings[key] += wei
                for key, wei in j.pools:
                    pools[key] += wei
                debits[j.hold.account] += j.amount
                consumed[j.hold.account] += j.hold.amount
                links.append((seq, digest, prev))
                prev = digest
            head = signer.sign(prev)  # the group's last hash: commits to every place in it
            receipt_rows[-1] = (*receipt_rows[-1][:4], head, *receipt_rows[-1][5:])
            group_head = (seq, prev, head)
            results: list[SignedReceipt | BaseException] = [
                SignedReceipt(seq, j.text, digest, before, j.content_hash, group_head)
                for j, (seq, digest, before) in zip(jobs, links, strict=True)
            ]
            insert_rows(conn, ReceiptRow.__table__, RECEIPT_COLUMNS, receipt_rows)
            insert_many(
                conn,
                EarningRow.__table__,
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
            if pools:
                insert_many(
                    conn,
                    PoolRow.__table__,
                    [
                        {
                            "receipt_seq": first_seq,
                            "set_hash": h,
                            "role": r,
                            "model_id": m,
                            "amount": v,
                        }
                        for (h, r, m), v in pools.items()
                    ],
                )
            _, used = debit(s, debits, stamp, consumed, self.book.node_id)
        self._stored_sets.update(new_sets)
        return results, used
