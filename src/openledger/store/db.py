"""The metadata database: engine, migrations and sessions.

One :class:`Database` per process, built from a URL:

- ``sqlite:///path/to/openledger.db`` (the embedded default, in the node home): WAL
  journal mode, ``foreign_keys=ON`` and ``busy_timeout=5000`` ms are set on every new
  connection, so CLI commands can run beside a serving node;
- ``postgresql+psycopg://user:password@host:port/dbname`` (at scale).

``Database.open(url)`` builds it and applies the Alembic migrations up to head, so a node
always runs on the schema its code expects. The Alembic config is built in code and the
scripts live inside the package (``openledger/store/migrations``), so this works from an
installed wheel with no ``alembic.ini``.
"""

from __future__ import annotations

import ast
import functools
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import URL, Connection, Engine, create_engine, event, make_url, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from openledger.errors import ConfigError, OpenLedgerError, StoreError

if TYPE_CHECKING:
    from alembic.config import Config

try:  # POSIX only; elsewhere SQLite's own locks are all there is
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

SQLITE_BUSY_TIMEOUT_MS = 5000
MIGRATION_LOCK_TIMEOUT_S = 120
POSTGRES_CONNECT_TIMEOUT_S = 10
# Key of the PostgreSQL advisory lock that serialises concurrent migrations.
_PG_MIGRATION_LOCK_KEY = 0x0BE11ED6E5
# Key of the PostgreSQL advisory lock that serialises ledger writes (credits, receipts, events).
WRITE_LOCK_KEY = 0x0BE11ED6E6


