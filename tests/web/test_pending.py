"""Prepared wallet writes (auth/prepared.py's PreparedWrites) in a real database, without a
chain: bound to the account, expiring, the hash count checked before any look-up, at most
20 waiting per account, and kept in the database, so another PreparedWrites on the same
database (a restart, another API process) sees and takes them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from openledger.auth.prepared import MAX_PER_ACCOUNT, PENDING_TTL, PreparedWrites
from openledger.chain.calls import Call, Plan, Resume
from openledger.errors import NotFoundError, ValidationError
from openledger.store.db import Database

ALICE = "0x" + "a1" * 20
BOB = "0x" + "b2" * 20
T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
TX = "0x" + "11" * 32


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    db = Database.open(f"sqlite:///{tmp_path / 'node.db'}")
    yield db
    db.dispose()


def _writes(db: Database, clock: Clock, finished: list[Any]) -> PreparedWrites:
    client: Any = SimpleNamespace(expected_chain_id=31337)

    def finisher(kind: str) -> Any:
        return lambda args, payload, results, sig: finished.append((kind, args)) or {}

    return PreparedWrites(db, lambda: client, finisher, clock=clock)


def _plan(what: str = "delegate") -> Plan:
    client: Any = SimpleNamespace(expected_chain_id=31337)
    call = Call(to="0x" + "cc" * 20, data="0x1234", label="delegate", contract="OpenToken")
    resume = Resume("governance.finish_delegate", {"delegatee": BOB})
    return Plan(client, ALICE, [call], lambda rs, sig: {}, what=what, resume=resume)


def test_an_offer_is_the_unsigned_transactions_for_the_account(db: Database) -> None:
    clock = Clock()
    offer = _writes(db, clock, []).offer(ALICE, _plan())
    assert offer["txs"] == [
        {
            "from": ALICE,
            "to": "0x" + "cc" * 20,
            "data": "0x1234",
            "value": "0x0",
            "chainId": hex(31337),
            "label": "delegate",
            "contract": "OpenToken",
        }
    ]
    assert offer["sign"] is None and offer["what"] == "delegate"
    assert offer["expires"] == int((T0 + PENDING_TTL).timestamp())
    assert len(offer["pending"]) >= 24  # 18 random bytes, URL-safe


def test_a_plan_a_wallet_cannot_finish_is_not_offered(db: Database) -> None:
    plan = _plan()
    plan.resume = None
    with pytest.raises(TypeError, match="cannot be finished by a wallet"):
        _writes(db, Clock(), []).offer(ALICE, plan)
    plan.resume = Resume("escrow.drain_everything", {})
    with pytest.raises(TypeError):
        _writes(db, Clock(), []).offer(ALICE, plan)


def test_only_the_account_within_the_time_and_with_every_hash(db: Database) -> None:
    clock = Clock()
    finished: list[Any] = []
    book = _writes(db, clock, finished)
    pid = book.offer(ALICE, _plan())["pending"]
    with pytest.raises(NotFoundError):  # another account cannot complete alice's write
        book.submit(BOB, pid, [TX], None)
    with pytest.raises(ValidationError, match="takes 1 transaction"):
        book.submit(ALICE, pid, [], None)
    with pytest.raises(ValidationError, match="at most 8") as too_many:  # before any look-up
        book.submit(ALICE, pid, [TX] * 9, None)
    assert too_many.value.field == "hashes"
    # a refused report puts the write back: it still waits for alice
    assert [w["pending"] for w in book.waiting(ALICE)] == [pid]
    assert book.waiting(BOB) == []
    clock.now += PENDING_TTL + timedelta(seconds=1)
    with pytest.raises(NotFoundError, match="expired"):
        book.submit(ALICE, pid, [TX], None)
    assert book.waiting(ALICE) == [] and finished == []


def test_an_account_keeps_at_most_20_waiting_the_oldest_go(db: Database) -> None:
    clock = Clock()
    book = _writes(db, clock, [])
    ids = []
    for i in range(MAX_PER_ACCOUNT + 3):
        clock.now = T0 + timedelta(seconds=i)
        ids.append(book.offer(ALICE, _plan(f"write {i}"))["pending"])
    book.offer(BOB, _plan("bob's"))
    waiting = book.waiting(ALICE)
    assert len(waiting) == MAX_PER_ACCOUNT
    assert [w["pending"] for w in waiting] == ids[::-1][:MAX_PER_ACCOUNT]  # newest first
    assert [w["what"] for w in book.waiting(BOB)] == ["bob's"]


def test_a_prepared_write_survives_a_restart_and_is_taken_by_another_process(
    db: Database, tmp_path: Path
) -> None:
    clock = Clock()
    pid = _writes(db, clock, []).offer(ALICE, _plan())["pending"]
    db.dispose()  # the process that prepared it is gone
    again = Database.open(f"sqlite:///{tmp_path / 'node.db'}")
    try:
        other = _writes(again, clock, [])
        assert [w["pending"] for w in other.waiting(ALICE)] == [pid]
        with pytest.raises(ValidationError, match="takes 1 transaction"):
            other.submit(ALICE, pid, [], None)  # found in the database, checked there
    finally:
        again.dispose()
