"""Database: engine settings, migrations at open, sessions, clear errors."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text

from openledger.errors import ConfigError, StoreError
from openledger.store import Database, mask_url
from openledger.store.models import SyncCursor

FOUNDATION_TABLES = {"sync_cursors", "chain_events"}


def test_open_applies_migrations_to_head(db: Database) -> None:
    assert db.current_revision() == Database.head_revision()
    assert Database.head_revision() is not None
    tables = set(inspect(db.engine).get_table_names())
    assert FOUNDATION_TABLES | {"alembic_version"} <= tables


def test_reopen_is_idempotent(db_url: str) -> None:
    first = Database.open(db_url)
    with first.session() as s:
        s.add(SyncCursor(name="chain_id", block_number=31337, log_index=0))
    first.dispose()
    for _ in range(2):
        again = Database.open(db_url)
        assert again.current_revision() == Database.head_revision()
        with again.session() as s:
            assert s.get(SyncCursor, "chain_id").block_number == 31337
        again.migrate()  # already at head: a no-op
        again.dispose()


def test_concurrent_first_opens_migrate_once(db_url: str) -> None:
    """Several processes starting on a new database at once: one migrates, all succeed."""
    errors: list[BaseException] = []
    opened: list[Database] = []

    def start() -> None:
        try:
            opened.append(Database.open(db_url))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        assert not errors
        assert [d.current_revision() for d in opened] == [Database.head_revision()] * 4
    finally:
        for d in opened:
            d.dispose()


def test_new_database_has_no_revision_until_migrated(db_url: str) -> None:
    db = Database(db_url)
    try:
        assert db.current_revision() is None
        db.migrate()
        assert db.current_revision() == Database.head_revision()
        db.downgrade("base")
        assert db.current_revision() is None
        assert not FOUNDATION_TABLES & set(inspect(db.engine).get_table_names())
        db.migrate()
        assert db.current_revision() == Database.head_revision()
    finally:
        db.dispose()


def test_session_commits_on_success(db: Database) -> None:
    with db.session() as s:
        s.add(SyncCursor(name="k", block_number=1, log_index=0))
    with db.session() as s:
        assert s.scalar(select(SyncCursor.block_number).where(SyncCursor.name == "k")) == 1


def test_session_rolls_back_on_error(db: Database) -> None:
    with pytest.raises(RuntimeError, match="boom"), db.session() as s:
        s.add(SyncCursor(name="a", block_number=1, log_index=0))
        s.add(SyncCursor(name="chain", block_number=7, log_index=0))
        s.flush()  # the rows reach the database inside the transaction...
        raise RuntimeError("boom")
    with db.session() as s:  # ...and are gone after the rollback
        assert s.scalars(select(SyncCursor)).all() == []


def test_timestamps_are_utc_aware(db: Database) -> None:
    eastern = timezone(timedelta(hours=-5))
    moment = datetime(2025, 1, 2, 3, 4, 5, tzinfo=eastern)
    with db.session() as s:
        s.add(SyncCursor(name="c", block_number=1, log_index=2, updated_at=moment))
    with db.session() as s:
        got = s.get(SyncCursor, "c").updated_at
    assert got.tzinfo is not None and got.utcoffset() == timedelta(0)
    assert got == moment
    assert got.hour == 8
    with db.session() as s:
        s.add(SyncCursor(name="d", block_number=1, log_index=2))
    with db.session() as s:
        auto = s.get(SyncCursor, "d").updated_at
    assert auto.tzinfo is not None
    assert abs(datetime.now(UTC) - auto) < timedelta(minutes=1)


def test_naive_timestamp_is_refused(db: Database) -> None:
    with pytest.raises(Exception, match="naive datetime"), db.session() as s:
        s.add(SyncCursor(name="c", block_number=1, log_index=2, updated_at=datetime(2025, 1, 1)))
        s.flush()


# ---------------------------------------------------------------------------- SQLite


def test_sqlite_pragmas_on_every_connection(sqlite_db: Database) -> None:
    conns = [sqlite_db.engine.connect() for _ in range(3)]  # three pooled connections
    try:
        for conn in conns:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
    finally:
        for conn in conns:
            conn.close()


def test_sqlite_creates_parent_directory(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "c" / "node.db"
    db = Database.open(f"sqlite:///{path}")
    db.dispose()
    assert path.is_file()
    assert Path(f"{path}-wal").exists() or path.stat().st_size > 0


def test_sqlite_unwritable_path_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where a directory should be")
    url = f"sqlite:///{blocker / 'sub' / 'node.db'}"
    with pytest.raises(StoreError) as info:
        Database.open(url)
    err = info.value
    assert str(blocker) in str(err)
    assert err.field == "database URL"
    assert "writable" in (err.fix or "")


def test_sqlite_directory_as_database_file_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "node.db").mkdir()
    with pytest.raises(StoreError, match="node.db") as info:
        Database.open(f"sqlite:///{tmp_path / 'node.db'}")
    assert "Fix:" in str(info.value)


def test_in_memory_sqlite_is_shared_between_sessions() -> None:
    db = Database.open("sqlite://")
    try:
        with db.session() as s:
            s.add(SyncCursor(name="k", block_number=1, log_index=0))
        with db.session() as s:
            assert s.get(SyncCursor, "k").block_number == 1
    finally:
        db.dispose()


# ---------------------------------------------------------------------------- errors


def test_unreachable_postgres_is_a_store_error_with_masked_password(unused_port: int) -> None:
    url = f"postgresql+psycopg://alice:s3cr3t-pw@127.0.0.1:{unused_port}/nowhere"
    with pytest.raises(StoreError) as info:
        Database.open(url)
    err = info.value
    text_ = str(err)
    assert "s3cr3t-pw" not in text_ and "s3cr3t-pw" not in repr(err.to_dict())
    assert f"postgresql+psycopg://alice:***@127.0.0.1:{unused_port}/nowhere" in text_
    assert "PostgreSQL is running" in (err.fix or "")
    assert err.http_status == 503


def test_unsupported_backend_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="mysql"):
        Database("mysql://root:pw@localhost/x")
    with pytest.raises(ConfigError, match="not a valid URL"):
        Database("not a url")


def test_postgres_urls_use_psycopg() -> None:
    for url in ("postgres://u:p@h/d", "postgresql://u:p@h/d", "postgresql+psycopg://u:p@h/d"):
        db = Database(url)
        assert db.url == "postgresql+psycopg://u:***@h/d"
        assert db.engine.dialect.driver == "psycopg"
        db.dispose()


def test_mask_url() -> None:
    assert mask_url("postgresql+psycopg://u:p%40ss@h:5432/d") == (
        "postgresql+psycopg://u:***@h:5432/d"
    )
    assert mask_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"


def test_database_newer_than_code_is_a_store_error(sqlite_db: Database) -> None:
    with sqlite_db.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(StoreError, match="9999") as info:
        sqlite_db.migrate()
    assert "upgrade openledger" in (info.value.fix or "")


@pytest.fixture
def unused_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_locked_session_serialises_read_then_write(db: Database) -> None:
    """Eight threads each read a counter and write it back plus one, 25 times: with the
    write lock held from the first statement no increment is lost (and on SQLite no WAL
    snapshot has to be upgraded, which fails at once instead of waiting)."""
    from openledger.store.db import WRITE_LOCK_KEY
    from openledger.store.ledger_tables import CreditRow

    with db.session() as s:
        s.add(
            CreditRow(
                account="0xC0",
                deposited=0,
                withdrawn=0,
                charged=0,
                collected=0,
                pending_withdrawal=0,
                withdrawal_ready_at=0,
            )
        )
    errors: list[BaseException] = []

    def bump() -> None:
        try:
            for _ in range(25):
                with db.locked_session(WRITE_LOCK_KEY) as s:
                    row = s.get(CreditRow, "0xC0")
                    row.charged = row.charged + 1
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=bump) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    with db.session() as s:
        assert s.get(CreditRow, "0xC0").charged == 200
