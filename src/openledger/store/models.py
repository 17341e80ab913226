"""SQLAlchemy models of the foundation tables.

Later stages add their own tables (each with a new Alembic migration under
``store/migrations/versions``) by subclassing :class:`Base`. Every timestamp is stored and
returned as a timezone-aware UTC ``datetime`` (:class:`UTCDateTime`), on SQLite as well as
on PostgreSQL.

Constraint and index names come from :data:`NAMING_CONVENTION`, so the hand-written
migrations can name them explicitly and the two backends agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


#: the largest value of a signed 64-bit integer column (SQLite's INTEGER, PostgreSQL's BIGINT)
MAX_DB_INT = 2**63 - 1


def digits_id(ref: str | int) -> int | None:
    """``ref`` as an id a column can hold: an int, or a string of ASCII digits, from 0 to
    2**63 - 1; None for anything else (a name, ``"²"``, a number no row can have)."""
    if isinstance(ref, int):
        return ref if 0 <= ref <= MAX_DB_INT else None
    text = str(ref)
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        return None
    value = int(text)
    return value if value <= MAX_DB_INT else None


class UTCDateTime(TypeDecorator[datetime]):
    """A ``DateTime(timezone=True)`` that only accepts aware datetimes and returns UTC ones.

    SQLite has no time zone type: values are converted to UTC before they are written and
    marked UTC when read back. PostgreSQL's ``timestamptz`` is converted to UTC on read.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                f"naive datetime {value.isoformat()} given for a timestamp column; "
                "pass a timezone-aware value such as datetime.now(UTC)"
            )
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of every OpenLedger table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


class SyncCursor(Base):
    """How far the chain event sync named ``name`` has applied events.

    ``(block_number, log_index)`` is the position of the last event applied (or the end of
    the last scanned range); the sync resumes after it.
    """

    __tablename__ = "sync_cursors"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    block_number: Mapped[int] = mapped_column(BigInteger)
    log_index: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @property
    def position(self) -> tuple[int, int]:
        return (self.block_number, self.log_index)

    def __repr__(self) -> str:
        return f"SyncCursor(name={self.name!r}, position={self.position})"


class ChainEvent(Base):
    """A contract event that has been applied to the local state.

    ``(block_number, log_index)`` is unique on one chain, so an event is never recorded
    twice.
    """

    __tablename__ = "chain_events"
    __table_args__ = (
        UniqueConstraint("block_number", "log_index"),
        Index(None, "contract", "event"),
        Index(None, "tx_hash"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    contract: Mapped[str] = mapped_column(String(100))
    event: Mapped[str] = mapped_column(String(100))
    block_number: Mapped[int] = mapped_column(BigInteger)
    log_index: Mapped[int] = mapped_column(Integer)
    tx_hash: Mapped[str] = mapped_column(String(66))
    args: Mapped[dict[str, Any]] = mapped_column(default=dict)
    applied_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def position(self) -> tuple[int, int]:
        return (self.block_number, self.log_index)

    def __repr__(self) -> str:
        return (
            f"ChainEvent({self.contract}.{self.event} at block {self.block_number} "
            f"log {self.log_index})"
        )


__all__ = [
    "NAMING_CONVENTION",
    "Base",
    "ChainEvent",
    "SyncCursor",
    "UTCDateTime",
    "utcnow",
]
