"""Migration 0005 (api_keys) round-trips: down to 0004 drops only its table, up restores it."""

from __future__ import annotations

from sqlalchemy import inspect, select

from openledger.store import Database
from openledger.store.api_tables import ApiKeyRow


def test_api_keys_migration_round_trip(db: Database) -> None:
    with db.session() as s:
        s.add(
            ApiKeyRow(
                key_id="olk_abcdefgh",
                key_hash="0" * 64,
                account="alice",
                address="0x" + "1" * 40,
                label="x",
            )
        )
    db.downgrade("0004")
    assert db.current_revision() == "0004"
    tables = set(inspect(db.engine).get_table_names())
    assert "api_keys" not in tables and {"models", "accounts"} <= tables
    db.migrate()
    assert db.current_revision() == Database.head_revision()
    with db.session() as s:
        assert s.scalars(select(ApiKeyRow)).all() == []
