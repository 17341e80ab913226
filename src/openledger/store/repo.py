"""Data access for the foundation tables, in one module.

Small functions that take a :class:`~sqlalchemy.orm.Session` and never commit: the caller's
``Database.session()`` block is the transaction (it commits when the block ends and rolls
back if anything raises). Bad input raises :class:`~openledger.errors.ValidationError`;
clashes with stored state raise :class:`~openledger.errors.ConflictError`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from openledger.errors import ConflictError, ValidationError
from openledger.store.models import ChainEvent, SyncCursor, utcnow

_TX_HASH_RE = re.compile(r"^0x[0-9a-fA-F]{64}$")
# Positions are compared in chunks of this many (bound-parameter limits).
_LOOKUP_CHUNK = 400


@dataclass(frozen=True)
class EventRecord:
    """A decoded contract event, as the chain sync hands it to the store."""

    contract: str
    event: str
    block_number: int
    log_index: int
    tx_hash: str
    args: Mapping[str, Any] = field(default_factory=dict)

    @property
    def position(self) -> tuple[int, int]:
        return (self.block_number, self.log_index)


# ---------------------------------------------------------------------------- validation


def _check_int(fieldname: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(
            f"{fieldname} must be a non-negative integer, got {value!r}.",
            field=fieldname,
            value=value,
            fix=f"pass {fieldname} as an int >= 0.",
        )
    return value


def _check_name(fieldname: str, value: Any, max_len: int = 64) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > max_len:
        raise ValidationError(
            f"{fieldname} must be a non-empty string of at most {max_len} characters, "
            f"got {value!r}.",
            field=fieldname,
            value=value,
            fix=f"pass a {fieldname} of 1 to {max_len} characters.",
        )
    return value


def _check_position(fieldname: str, value: Any) -> tuple[int, int]:
    if not isinstance(value, Sequence) or isinstance(value, str | bytes) or len(value) != 2:
        raise ValidationError(
            f"{fieldname} must be a (block_number, log_index) pair, got {value!r}.",
            field=fieldname,
            value=value,
            fix=f"pass {fieldname} as a tuple of two non-negative ints.",
        )
    return (
        _check_int(f"{fieldname}.block_number", value[0]),
        _check_int(f"{fieldname}.log_index", value[1]),
    )


def _coerce_event(item: EventRecord | Mapping[str, Any], index: int) -> EventRecord:
    where = f"events[{index}]"
    if isinstance(item, EventRecord):
        ev = item
    elif isinstance(item, Mapping):
        missing = [
            k
            for k in ("contract", "event", "block_number", "log_index", "tx_hash")
            if k not in item
        ]
        if missing:
            raise ValidationError(
                f"{where} lacks {', '.join(missing)}.",
                field=f"{where}.{missing[0]}",
                value=None,
                fix="give every event contract, event, block_number, log_index, tx_hash "
                "and args (or pass EventRecord objects).",
            )
        ev = EventRecord(
            contract=item["contract"],
            event=item["event"],
            block_number=item["block_number"],
            log_index=item["log_index"],
            tx_hash=item["tx_hash"],
            args=item.get("args") or {},
        )
    else:
        raise ValidationError(
            f"{where} is a {type(item).__name__}, not an event.",
            field=where,
            value=repr(item),
            fix="pass EventRecord objects or mappings with the same keys.",
        )
    _check_name(f"{where}.contract", ev.contract, 100)
    _check_name(f"{where}.event", ev.event, 100)
    _check_int(f"{where}.block_number", ev.block_number)
    _check_int(f"{where}.log_index", ev.log_index)
    if not isinstance(ev.tx_hash, str) or not _TX_HASH_RE.match(ev.tx_hash):
        raise ValidationError(
            f"{where}.tx_hash {ev.tx_hash!r} is not a transaction hash.",
            field=f"{where}.tx_hash",
            value=ev.tx_hash,
            fix="pass 0x followed by 64 hex digits.",
        )
    if not isinstance(ev.args, Mapping):
        raise ValidationError(
            f"{where}.args must be a mapping, got {type(ev.args).__name__}.",
            field=f"{where}.args",
            value=repr(ev.args),
            fix="pass the decoded event arguments as a dict.",
        )
    try:
        args = json.loads(json.dumps(dict(ev.args), allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            f"{where}.args cannot be stored as JSON: {exc}.",
            field=f"{where}.args",
            value=repr(ev.args),
            fix="convert bytes to 0x-hex strings and other values to str/int/float/bool/"
            "list/dict before recording the event.",
        ) from None
    return EventRecord(
        contract=ev.contract,
        event=ev.event,
        block_number=ev.block_number,
        log_index=ev.log_index,
        tx_hash=ev.tx_hash.lower(),
        args=args,
    )


# ---------------------------------------------------------------------------- sync cursor


def get_cursor(s: Session, name: str) -> tuple[int, int] | None:
    """The (block_number, log_index) of the cursor ``name``, or None if it never moved."""
    row = s.execute(
        select(SyncCursor.block_number, SyncCursor.log_index).where(SyncCursor.name == name)
    ).first()
    return None if row is None else (int(row[0]), int(row[1]))


def record_events_and_advance(
    s: Session,
    name: str,
    events: Iterable[EventRecord | Mapping[str, Any]],
    cursor: tuple[int, int],
) -> int:
    """Record ``events`` and move the cursor ``name`` to ``cursor``, in one transaction.

    Events already recorded at the same (block_number, log_index) are skipped, so replaying
    a range is harmless, even from two processes at once; the cursor never moves
    backwards. Every event must lie at or before ``cursor``; a different event already
    recorded at a position raises ConflictError. Returns the number of events newly
    recorded.

    Nothing is committed here: if anything fails, the caller's transaction (the
    ``Database.session()`` block) rolls back both the events and the cursor.
    """
    _check_name("cursor name", name)
    target = _check_position("cursor", cursor)
    batch: dict[tuple[int, int], EventRecord] = {}
    for i, item in enumerate(events):
        ev = _coerce_event(item, i)
        if ev.position > target:
            raise ValidationError(
                f"events[{i}] at block {ev.block_number} log {ev.log_index} lies after the "
                f"new cursor {target}.",
                field="cursor",
                value=str(target),
                fix="pass the position of the last event of the batch (or later) as cursor.",
            )
        earlier = batch.get(ev.position)
        if earlier is not None and not _same_event(earlier, ev):
            raise ValidationError(
                f"events[{i}] and another event of the batch share block {ev.block_number} "
                f"log {ev.log_index} but differ.",
                field=f"events[{i}]",
                value=str(ev.position),
                fix="pass each log once; (block_number, log_index) identifies it.",
            )
        batch[ev.position] = ev

    conn = s.connection()
    insert = _dialect_insert(conn.dialect.name)
    now = utcnow()

    # Skip what is recorded already (checking it is the same event)...
    existing = _recorded_at(s, list(batch))
    for pos, stored in existing.items():
        _check_same_as_stored(stored, batch[pos])
    todo = [batch[pos] for pos in sorted(batch) if pos not in existing]

    # ...and insert the rest; ON CONFLICT covers a concurrent writer of the same range.
    inserted: set[tuple[int, int]] = set()
    if todo:
        table = ChainEvent.__table__
        stmt = (
            insert(table)
            .on_conflict_do_nothing(index_elements=["block_number", "log_index"])
            .returning(table.c.block_number, table.c.log_index)
        )
        rows = [
            {
                "contract": ev.contract,
                "event": ev.event,
                "block_number": ev.block_number,
                "log_index": ev.log_index,
                "tx_hash": ev.tx_hash,
                "args": dict(ev.args),
                "applied_at": now,
            }
            for ev in todo
        ]
        for start in range(0, len(rows), _LOOKUP_CHUNK):
            result = conn.execute(stmt, rows[start : start + _LOOKUP_CHUNK])
            inserted.update((int(b), int(li)) for b, li in result)
        raced = [ev.position for ev in todo if ev.position not in inserted]
        if raced:
            for pos, stored in _recorded_at(s, raced).items():
                _check_same_as_stored(stored, batch[pos])

    # Move the cursor forward only: a replay of an older range leaves it where it is.
    table = SyncCursor.__table__
    upsert = insert(table).values(
        name=name, block_number=target[0], log_index=target[1], updated_at=now
    )
    upsert = upsert.on_conflict_do_update(
        index_elements=["name"],
        set_={
            "block_number": upsert.excluded.block_number,
            "log_index": upsert.excluded.log_index,
            "updated_at": upsert.excluded.updated_at,
        },
        where=tuple_(table.c.block_number, table.c.log_index)
        < tuple_(upsert.excluded.block_number, upsert.excluded.log_index),
    )
    conn.execute(upsert)
    return len(inserted)


def _same_event(a: EventRecord | ChainEvent, b: EventRecord) -> bool:
    return (a.contract, a.event, a.tx_hash.lower()) == (b.contract, b.event, b.tx_hash)


def _check_same_as_stored(stored: ChainEvent, ev: EventRecord) -> None:
    if _same_event(stored, ev):
        return
    pos = stored.position
    raise ConflictError(
        f"block {pos[0]} log {pos[1]} is recorded as {stored.contract}.{stored.event} in "
        f"{stored.tx_hash}, not {ev.contract}.{ev.event} in {ev.tx_hash}.",
        field="events",
        value=str(pos),
        fix="the chain was reorganised or is not the one this node synced from: "
        "check the RPC URL and chain id, and resync into a fresh database.",
    )


def _dialect_insert(dialect: str) -> Any:
    """The dialect's INSERT construct (with ON CONFLICT support)."""
    if dialect == "postgresql":
        return postgresql.insert
    if dialect == "sqlite":
        return sqlite.insert
    raise NotImplementedError(f"no upsert for the {dialect!r} dialect")  # pragma: no cover


def _recorded_at(s: Session, positions: list[tuple[int, int]]) -> dict[tuple[int, int], ChainEvent]:
    found: dict[tuple[int, int], ChainEvent] = {}
    for start in range(0, len(positions), _LOOKUP_CHUNK):
        chunk = positions[start : start + _LOOKUP_CHUNK]
        blocks = sorted({b for b, _ in chunk})
        wanted = set(chunk)
        q = select(ChainEvent).where(ChainEvent.block_number.in_(blocks))
        for row in s.scalars(q):
            if row.position in wanted:
                found[row.position] = row
    return found


__all__ = [
    "EventRecord",
    "get_cursor",
    "record_events_and_advance",
]
