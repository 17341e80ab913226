"""Paid inference: credit holds before compute, then fee, split, receipt and accounting.

The flow of one request (``api/routes/openai.py`` and ``demo`` use the same calls):

1. ``reserve(account, model, prompt_tokens, max_tokens)`` before any compute: the largest fee
   the request can cost is held against the account's credit, or PaymentRequiredError (402).
2. the engine generates; attribution traces the completion to contributions.
3. ``charge(hold, completion_tokens, ...)`` (or ``submit``, which does not wait): the exact
   fee, its split and the receipt body with its content hash are computed (in the pricing
   process); then the writer links it into the hash chain and commits it with the credit
   debit; the hold is released.

The pricing stage (``pricer``: one thread for every request thread, the pure-Python work in
the pricing process on another core) hands priced charges to one writer thread, which commits
whatever requests are waiting (gathering them for a few ms while they keep arriving) as one
transaction under the database write lock, and the operator signs the hash of each group's
last receipt, so the chain has no gaps or forks and a credit is never spent twice, even
with other processes writing. Holds are taken in memory against the credit this node has
*leased* in the database (``ledger.leases``: under the database's write lock, so every node
on one database together never holds more than an account has); the writer consumes the
lease of each hold it settles in the transaction of its receipt.
"""

from __future__ import annotations

import itertools
import logging
import os
import secrets
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from queue import Empty, SimpleQueue
from typing import Any, NamedTuple

from sqlalchemy import select

from openledger.attribution.types import Attribution
from openledger.errors import PaymentRequiredError, StoreError, ValidationError
from openledger.ledger import beneficiaries as bene
from openledger.ledger.credits import checksum
from openledger.ledger.leases import (
    IDLE_RETURN_S,
    LEASE_TTL_S,
    RENEW_S,
    CreditLeases,
    release_node,
)
from openledger.ledger.params import ParamsCache
from openledger.ledger.pricer import Prepared, Pricer
from openledger.ledger.pricing import Members, fee
from openledger.ledger.receipt_content import (
    AgentTerms,
    AttributionInput,
    Charge,
    ComputeProof,
    Priced,
    Terms,
    price_charge,
)
from openledger.ledger.receipt_ids import receipt_ids
from openledger.ledger.receipt_reads import list_receipts, receipt_doc
from openledger.ledger.receipts import (
    GENESIS,
    ReceiptSigner,
    SignedReceipt,
    canonical_json,
    hash_hex,
    link_hash,
)
from openledger.ledger.writing import (
    PendingReceipt,
    debit,
    insert_many,
    insert_rows,
    now_iso,
    store_sets,
)
from openledger.store.db import WRITE_LOCK_KEY, Database
from openledger.store.ledger_tables import (
    CreditRow,
    EarningRow,
    PoolRow,
    ReceiptRow,
)
from openledger.units import fmt_open as format_open

log = logging.getLogger(__name__)

MAX_GROUP = 256  # receipts committed in one transaction at most
GATHER_S = 0.01  # how long a group under way may wait for requests that keep arriving
SET_TTL = 60.0  # seconds a model's beneficiary set is reused before it is read again
RECEIPT_COLUMNS = ["seq", "hash", "prev_hash", "content_hash", "head_signature", "payer",
                   "model_id", "fee", "epoch", "body", "created_at"]  # fmt: skip


def credit_short(account: str, available: int, cost: str, *, fewer: str) -> PaymentRequiredError:
    """The 402 of a request ``account``'s credit (``available`` wei) cannot cover: ``cost``
    says what the request can cost, ``fewer`` what the caller may ask less of."""
    have = max(available, 0)
    return PaymentRequiredError(
        f"account {account} has {format_open(have)} OPEN of inference credit; {cost}.",
        field="credit",
        value=str(have),
        fix="deposit OPEN into the InferenceEscrow (`openledger deposit AMOUNT --as ACCOUNT`) "
        f"or ask for {fewer}.",
    )


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
    agent: AgentTerms | None = None  # a call to this agent: its price is held and charged too
    inner: tuple[str, ...] = ()  # the receipts of the calls the agent made for this one
    compute: ComputeProof | None = None  # the provider that served it (docs/providers.md)


