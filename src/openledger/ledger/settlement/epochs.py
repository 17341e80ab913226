"""Epoch settlement: receipts → cumulative earnings → Merkle root on chain, exactly once.

``close()`` walks one epoch through four steps; each step's effect is recorded (in the
database, or on chain where the chain is the truth) before the next starts, and each step
first checks whether it already happened, so killing the process anywhere and running
``close()`` again finishes the epoch and settles it exactly once:

1. **seal** (one transaction): the receipts not yet in an epoch get the next epoch number;
   the pooled stakers' and unattributed parts of those receipts are divided over their
   beneficiary sets (``pricing.divide_pools``) and recorded as earnings; so are the datanet
   access fees recorded since the last epoch (``ledger.access``: signed by the operator
   here, their pools divided the same way; the fees are already in the distributor);
   cumulative earnings per account (all earlier epochs plus this one), their Merkle tree,
   its root and the receipts' head hash are stored. No receipts and no access fees:
   nothing happens.
2. **collect**: the epoch's fees, per paying account in batches of 256, move from the
   escrow to the RewardDistributor (``collect(epoch, batch, …)``). The escrow refuses a
   batch twice, and each batch is checked with ``isCollected`` before it is sent.
3. **post**: ``postRoot(epoch, root, total, receipts_head)`` unless ``epochs(epoch)`` on
   chain already shows this root.
4. **settle**: the epoch is marked settled.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from eth_account.signers.local import LocalAccount
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from openledger.chain.deploy import Contracts
from openledger.chain.merkle import MerkleTree
from openledger.errors import ConflictError, NotFoundError, TransactionRevertedError
from openledger.ledger import access
from openledger.ledger.credit.events import credit_row
from openledger.ledger.pricing.params import ParamsCache
from openledger.ledger.receipts.canonical import GENESIS, ReceiptSigner, hex32
from openledger.ledger.settlement import beneficiaries as bene
from openledger.store.db import WRITE_LOCK_KEY, Database
from openledger.store.ledger_tables import (
    AccessRow,
    CreditRow,
    EarningRow,
    EpochRow,
    ReceiptRow,
)

COLLECT_BATCH = 256  # the escrow's _MAX_BATCH
Hook = Callable[[str], None]


class EpochService:
    def __init__(
        self,
        db: Database,
        contracts: Callable[[], Contracts],
        params: ParamsCache,
        operator: Callable[[], LocalAccount],
        *,
        after_step: Hook | None = None,
    ) -> None:
        self.db = db
        self._contracts = contracts
        self.params = params
        self._operator = operator
        self.after_step = after_step  # tests inject a crash after a named step

    def _step(self, name: str) -> None:
        if self.after_step is not None:
            self.after_step(name)

    # ------------------------------------------------------------------ close

    def close(self) -> dict[str, Any]:
        """Settle the open epoch (resuming one a crash left half done); see the module doc.
        Returns the epoch's document, or ``{"status": "nothing to settle"}``."""
        epoch = self._unfinished() or self._seal()
        if epoch is None:
            return {"status": "nothing to settle", "epoch": None}
        number = epoch.number
        if epoch.status == "sealed":
            self._collect(epoch)
            epoch = self.get_row(number)
        if epoch.status == "collected":
            self._post(epoch)
            epoch = self.get_row(number)
        if epoch.status == "posted":
            with self.db.locked_session(WRITE_LOCK_KEY) as s:
                row = s.get(EpochRow, number)
                row.status = "settled"
                row.settled_at = datetime.now(UTC)
            self._step("settled")
        return self.get(number)

    def _unfinished(self) -> EpochRow | None:
        with self.db.session() as s:
            row = s.scalars(
                select(EpochRow).where(EpochRow.status != "settled").order_by(EpochRow.number)
            ).first()
            if row is not None:
                s.expunge(row)
            return row

    def _seal(self) -> EpochRow | None:
        signer: list[ReceiptSigner] = []  # the operator's key, only once access fees wait

        def sign(content_hash: str) -> str:
            if not signer:
                signer.append(ReceiptSigner(bytes(self._operator().key)))
            return signer[0].sign(content_hash)

        if self.unsettled_accesses():  # unlock the key before taking the write lock
            sign(GENESIS)
        with self.db.locked_session(WRITE_LOCK_KEY) as s:
            if s.scalars(select(EpochRow).where(EpochRow.status != "settled")).first():
                return None  # another process sealed one meanwhile; the caller retries
            first, last, count = s.execute(
                select(
                    func.min(ReceiptRow.seq), func.max(ReceiptRow.seq), func.count(ReceiptRow.seq)
                ).where(ReceiptRow.epoch.is_(None))
            ).one()
            accesses = access.unsealed_count(s)
            if not count and not accesses:
                return None
            prev = s.scalars(select(EpochRow).order_by(EpochRow.number.desc())).first()
            number = prev.number + 1 if prev else 1
            leaves = {a: int(v) for a, v in (prev.leaves if prev else {}).items()}
            charges: dict[str, int] = defaultdict(int)
            fees = 0
            for payer, fee in s.execute(
                select(ReceiptRow.payer, ReceiptRow.fee).where(ReceiptRow.epoch.is_(None))
            ):
                charges[payer] += fee
                fees += fee
            if count:
                self._divide_pools(s, int(last))
            for account, amount in s.execute(
                select(EarningRow.account, EarningRow.amount)
                .join(ReceiptRow, ReceiptRow.seq == EarningRow.receipt_seq)
                .where(ReceiptRow.epoch.is_(None))
            ):
                leaves[account] = leaves.get(account, 0) + amount
            if accesses:
                for account, amount in access.seal(s, number, sign).items():
                    leaves[account] = leaves.get(account, 0) + amount
            if count:
                head = s.execute(select(ReceiptRow.hash).where(ReceiptRow.seq == last)).scalar_one()
            else:  # only access fees: the receipts' chain stays where the last epoch left it
                head = prev.head_hash if prev else GENESIS
                first = prev.last_seq + 1 if prev else 1
                last = prev.last_seq if prev else 0
            tree = MerkleTree.from_amounts(leaves)
            s.execute(update(ReceiptRow).where(ReceiptRow.epoch.is_(None)).values(epoch=number))
            row = EpochRow(
                number=number,
                status="sealed",
                first_seq=int(first),
                last_seq=int(last),
                receipt_count=int(count),
                head_hash=head,
                fees=fees,
                root=hex32(tree.root),
                total=sum(tree.amounts.values()),
                leaves={a: str(v) for a, v in tree.amounts.items()},
                charges={a: str(v) for a, v in sorted(charges.items())},
                collect_txs=[],
                post_tx="",
            )
            s.add(row)
            s.flush()
            s.expunge(row)
        self._step("sealed")
        return row

    @staticmethod
    def _divide_pools(s: Session, last_seq: int) -> None:
        """Divide the pools of the unsealed receipts over their beneficiary sets and record
        the shares as earnings of the epoch's last receipt (inside the seal's transaction)."""
        shares: dict[tuple, int] = defaultdict(int)
        for model_id, p in bene.divide_open_pools(s):
            shares[(p.account, p.role, model_id, p.datanet, p.contribution)] += p.amount
        if not shares:
            return
        s.execute(
            EarningRow.__table__.insert(),
            [
                {
                    "receipt_seq": last_seq,
                    "account": a,
                    "role": r,
                    "amount": v,
                    "model_id": m,
                    "datanet_id": d,
                    "contribution_id": c,
                }
                for (a, r, m, d, c), v in shares.items()
            ],
        )

    def _collect(self, epoch: EpochRow) -> None:
        escrow = self._contracts().escrow
        operator = self._operator()
        items = sorted((a, int(v)) for a, v in epoch.charges.items() if int(v) > 0)
        batches = [items[i : i + COLLECT_BATCH] for i in range(0, len(items), COLLECT_BATCH)]
        for b, batch in enumerate(batches):
            if escrow.is_collected(epoch.number, b):
                continue
            try:
                tx = escrow.collect(
                    operator, epoch.number, b, [a for a, _ in batch], [v for _, v in batch]
                )
            except TransactionRevertedError as exc:
                if "already collected" not in exc.reason:
                    raise self._collect_failed(epoch, b, exc) from exc
                continue
            with self.db.locked_session(WRITE_LOCK_KEY) as s:
                row = s.get(EpochRow, epoch.number)
                row.collect_txs = [*(row.collect_txs or []), tx.tx_hash]
            self._step(f"collected:{b}")
        with self.db.locked_session(WRITE_LOCK_KEY) as s:
            row = s.get(EpochRow, epoch.number)
            if row.status != "sealed":
                return
            for account, amount in items:
                credit = credit_row(s, account)
                credit.collected = credit.collected + amount
            row.status = "collected"
        self._step("collected")

    def _collect_failed(
        self, epoch: EpochRow, batch: int, exc: TransactionRevertedError
    ) -> Exception:
        return ConflictError(
            f"epoch {epoch.number}: the escrow refused fee batch {batch}: {exc.reason}.",
            field="epoch",
            value=epoch.number,
            fix=(
                "an account's escrow balance is below what it was charged (a withdrawal "
                "completed before the epoch closed?): check the credit of the accounts of "
                "this epoch, then close the epoch again."
                if "insufficient" in exc.reason
                else "settle with the key the escrow names as its operator (`operator()`), "
                "or have the owner call setOperator; then close the epoch again."
            ),
        )

    def _post(self, epoch: EpochRow) -> None:
        distributor = self._contracts().rewards
        root, _total, _head, _posted = distributor.epochs(epoch.number)
        tx_hash = ""
        if hex32(root) != epoch.root:
            pending_epoch, _, ready_at = distributor.pending_root()
            if ready_at and ready_at > self._contracts().client.timestamp():
                wait = ready_at - self._contracts().client.timestamp()
                raise ConflictError(
                    f"epoch {epoch.number} is sealed and its fees are collected, but the root "
                    f"of epoch {pending_epoch} is still in its activation delay for {wait} s "
                    f"(until {datetime.fromtimestamp(ready_at, UTC).isoformat()}).",
                    field="epoch",
                    value=epoch.number,
                    fix="close the epoch again after that time (the node's epoch timer "
                    "retries by itself); nothing is lost meanwhile.",
                )
            tx = distributor.post_root(
                self._operator(), epoch.number, epoch.root, epoch.total, epoch.head_hash
            )
            tx_hash = tx.tx_hash
        with self.db.locked_session(WRITE_LOCK_KEY) as s:
            row = s.get(EpochRow, epoch.number)
            row.status = "posted"
            row.post_tx = tx_hash or row.post_tx
        self._step("posted")

    # ------------------------------------------------------------------ reads

    def get_row(self, number: int) -> EpochRow:
        with self.db.session() as s:
            row = s.get(EpochRow, number)
            if row is None:
                raise NotFoundError(
                    f"no epoch {number} on this node.",
                    field="epoch",
                    value=number,
                    fix="name one of the node's epochs.",
                )
            s.expunge(row)
            return row

    def get(self, number: int) -> dict[str, Any]:
        doc = self.get_row(number).doc()
        with self.db.session() as s:
            return {**doc, **access.epoch_summary(s, number)}

    def list(self) -> list[dict[str, Any]]:
        with self.db.session() as s:
            return [
                {**r.doc(), **access.epoch_summary(s, r.number)}
                for r in s.scalars(select(EpochRow).order_by(EpochRow.number))
            ]

    def latest_settled(self) -> EpochRow | None:
        with self.db.session() as s:
            row = s.scalars(
                select(EpochRow)
                .where(EpochRow.status == "settled")
                .order_by(EpochRow.number.desc())
            ).first()
            if row is not None:
                s.expunge(row)
            return row

    def unsettled_receipts(self) -> int:
        with self.db.session() as s:
            return int(
                s.execute(
                    select(func.count(ReceiptRow.seq)).where(ReceiptRow.epoch.is_(None))
                ).scalar_one()
            )

    def unsettled_accesses(self) -> int:
        """Access fees recorded but not in an epoch yet (``ledger.access``)."""
        with self.db.session() as s:
            return access.unsealed_count(s)

    def due(self, now: datetime | None = None) -> bool:
        """Whether the epoch timer should close an epoch now: one is half done; or receipts
        wait and ``epoch_length`` seconds passed since the last epoch (or the first one); or
        an account that owes uncollected fees asked to withdraw and half its withdrawal
        delay has passed (its fees must leave the escrow before its withdrawal can)."""
        if self._unfinished() is not None:
            return True
        if not self.unsettled_receipts() and not self.unsettled_accesses():
            return False
        now = now or datetime.now(UTC)
        if self._withdrawal_soon(now):
            return True
        with self.db.session() as s:
            last = s.execute(select(func.max(EpochRow.created_at))).scalar_one()
            if last is None:
                last = min(
                    (
                        t
                        for t in (
                            s.execute(
                                select(func.min(ReceiptRow.created_at)).where(
                                    ReceiptRow.epoch.is_(None)
                                )
                            ).scalar_one(),
                            s.execute(
                                select(func.min(AccessRow.created_at)).where(
                                    AccessRow.epoch.is_(None)
                                )
                            ).scalar_one(),
                        )
                        if t is not None
                    ),
                    key=lambda t: t.replace(tzinfo=t.tzinfo or UTC),
                )
        if last.tzinfo is None:
            last = last.replace(tzinfo=UTC)
        return (now - last).total_seconds() >= self.params.current().epoch_length

    def _withdrawal_soon(self, now: datetime) -> bool:
        margin = self.params.current().escrow_withdraw_delay // 2
        with self.db.session() as s:
            rows = s.scalars(select(CreditRow).where(CreditRow.withdrawal_ready_at > 0)).all()
            return any(
                r.charged > r.collected and r.withdrawal_ready_at - now.timestamp() <= margin
                for r in rows
            )
