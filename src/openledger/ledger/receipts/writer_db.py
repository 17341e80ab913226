"""The ledger writer's database side: pending receipts, rows written straight to the
driver, the group's credit debits and beneficiary sets, the receipts' timestamp."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Table, select
from sqlalchemy.orm import Session

from openledger.ledger.credit.events import new_credit_row
from openledger.ledger.receipts.canonical import SignedReceipt
from openledger.store.ledger_tables import BeneficiarySetRow, CreditLeaseRow, CreditRow

if TYPE_CHECKING:
    from openledger.ledger.settlement.beneficiaries import BeneficiarySet


class PendingReceipt:
    """The receipt of a submitted charge, once its group has committed.

    A lock held until the writer settles it: ``concurrent.futures.Future`` builds a
    Condition per instance, which cost a quarter of the request path's CPU time."""

    __slots__ = ("_done", "_error", "_value")

    def __init__(self) -> None:
        self._done = threading.Lock()
        self._done.acquire()
        self._value: SignedReceipt | None = None
        self._error: BaseException | None = None

    def settle(self, value: SignedReceipt | None, error: BaseException | None) -> None:
        self._value, self._error = value, error
        self._done.release()

    def done(self) -> bool:
        return not self._done.locked()

    def result(self, timeout: float | None = None) -> SignedReceipt:
        """The signed receipt (or the error that refused the charge); TimeoutError if the
        group has not committed within ``timeout`` seconds."""
        if not self._done.acquire(timeout=-1 if timeout is None else timeout):
            raise TimeoutError
        self._done.release()  # later calls return at once
        if self._error is not None:
            raise self._error
        assert self._value is not None
        return self._value


_stamp: tuple[int, str] = (0, "")


def now_iso() -> str:
    """The current UTC second in ISO 8601, formatted once per second (it is in every
    receipt)."""
    global _stamp
    second = int(time.time())
    if _stamp[0] != second:
        _stamp = (second, datetime.fromtimestamp(second, UTC).isoformat())
    return _stamp[1]


def insert_many(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """``insert_rows`` for rows as dicts (every row with the same keys, in the same order)."""
    if rows:
        insert_rows(conn, table, list(rows[0]), [tuple(r.values()) for r in rows])


def insert_rows(
    conn: Connection, table: Table, names: list[str], rows: list[tuple[Any, ...]]
) -> None:
    """One executemany straight to the driver: the columns' own bind processors (wei as
    text, timestamps as the dialect stores them), without the per-row statement machinery
    of ``conn.execute(table.insert(), rows)``, which was a tenth of the writer's time."""
    if not rows:
        return
    dialect = conn.dialect
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join([mark] * len(names))})"
    procs = [
        (i, f)
        for i, n in enumerate(names)
        if (f := table.c[n].type._cached_bind_processor(dialect)) is not None
    ]
    if procs:
        first = rows[0]
        # a value shared by every row (the group's timestamp) is processed once
        shared = {i: f(first[i]) for i, f in procs if all(r[i] is first[i] for r in rows)}
        each = [(i, f) for i, f in procs if i not in shared]
        out = []
        for row in rows:
            values = list(row)
            for i, v in shared.items():
                values[i] = v
            for i, f in each:
                values[i] = f(values[i])
            out.append(tuple(values))
        rows = out  # type: ignore[assignment]
    conn.exec_driver_sql(sql, rows)  # type: ignore[arg-type]


def debit(
    s: Session,
    debits: dict[str, int],
    stamp: datetime,
    consumed: dict[str, int] | None = None,
    node: str | None = None,
) -> tuple[dict[str, int], dict[str, int]]:
    """Add each account's charges of the group and consume ``node``'s credit leases by the
    holds they settle (``consumed``, ledger/credit/leases.py); returns the accounts' available
    credit and how much of each of the node's leases was consumed.

    Straight to the driver, like ``insert_rows``: once per group, but SQLAlchemy's
    statement handling of an IN list of a varying length cost more than the debit."""
    t = CreditRow.__table__
    lt = CreditLeaseRow.__table__
    conn = s.connection()
    dialect = conn.dialect
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    accounts = list(debits)
    marks = ", ".join([mark] * len(accounts))
    consumed = consumed or {}
    leased: dict[str, int] = {}
    if consumed and node is not None:
        rows = conn.exec_driver_sql(
            f"SELECT account, amount FROM {lt.name} WHERE node = {mark} AND account IN ({marks})",
            (node, *accounts),
        ).all()
        leased = {a: int(v) for a, v in rows}
    found = conn.exec_driver_sql(
        "SELECT account, deposited, withdrawn, charged, pending_withdrawal, held FROM "
        f"{t.name} WHERE account IN ({marks})",
        tuple(accounts),
    ).all()
    when = t.c.updated_at.type._cached_bind_processor(dialect)
    stamp_value = when(stamp) if when is not None else stamp
    balances: dict[str, int] = {}
    updates = []
    left: dict[str, int] = {}
    used_by: dict[str, int] = {}
    for account, deposited, withdrawn, charged, pending, held in found:  # wei are text
        charged = int(charged) + debits[account]
        used = min(consumed.get(account, 0), leased.get(account, 0))  # a cut lease: less
        if account in leased:
            left[account] = leased[account] - used
            used_by[account] = used
        updates.append((str(charged), str(max(int(held) - used, 0)), stamp_value, account))
        balances[account] = int(deposited) - int(withdrawn) - charged - int(pending)
    if updates:
        conn.exec_driver_sql(
            f"UPDATE {t.name} SET charged = {mark}, held = {mark}, updated_at = {mark} "
            f"WHERE account = {mark}",
            updates,
        )
    if left:
        conn.exec_driver_sql(
            f"UPDATE {lt.name} SET amount = {mark} WHERE account = {mark} AND node = {mark}",
            [(str(v), a, node) for a, v in left.items()],
        )
    for account in debits.keys() - balances.keys():  # charged without a synced deposit
        row = new_credit_row(account)
        row.charged = debits[account]
        row.updated_at = stamp
        s.add(row)
        balances[account] = -debits[account]
    return balances, used_by


def store_sets(conn: Any, sets: dict[str, BeneficiarySet]) -> None:
    t = BeneficiarySetRow.__table__
    stored = set(conn.execute(select(t.c.hash).where(t.c.hash.in_(list(sets)))).scalars())
    missing = [
        {"hash": h, "model_id": x.model_id, "body": x.body, "created_at": datetime.now(UTC)}
        for h, x in sets.items()
        if h not in stored
    ]
    if missing:
        conn.execute(t.insert(), missing)