@dataclass(frozen=True)
class _Set:
    """A model's beneficiary set as priced: its hash, members and stored form."""

    hash: str
    model_id: int
    members: Members
    body: str
    read_at: float


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
    beneficiaries: _Set
    earnings: list[tuple[tuple, int]]  # ((account, role, model, datanet, contribution), wei)
    pools: list[tuple[tuple, int]]  # ((set hash, role, model), wei)
    done: PendingReceipt


def request_hash(payer: str, model: str, request: Mapping[str, Any]) -> str:
    """keccak256 of the canonical JSON of what was asked, by whom, of which model."""
    return hash_hex(canonical_json({"payer": payer, "model": model, "request": request}))


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
        pricing_process: bool = True,
    ) -> None:
        self.db = db
        self.params = params
        self._signer_source = signer
        self._signer: ReceiptSigner | None = None
        self.chain_id = chain_id
        self.credit_ttl = credit_ttl
        self._clock = clock or time.monotonic
        self._lock = threading.Lock()  # leases + holds
        self._held: dict[str, int] = defaultdict(int)  # in flight, by account
        self._lease: dict[str, int] = defaultdict(int)  # leased to this node (the database's)
        self._last_use: dict[str, float] = {}
        self._lease_lock = threading.Lock()  # one lease taken at a time
        self.node_id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._leases = CreditLeases(db, self.node_id)
        self._keeper: threading.Thread | None = None
        self._keeper_stop = threading.Event()
        self._hold_ids = itertools.count(1)
        self._queue: SimpleQueue[_Job | None] = SimpleQueue()
        self._terms: dict[tuple, Terms] = {}
        self._pricer = Pricer(self._prepare, self._deliver, self._refuse, max_batch=MAX_GROUP,
                              use_process=pricing_process)  # fmt: skip
        self._writer: threading.Thread | None = None
        self._writer_lock = threading.Lock()
        self._signer_lock = threading.Lock()
        self._sets: dict[tuple[int, tuple[str, ...]], _Set] = {}
        self._stored_sets: set[str] = set()  # beneficiary-set hashes known to be stored
        self.metrics: Any = None  # NodeMetrics (hold_taken, hold_refused, ledger_committed)

    def observe(self, metrics: Any) -> None:
        """Report holds, commits and pricing batches to ``metrics`` (the node's)."""
        self.metrics = metrics
        self._pricer.on_batch = metrics.priced_batch

    # ------------------------------------------------------------------ credit

    def credit(self, account: str) -> dict[str, Any]:
        """The account's credit as the node sees it (wei as decimal strings)."""
        account = checksum(account)
        with self.db.session() as s:
            row = s.get(CreditRow, account)
            values = {
                k: getattr(row, k) if row else 0
                for k in ("deposited", "withdrawn", "charged", "collected", "pending_withdrawal")
            }
            ready_at = row.withdrawal_ready_at if row else 0
        with self._lock:
            held = self._held.get(account, 0)
            leased = self._lease.get(account, 0)
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
            "leased": str(leased),
            "available": str(available - held),
        }

    def reserve(
        self, account: str, model: dict[str, Any], prompt_tokens: int, max_tokens: int,
        *, agent: AgentTerms | None = None,
    ) -> Hold:  # fmt: skip
        """Hold the largest fee this request can cost, or raise PaymentRequiredError (402):
        in memory against this node's lease, leasing more from the database when it runs
        short (ledger/leases.py). A call to ``agent`` holds its price on top."""
        account = checksum(account)
        price_in, price_out = int(model["price_in"]), int(model["price_out"])
        amount = fee(prompt_tokens, max_tokens, price_in, price_out)
        if agent is not None:
            amount += agent.price
        hold, available = self._reserve(account, amount, model, prompt_tokens, max_tokens)
        if hold is not None:
            hold.agent = agent
            return hold
        if self.metrics is not None:
            self.metrics.hold_refused()
        agent_part = (f" plus agent/{agent.name}'s price of {format_open(agent.price)} OPEN"
                      if agent is not None else "")  # fmt: skip
        raise credit_short(
            account, available,
            f"this request can cost up to {format_open(amount)} OPEN ({prompt_tokens} prompt + "
            f"up to {max_tokens} completion tokens at {format_open(price_in)}/"
            f"{format_open(price_out)} OPEN per 1k{agent_part})",
            fewer="fewer tokens (max_tokens)",
        )  # fmt: skip

    def _reserve(self, account: str, amount: int, model: dict[str, Any], prompt_tokens: int,
                 max_tokens: int) -> tuple[Hold | None, int]:  # fmt: skip
        """A hold of ``amount``, or None and the credit available when it is short."""
        hold = self._hold_leased(account, amount, model, prompt_tokens, max_tokens)
        if hold is not None:
            return hold, 0
        with self._lease_lock:
            hold = self._hold_leased(account, amount, model, prompt_tokens, max_tokens)
            if hold is not None:
                return hold, 0
            with self._lock:
                free = self._lease[account] - self._held[account]
            leased, unheld = self._leases.take(account, amount - free)
            with self._lock:
                self._lease[account] += leased
            self._ensure_keeper()
            hold = self._hold_leased(account, amount, model, prompt_tokens, max_tokens)
            if hold is not None:
                return hold, 0
        return None, free + unheld

    def _hold_leased(self, account: str, amount: int, model: dict[str, Any],
                     prompt_tokens: int, max_tokens: int) -> Hold | None:  # fmt: skip
        with self._lock:
            if self._lease[account] - self._held[account] < amount:
                return None
            self._held[account] += amount
            self._last_use[account] = self._clock()
            hold_id = next(self._hold_ids)
        if self.metrics is not None:
            self.metrics.hold_taken()
        return Hold(account, model, prompt_tokens, max_tokens, amount, hold_id)

    # -- leases: returned when idle, renewed while held, others' expired -------------------
    def _ensure_keeper(self) -> None:
        if self._keeper is None or not self._keeper.is_alive():
            self._keeper_stop.clear()
            self._keeper = threading.Thread(target=self._keep_leases, name="ledger-leases",
                                            daemon=True)  # fmt: skip
            self._keeper.start()

    def _keep_leases(self) -> None:
        last_expiry = 0.0
        while not self._keeper_stop.wait(RENEW_S):
            try:
                in_db = self._leases.renew()
                with self._lock:  # a lease cut in the database (a withdrawal) shrinks here
                    for account, amount in list(self._lease.items()):
                        self._lease[account] = min(amount, in_db.get(account, 0))
                self.return_idle_leases()
                if self._clock() - last_expiry >= LEASE_TTL_S / 3:
                    self._leases.expire()
                    last_expiry = self._clock()
            except Exception:  # the database went away for a moment: next round
                log.exception("keeping the credit leases failed")

    def return_idle_leases(self, idle_s: float = IDLE_RETURN_S) -> None:
        """Give back the part of each lease no request holds, for accounts idle ``idle_s``."""
        now = self._clock()
        with self._lock:
            spare = {a: self._lease[a] - self._held[a] for a in list(self._lease)
                     if self._lease[a] > self._held[a]
                     and now - self._last_use.get(a, 0.0) >= idle_s}  # fmt: skip
            for account, amount in spare.items():
                self._lease[account] -= amount  # no hold can take it while it goes back
        if spare:
            self._leases.give_back(spare)

    def holds_in_flight(self) -> tuple[int, int]:
        """(wei held, accounts with holds) for requests not yet charged or released."""
        with self._lock:
            held = [v for v in self._held.values() if v > 0]
        return sum(held), len(held)

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
        done = self.submit(
            hold, completion_tokens, request_hash=request_hash, attribution=attribution
        )
        try:
            return done.result(timeout=timeout)
        except TimeoutError as exc:
            raise StoreError(
                f"the ledger did not record the charge of hold #{hold.id} within {timeout} s; "
                "it stays queued and will be recorded (its credit stays held).",
                field="ledger",
                value=hold.id,
                fix="check the database is reachable and not locked by another process.",
            ) from exc

    def submit(
        self,
        hold: Hold,
        completion_tokens: int,
        *,
        request_hash: str,
        attribution: Attribution | None,
    ) -> PendingReceipt:
        """Queue the charge of ``hold`` for pricing; returns at once with the pending
        receipt, which holds the signed receipt once its group has committed (or the error
        that refused it: a charge that cannot be priced or committed releases its hold).
        For callers that keep many charges in flight without a thread each (``charge``
        waits on it)."""
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
        done = PendingReceipt()
        self._ensure_writer()
        self._pricer.submit(_Charge(hold, completion_tokens, request_hash, attribution, done))
        return done

    def _refuse(self, c: _Charge, exc: BaseException) -> None:
        """A charge that cannot be priced: its hold is released and its request told why
        (once: a charge already answered is left alone)."""
        with self._lock:
            if not c.hold.settled:
                c.hold.settled = True
                self._held[c.hold.account] -= c.hold.amount
        if not c.done.done():
            c.done.settle(None, exc)

    def _deliver(self, c: _Charge, bset: _Set, priced: Priced | tuple) -> None:
        self._queue.put(self._job(c, bset, priced))

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

    def close(self) -> None:
        """Record every charge already submitted, then stop the pricer, the pricing process
        and the writer."""
        self._pricer.close()  # every submitted charge is in the writer's queue (or refused)
        with self._writer_lock:
            if self._writer is not None and self._writer.is_alive():
                self._queue.put(None)
                self._writer.join(timeout=30)
            self._writer = None
        if self._keeper is not None:
            self._keeper_stop.set()
            self._keeper.join(timeout=5)
            self._keeper = None
            with self._lock:
                self._lease.clear()
            release_node(self.db, self.node_id)  # what this node leased goes back

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
            self._commit_group(jobs)
            if stop:
                return

    def _commit_group(self, jobs: list[_Job]) -> None:
        try:
            results, used = self._write(jobs)
        except BaseException as exc:  # the transaction failed: every waiting request fails
            self._stored_sets.clear()  # a set first stored in the rolled-back transaction
            results, used = [exc] * len(jobs), {}
        with self._lock:
            for account, amount in used.items():  # the leases these holds consumed
                self._lease[account] -= amount
            for j in jobs:  # charged or failed: either way the hold is over
                if not j.hold.settled:
                    j.hold.settled = True
                    self._held[j.hold.account] -= j.hold.amount
        if self.metrics is not None and not isinstance(results[0], BaseException):
            self.metrics.ledger_committed(len(jobs), sum(j.amount for j in jobs))
        for j, r in zip(jobs, results, strict=True):
            if isinstance(r, BaseException):
                j.done.settle(None, r)
            else:
                j.done.settle(r, None)

    def _prepare(self, c: _Charge) -> Prepared:
        """What pricing ``c`` needs: the model's terms (one object per model, parameter
        version and beneficiary set), its beneficiary set and the charge itself."""
        model = c.hold.model
        params = self.params.current()
        bset = self._beneficiaries(model)
        key = (bset.hash, bset.model_id, model["name"], model["adapter_sha256"], model["base"],
               model["owner"], model["price_in"], model["price_out"], params.split,
               params.treasury, c.hold.agent)  # fmt: skip
        terms = self._terms.get(key)
        if terms is None:
            signer = self._signer or self._load_signer()
            terms = Terms(self.chain_id, signer.address, params.split, params.treasury,
                          bset.hash, bset.model_id, model["name"], model["adapter_sha256"],
                          model["base"], model["owner"], int(model["price_in"]),
                          int(model["price_out"]), c.hold.agent)  # fmt: skip
            if len(self._terms) > 1024:
                self._terms.clear()
            self._terms[key] = terms
        a = c.attribution
        attribution = None if a is None else AttributionInput(a.method, a.index_hash, a.weights(),
                                                              a.query_hash)  # fmt: skip
        charge = Charge(c.hold.account, c.hold.prompt_tokens, c.completion_tokens,
                        c.request_hash, attribution, now_iso(), c.hold.inner,
                        c.hold.compute)  # fmt: skip
        return Prepared(terms, bset.members, charge, bset)

    def _price(self, c: _Charge) -> _Job:
        """Price one charge in this thread (raises what refuses it)."""
        p = self._prepare(c)
        return self._job(c, p.context, price_charge(p.terms, p.members, p.charge))

    @staticmethod
    def _job(c: _Charge, bset: _Set, p: Priced | tuple) -> _Job:
        """The priced charge for the writer (``p`` a ``Priced``, or one as a plain tuple)."""
        text, content_hash, amount, earnings, pools = p
        return _Job(c.hold, text.decode(), content_hash, amount, bset, earnings, pools, c.done)

    def _load_signer(self) -> ReceiptSigner:
        with self._signer_lock:
            if self._signer is None:
                self._signer = self._signer_source()
            return self._signer

    def _write(
        self, jobs: list[_Job]
    ) -> tuple[list[SignedReceipt | BaseException], dict[str, int]]:
        signer = self._signer or self._load_signer()
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
                receipt_rows.append((seq, digest, prev, j.content_hash, "", j.hold.account,
                                     j.beneficiaries.model_id, j.amount, None, j.text,
                                     stamp))  # fmt: skip
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
            _, used = debit(s, debits, stamp, consumed, self.node_id)
        self._stored_sets.update(new_sets)
        return results, used

    def _beneficiaries(self, model: dict[str, Any]) -> _Set:
        """The model's training contributions and the hash of that set.

        Cached per model and snapshot roots for ``SET_TTL`` seconds: stakes of approved
        contributions change only when one is withdrawn after the unlock delay (possibly by
        another process), so a minute of staleness moves no wei that was not already due.
        The writer stores a set (once per hash) in the transaction of its first receipt."""
        key = (int(model["id"]), tuple(model.get("snapshot_roots") or ()))
        cached = self._sets.get(key)
        now = self._clock()
        if cached is not None and now - cached.read_at < SET_TTL:
            return cached
        with self.db.session() as s:
            members = bene.training_contributions(s, key[1])
        body = bene.set_body(key[0], members)
        digest = bene.set_hash(body)
        fresh = _Set(digest, key[0], Members.of(members), canonical_json(body).decode(), now)
        self._sets[key] = fresh
        return fresh

    def invalidate_beneficiaries(self) -> None:
        self._sets.clear()

    def invalidate_credit(self, account: str | None = None) -> None:
        """Chain events changed credit: nothing is cached (leases read the database), kept
        for the callers that say so."""

    # ------------------------------------------------------------------ reads

    # ------------------------------------------------------------------ reads

    def receipt(self, ref: int | str) -> dict[str, Any]:
        """A stored receipt by public id (``rc_…``), sequence number or hash, with the proof
        of its place (``receipt_reads``)."""
        return receipt_doc(self.db, ref)

    def public_id(self, seq: int) -> str:
        """The unguessable public id of receipt ``seq`` (``receipt_ids``)."""
        return receipt_ids(self.db).public(seq)

    def receipts(self, *, payer: str | None = None, offset: int = 0, limit: int = 50) -> dict:
        return list_receipts(self.db, payer=payer, offset=offset, limit=limit)
