"""Store fixtures: a fresh database on SQLite and, when a server is given, PostgreSQL.

PostgreSQL tests need ``OPENLEDGER_TEST_PG_URL`` (a database on a server where the user
may CREATE DATABASE), e.g.::

    export OPENLEDGER_TEST_PG_URL="$(scripts/pg-test-server.sh start | tail -n1)"

Every test gets its own uniquely named database, dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url

from openledger.store.db import Database

PG_ENV = "OPENLEDGER_TEST_PG_URL"
PG_SKIP_REASON = (
    f"{PG_ENV} is not set: run `scripts/pg-test-server.sh start` and "
    f'`export {PG_ENV}="$(scripts/pg-test-server.sh url)"` to run the PostgreSQL tests'
)

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


def pg_admin_url() -> str:
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(PG_SKIP_REASON)
    return url


@pytest.fixture
def pg_url() -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database (dropped after the test)."""
    admin = make_url(pg_admin_url())
    name = f"ol_test_{uuid.uuid4().hex[:16]}"
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield admin.set(database=name).render_as_string(hide_password=False)
        with engine.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        engine.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'db' / 'openledger.db'}"


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest) -> str:
    """The URL of a fresh, empty database on each backend."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("pg_url")


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    """A migrated database on each backend."""
    database = Database.open(db_url)
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture
def sqlite_db(sqlite_url: str) -> Iterator[Database]:
    database = Database.open(sqlite_url)
    try:
        yield database
    finally:
        database.dispose()
