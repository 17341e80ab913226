"""Data access: the sync cursor and events move together."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from openledger.errors import ConflictError, ValidationError
from openledger.store import Database, repo
from openledger.store.models import ChainEvent, SyncCursor

ALICE = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
ZERO_TX = "0x" + "00" * 32


def ev(block: int, log: int, name: str = "Transfer", **args: Any) -> repo.EventRecord:
    return repo.EventRecord(
        contract="OpenToken",
        event=name,
        block_number=block,
        log_index=log,
        tx_hash="0x" + f"{block:032x}{log:032x}",
        args=args or {"value": str(block * 1000 + log)},
    )


def list_events(
    s: Session, *, contract: str | None = None, event: str | None = None
) -> list[ChainEvent]:
    """The recorded events (of ``contract`` and ``event`` if given), in chain order."""
    q = select(ChainEvent).order_by(ChainEvent.block_number, ChainEvent.log_index)
    if contract is not None:
        q = q.where(ChainEvent.contract == contract)
    if event is not None:
        q = q.where(ChainEvent.event == event)
    return list(s.scalars(q))


def count_events(db: Database) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(ChainEvent)) or 0


# ---------------------------------------------------------------------------- cursor + events


def test_cursor_starts_empty_and_advances_with_events(db: Database) -> None:
    with db.session() as s:
        assert repo.get_cursor(s, "chain") is None
    with db.session() as s:
        n = repo.record_events_and_advance(s, "chain", [ev(10, 0), ev(10, 1), ev(11, 0)], (11, 0))
    assert n == 3
    with db.session() as s:
        assert repo.get_cursor(s, "chain") == (11, 0)
        rows = list_events(s)
        assert [r.position for r in rows] == [(10, 0), (10, 1), (11, 0)]
        assert rows[0].args == {"value": "10000"}
        assert rows[0].applied_at.tzinfo is not None
    with db.session() as s:
        assert repo.record_events_and_advance(s, "chain", [], (20, 2**31 - 1)) == 0
        assert repo.get_cursor(s, "chain") == (20, 2**31 - 1)


def test_big_numbers_survive_json(db: Database) -> None:
    wei = 10**27 + 1  # beyond 64 bits: stored exactly
    with db.session() as s:
        repo.record_events_and_advance(s, "chain", [ev(1, 0, amount=wei, to=ALICE)], (1, 0))
    with db.session() as s:
        (row,) = list_events(s)
        assert row.args == {"amount": wei, "to": ALICE}


def test_mappings_are_accepted_like_records(db: Database) -> None:
    item = {
        "contract": "DatanetRegistry",
        "event": "Contributed",
        "block_number": 5,
        "log_index": 3,
        "tx_hash": "0x" + "AB" * 32,
        "args": {"datanet": 1},
    }
    with db.session() as s:
        assert repo.record_events_and_advance(s, "chain", [item], (5, 3)) == 1
    with db.session() as s:
        (row,) = list_events(s, contract="DatanetRegistry", event="Contributed")
        assert row.tx_hash == "0x" + "ab" * 32


def test_replaying_events_records_nothing_twice(db: Database) -> None:
    batch = [ev(1, 0), ev(1, 1), ev(2, 5)]
    with db.session() as s:
        assert repo.record_events_and_advance(s, "chain", batch, (2, 5)) == 3
    with db.session() as s:  # the same batch again (e.g. after a restart)
        assert repo.record_events_and_advance(s, "chain", batch, (2, 5)) == 0
    with db.session() as s:  # an overlapping batch with an older cursor
        assert repo.record_events_and_advance(s, "chain", [*batch[1:], ev(2, 6)], (2, 6)) == 1
    with db.session() as s:  # an old range again: the cursor does not move back
        assert repo.record_events_and_advance(s, "chain", batch[:1], (1, 0)) == 0
        assert repo.get_cursor(s, "chain") == (2, 6)
    assert count_events(db) == 4


def test_duplicates_within_a_batch_are_recorded_once(db: Database) -> None:
    with db.session() as s:
        assert repo.record_events_and_advance(s, "chain", [ev(3, 1), ev(3, 1)], (3, 1)) == 1
    assert count_events(db) == 1


def test_a_different_event_at_a_recorded_position_is_a_conflict(db: Database) -> None:
    with db.session() as s:
        repo.record_events_and_advance(s, "chain", [ev(4, 0)], (4, 0))
    other = repo.EventRecord("OpenToken", "Approval", 4, 0, "0x" + "11" * 32, {})
    with pytest.raises(ConflictError, match="block 4 log 0") as info, db.session() as s:
        repo.record_events_and_advance(s, "chain", [ev(4, 1), other], (4, 1))
    assert "resync" in (info.value.fix or "")
    with db.session() as s:
        assert repo.get_cursor(s, "chain") == (4, 0)
    assert count_events(db) == 1


class CursorWriteFailure:
    """Makes the database connection fail on the statement that writes the cursor row."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.seen: list[str] = []

    def _before(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        head = statement.lstrip().upper()
        if head.startswith("INSERT INTO CHAIN_EVENTS"):
            self.seen.append("events")
        if head.startswith(("INSERT INTO SYNC_CURSORS", "UPDATE SYNC_CURSORS")):
            self.seen.append("cursor")
            raise RuntimeError("disk on fire while moving the cursor")

    def arm(self) -> None:
        event.listen(self.db.engine, "before_cursor_execute", self._before)

    def disarm(self) -> None:
        if event.contains(self.db.engine, "before_cursor_execute", self._before):
            event.remove(self.db.engine, "before_cursor_execute", self._before)


@pytest.fixture
def cursor_failure(db: Database) -> Iterator[CursorWriteFailure]:
    failure = CursorWriteFailure(db)
    try:
        yield failure
    finally:
        failure.disarm()


@pytest.mark.parametrize("existing", [False, True], ids=["new-cursor", "existing-cursor"])
def test_failure_mid_batch_leaves_cursor_and_events_unchanged(
    db: Database, cursor_failure: CursorWriteFailure, existing: bool
) -> None:
    before_cursor = None
    if existing:
        with db.session() as s:
            repo.record_events_and_advance(s, "chain", [ev(1, 0)], (1, 0))
        before_cursor = (1, 0)
    before_count = count_events(db)

    cursor_failure.arm()
    with pytest.raises(RuntimeError, match="disk on fire"), db.session() as s:
        repo.record_events_and_advance(s, "chain", [ev(2, 0), ev(2, 1), ev(3, 0)], (3, 0))
    # The events reached the database before the cursor write failed...
    assert cursor_failure.seen[0] == "events" and cursor_failure.seen[-1] == "cursor"
    cursor_failure.disarm()

    # ...and the rollback took them back with it.
    with db.session() as s:
        assert repo.get_cursor(s, "chain") == before_cursor
    assert count_events(db) == before_count

    # The same batch applies cleanly afterwards.
    with db.session() as s:
        assert (
            repo.record_events_and_advance(s, "chain", [ev(2, 0), ev(2, 1), ev(3, 0)], (3, 0)) == 3
        )
        assert repo.get_cursor(s, "chain") == (3, 0)


def test_invalid_event_rejects_the_whole_batch(db: Database) -> None:
    bad = repo.EventRecord("OpenToken", "Transfer", 2, 1, "0x1234", {})
    with pytest.raises(ValidationError, match=r"events\[1\]\.tx_hash") as info, db.session() as s:
        repo.record_events_and_advance(s, "chain", [ev(2, 0), bad], (2, 1))
    assert info.value.field == "events[1].tx_hash"
    assert "64 hex digits" in (info.value.fix or "")
    with db.session() as s:
        assert repo.get_cursor(s, "chain") is None
    assert count_events(db) == 0


@pytest.mark.parametrize(
    ("events", "cursor", "field"),
    [
        ([ev(5, 0)], (4, 9), "cursor"),
        ([], (-1, 0), "cursor.block_number"),
        ([], (1,), "cursor"),
        (
            [repo.EventRecord("C", "E", 1, 0, "0x" + "00" * 32, {"b": b"raw"})],
            (1, 0),
            "events[0].args",
        ),
        ([{"contract": "C"}], (1, 0), "events[0].event"),
        (
            [ev(1, 0), repo.EventRecord("C", "Other", 1, 0, "0x" + "00" * 32, {})],
            (1, 0),
            "events[1]",
        ),
    ],
    ids=["event-after-cursor", "negative", "not-a-pair", "bytes-arg", "missing-key", "clash"],
)
def test_bad_batches_name_the_field(
    db: Database, events: list[Any], cursor: Any, field: str
) -> None:
    with pytest.raises(ValidationError) as info, db.session() as s:
        repo.record_events_and_advance(s, "chain", events, cursor)
    assert info.value.field == field
    assert info.value.fix


def test_cursors_are_independent(db: Database) -> None:
    with db.session() as s:
        repo.record_events_and_advance(s, "a", [], (5, 0))
        repo.record_events_and_advance(s, "b", [], (9, 1))
    with db.session() as s:
        assert repo.get_cursor(s, "a") == (5, 0)
        assert repo.get_cursor(s, "b") == (9, 1)


# ---------------------------------------------------------------------------- concurrency


def test_sqlite_reader_is_not_blocked_by_an_open_writer(sqlite_db: Database) -> None:
    db = sqlite_db
    with db.session() as s:
        repo.record_events_and_advance(s, "chain", [ev(1, 0)], (1, 0))

    with db.session() as writer:
        repo.record_events_and_advance(writer, "chain", [ev(2, 0), ev(2, 1)], (2, 1))
        # The writer holds the write lock with uncommitted rows; a reader on another
        # connection reads the last committed state at once instead of waiting.
        started = time.monotonic()
        with db.session() as reader:
            assert repo.get_cursor(reader, "chain") == (1, 0)
            assert len(list_events(reader)) == 1
        assert time.monotonic() - started < 1.0
    with db.session() as reader:
        assert repo.get_cursor(reader, "chain") == (2, 1)
        assert len(list_events(reader)) == 3


def test_sqlite_second_writer_waits_for_the_first(sqlite_db: Database) -> None:
    db = sqlite_db
    holding = threading.Event()
    errors: list[BaseException] = []

    def first_writer() -> None:
        try:
            with db.session() as s:
                repo.record_events_and_advance(s, "chain", [ev(1, 0)], (1, 0))
                holding.set()
                time.sleep(0.5)  # hold the write lock
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
            holding.set()

    t = threading.Thread(target=first_writer)
    t.start()
    assert holding.wait(5)
    started = time.monotonic()
    with db.session() as s:  # blocks on the lock (busy_timeout), then succeeds
        repo.record_events_and_advance(s, "other", [], (7, 0))
    waited = time.monotonic() - started
    t.join(5)
    assert not errors
    assert waited > 0.2
    with db.session() as s:
        assert repo.get_cursor(s, "chain") == (1, 0)
        assert repo.get_cursor(s, "other") == (7, 0)


def test_concurrent_replays_record_each_event_once(db: Database) -> None:
    batch = [ev(b, i) for b in range(1, 6) for i in range(4)]
    results: list[int] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            with db.session() as s:
                results.append(repo.record_events_and_advance(s, "chain", batch, (5, 3)))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert count_events(db) == len(batch)
    assert sum(results) >= len(batch)  # the first to commit recorded all of them


def test_cursor_row_has_a_timestamp(db: Database) -> None:
    with db.session() as s:
        repo.record_events_and_advance(s, "chain", [], (1, 0))
    with db.session() as s:
        row = s.get(SyncCursor, "chain")
        assert row is not None and row.updated_at.tzinfo is not None