def mask_url(url: str | URL) -> str:
    """The URL as text with its password replaced by ``***``."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except sa_exc.ArgumentError:
        return str(url)
    return parsed.render_as_string(hide_password=True)


class Database:
    """The metadata database of a node (SQLite or PostgreSQL)."""

    def __init__(self, url: str | URL, *, echo: bool = False) -> None:
        raw = url
        try:
            self._url: URL = make_url(url) if isinstance(url, str) else url
        except sa_exc.ArgumentError as exc:
            raise ConfigError(
                f"database URL {raw!r} is not a valid URL ({exc}).",
                field="database URL",
                value=str(raw),
                fix="use sqlite:///path/to/openledger.db or "
                "postgresql+psycopg://user:password@host:5432/dbname "
                "(e.g. in OPENLEDGER_DB_URL).",
            ) from None
        if self._url.get_backend_name() == "postgres":  # the libpq/Heroku spelling
            self._url = self._url.set(drivername="postgresql+psycopg")
        self.backend: str = self._url.get_backend_name()
        if self.backend not in ("sqlite", "postgresql"):
            raise ConfigError(
                f"database URL {self.url!r} uses the unsupported backend {self.backend!r}.",
                field="database URL",
                value=self.url,
                fix="use sqlite:///path/to/openledger.db or "
                "postgresql+psycopg://user:password@host:5432/dbname.",
            )
        if self.backend == "postgresql":
            # The only PostgreSQL driver the project installs is psycopg 3.
            self._url = self._url.set(drivername="postgresql+psycopg")
        self.engine: Engine = self._create_engine(echo=echo)
        self._sessionmaker: sessionmaker[Session] = sessionmaker(
            self.engine, expire_on_commit=False
        )

    # ------------------------------------------------------------------ construction

    @classmethod
    def open(cls, url: str | URL, *, echo: bool = False) -> Database:
        """Build the database and apply the migrations up to head."""
        db = cls(url, echo=echo)
        try:
            if not db.at_head():  # Alembic (~0.4 s to import) only when there is work
                db.migrate()
        except BaseException:
            db.dispose()
            raise
        return db

    @property
    def url(self) -> str:
        """The URL with the password masked (safe to print and log)."""
        return mask_url(self._url)

    @property
    def is_sqlite(self) -> bool:
        return self.backend == "sqlite"

    @property
    def sqlite_path(self) -> Path | None:
        """The database file of a file-backed SQLite database, else None."""
        if not self.is_sqlite:
            return None
        database = self._url.database
        if not database or database == ":memory:" or database.startswith("file:"):
            return None
        return Path(database)

    def _create_engine(self, *, echo: bool) -> Engine:
        if self.is_sqlite:
            return self._create_sqlite_engine(echo=echo)
        connect_args: dict[str, Any] = {}
        if "connect_timeout" not in self._url.query:
            connect_args["connect_timeout"] = POSTGRES_CONNECT_TIMEOUT_S
        return create_engine(self._url, echo=echo, pool_pre_ping=True, connect_args=connect_args)

    def _create_sqlite_engine(self, *, echo: bool) -> Engine:
        path = self.sqlite_path
        kwargs: dict[str, Any] = {"echo": echo}
        if path is not None:
            try:
                path.expanduser().parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"cannot create the directory {str(path.parent)!r} of the SQLite "
                    f"database {self.url!r}: {exc.strerror or exc}.",
                    field="database URL",
                    value=self.url,
                    fix="point the URL at a writable location (sqlite:///path/to/file.db) "
                    "or fix the permissions of that directory.",
                ) from exc
            if str(path).startswith("~"):
                self._url = self._url.set(database=str(path.expanduser()))
        else:
            # In-memory: one shared connection, or every session would see its own database.
            kwargs["poolclass"] = StaticPool
            kwargs["connect_args"] = {"check_same_thread": False}
        engine = create_engine(self._url, **kwargs)
        event.listen(engine, "connect", _sqlite_on_connect)
        return engine

    # ------------------------------------------------------------------ migrations

    def at_head(self) -> bool:
        """True when the database's schema revision is the newest this code knows (read
        with one query and the migration files' headers, without importing Alembic)."""
        heads = _script_heads()
        if not heads:
            return False
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(text("SELECT version_num FROM alembic_version"))
                found = {r[0] for r in rows}
        except sa_exc.DBAPIError:
            return False
        return found == heads

    def _alembic_config(self, connection: Connection | None = None) -> Config:
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        # Stored for env.py's fallback only; '%' must be escaped for ConfigParser.
        cfg.set_main_option(
            "sqlalchemy.url",
            self._url.render_as_string(hide_password=False).replace("%", "%%"),
        )
        if connection is not None:
            cfg.attributes["connection"] = connection
        return cfg

    @classmethod
    def head_revision(cls) -> str | None:
        """The newest migration this code knows."""
        from alembic.config import Config
        from alembic.script import ScriptDirectory

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        return ScriptDirectory.from_config(cfg).get_current_head()

    def _run_alembic(self, action: Callable[[Config], None], what: str) -> None:
        from alembic.util import CommandError

        with (
            self._migration_file_lock(what),
            self._translate_errors(what),
            self.engine.connect() as conn,
        ):
            # One migration at a time, whoever else opens the same database now.
            if self.is_sqlite:
                if self.sqlite_path is not None:
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"),
                    {"key": _PG_MIGRATION_LOCK_KEY},
                )
            try:
                action(self._alembic_config(conn))
            except CommandError as exc:
                conn.rollback()
                raise StoreError(
                    f"cannot migrate the database {self.url!r}: {exc}.",
                    field="database URL",
                    value=self.url,
                    fix="the database was probably written by a newer openledger: "
                    "upgrade openledger, or point the URL at another database.",
                ) from exc
            conn.commit()

    @contextmanager
    def _migration_file_lock(self, what: str) -> Iterator[None]:
        """Serialise migrations of one SQLite file across threads and processes.

        SQLite answers "database is locked" at once, without waiting out its busy timeout,
        when two new connections switch a fresh file to WAL or upgrade a read snapshot to
        a write together; a lock file taken before connecting rules both out.
        """
        path = self.sqlite_path
        if path is None or fcntl is None:
            yield
            return
        lock_path = path.expanduser().with_name(path.name + ".migrate-lock")
        with open(lock_path, "a+b") as handle:
            deadline = time.monotonic() + MIGRATION_LOCK_TIMEOUT_S
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise StoreError(
                            f"cannot {what} the database {self.url!r}: another process has "
                            f"held {str(lock_path)!r} for over {MIGRATION_LOCK_TIMEOUT_S} s.",
                            field="database URL",
                            value=self.url,
                            fix="wait for the other openledger process to finish migrating, "
                            "or stop it.",
                        ) from None
                    time.sleep(0.02)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def migrate(self, revision: str = "head") -> None:
        """Apply the Alembic migrations up to ``revision`` (default: the newest)."""
        from alembic import command

        self._run_alembic(lambda cfg: command.upgrade(cfg, revision), "migrate")

    def downgrade(self, revision: str) -> None:
        """Revert the migrations down to ``revision`` (``"base"`` drops every table)."""
        from alembic import command

        self._run_alembic(lambda cfg: command.downgrade(cfg, revision), "downgrade")

    def current_revision(self) -> str | None:
        """The revision the database is at, or None before the first migration."""
        from alembic.runtime.migration import MigrationContext

        with self._translate_errors("read the schema revision of"), self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    # ------------------------------------------------------------------ sessions

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits when the block ends and rolls back if it raises."""
        with self._translate_errors("use"):
            s = self._sessionmaker()
            try:
                yield s
                s.commit()
            except BaseException:
                s.rollback()
                raise
            finally:
                s.close()

    @contextmanager
    def locked_session(self, key: int) -> Iterator[Session]:
        """A session that holds the write lock from its first statement: SQLite's database
        lock (``BEGIN IMMEDIATE``) or PostgreSQL's transaction advisory lock ``key``. Read
        then write sequences (balances, hash chains) are then serialised across threads and
        processes, and a WAL reader never has to upgrade a stale snapshot."""
        with self._translate_errors("use"):
            s = self._sessionmaker()
            try:
                if not self.is_sqlite:
                    s.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
                elif self.sqlite_path is not None:
                    s.connection().exec_driver_sql("BEGIN IMMEDIATE")
                yield s
                s.commit()
            except BaseException:
                s.rollback()
                raise
            finally:
                s.close()

    def ping(self) -> None:
        """Connect once; raises StoreError naming the URL when that fails."""
        with self._translate_errors("connect to"), self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    @contextmanager
    def _translate_errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except OpenLedgerError:
            raise
        except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
            raise self._store_error(what, exc) from exc

    def _store_error(self, what: str, exc: sa_exc.DBAPIError) -> StoreError:
        detail = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
        if self._url.password:
            detail = detail.replace(str(self._url.password), "***")
        if self.is_sqlite:
            locked = "locked" in detail or "busy" in detail
            fix = (
                "another process holds a write lock for longer than "
                f"{SQLITE_BUSY_TIMEOUT_MS} ms: retry, or stop the other writer."
                if locked
                else "point the URL at a writable file (sqlite:///path/to/openledger.db), "
                "fix the permissions of its directory, or free disk space."
            )
        else:
            fix = (
                "check that PostgreSQL is running and reachable at that host and port, "
                "that the database exists and that the user and password are right "
                "(OPENLEDGER_DB_URL)."
            )
        return StoreError(
            f"cannot {what} the database {self.url!r}: {detail}.",
            field="database URL",
            value=self.url,
            fix=fix,
        )

    # ------------------------------------------------------------------ lifecycle

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.dispose()

    def __repr__(self) -> str:
        return f"Database({self.url!r})"


_REVISION_LINE = re.compile(r"^(down_revision|revision)\b[^=]*=\s*(.+)$", re.MULTILINE)


@functools.cache
def _script_heads() -> frozenset[str]:
    """The head revisions of the migration scripts, from their ``revision`` and
    ``down_revision`` lines (what Alembic's ScriptDirectory computes; tested equal)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        for key, raw in _REVISION_LINE.findall(path.read_text(encoding="utf-8")):
            try:
                value = ast.literal_eval(raw.strip())
            except (ValueError, SyntaxError):
                return frozenset()  # a form this reader does not know: let Alembic decide
            values = [value] if isinstance(value, str) else list(value or ())
            (revisions if key == "revision" else parents).update(values)
    return frozenset(revisions - parents)


def _sqlite_on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        # WAL is persistent in the file; in-memory databases answer 'memory' and stay so.
        cursor.execute("PRAGMA journal_mode = WAL")
    finally:
        cursor.close()


__all__ = ["Database", "mask_url"]
