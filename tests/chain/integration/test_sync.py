"""Event sync: a restart neither misses nor applies an event twice."""

import pytest
from eth_utils import keccak
from sqlalchemy import func, select

from openledger.chain.sync import EventSync
from openledger.node import Node
from openledger.store.db import Database
from openledger.store.models import ChainEvent
from openledger.units import OPEN

pytestmark = pytest.mark.anvil


@pytest.fixture
def db(tmp_path):
    database = Database.open(f"sqlite:///{tmp_path / 'sync.db'}")
    yield database
    database.dispose()


def _fresh_sync(node: Node, db: Database) -> EventSync:
    return EventSync(node.contracts, db, batch_blocks=3)


def _count(db: Database, event: str | None = None) -> int:
    with db.session() as s:
        q = select(func.count()).select_from(ChainEvent)
        if event:
            q = q.where(ChainEvent.event == event)
        return s.scalar(q)


def test_poll_applies_each_event_once_across_restarts(chain: Node, db: Database) -> None:
    seen: list[tuple[int, int]] = []
    sync = _fresh_sync(chain, db)
    sync.subscribe("Transfer", lambda s, r: seen.append(r.position))
    deploy_events = sync.poll()
    assert deploy_events and all(
        a.position < b.position for a, b in zip(deploy_events, deploy_events[1:], strict=False)
    )
    alice = chain.accounts.signer("alice")
    chain.contracts.token.transfer(alice, chain.accounts.address("bob"), OPEN)
    chain.contracts.token.transfer(alice, chain.accounts.address("carol"), OPEN)
    assert [r.event for r in sync.poll()] == ["Transfer", "Transfer"]
    assert sync.poll() == []

    restarted = _fresh_sync(chain, db)  # a new process: only the cursor in the store
    restarted.subscribe("Transfer", lambda s, r: seen.append(r.position))
    assert restarted.poll() == []
    chain.contracts.token.transfer(alice, chain.accounts.address("dave"), OPEN)
    assert len(restarted.poll()) == 1
    assert len(seen) == len(set(seen))  # no position handled twice


def test_a_failing_handler_rolls_back_the_batch(chain: Node, db: Database) -> None:
    sync = _fresh_sync(chain, db)
    sync.poll()
    cursor = sync.cursor()
    owner = chain.accounts.signer("operator")
    chain.contracts.datanets.create_datanet(owner, "ipfs://x", [owner.address], 1, OPEN)
    events_before = _count(db)

    def boom(session, record):
        raise RuntimeError("handler crashed")

    failing = _fresh_sync(chain, db)
    failing.subscribe("DatanetCreated", boom)
    with pytest.raises(RuntimeError):
        failing.poll()
    assert failing.cursor() == cursor and _count(db) == events_before

    applied: list[int] = []
    healthy = _fresh_sync(chain, db)
    healthy.subscribe(
        "DatanetRegistry.DatanetCreated", lambda s, r: applied.append(r.args["datanet_id"])
    )
    got = healthy.poll()
    assert [r.event for r in got] == ["DatanetCreated"] and len(applied) == 1
    assert _count(db, "DatanetCreated") >= 1
    assert healthy.poll() == []


def test_bytes_args_are_hex(chain: Node, db: Database) -> None:
    sync = _fresh_sync(chain, db)
    sync.poll()
    owner = chain.accounts.signer("operator")
    dn, _ = chain.contracts.datanets.create_datanet(owner, "ipfs://y", [owner.address], 1, OPEN)
    chain.contracts.datanets.commit_snapshot(owner, dn, keccak(b"r"), 1, "u")
    snap = [r for r in sync.poll() if r.event == "SnapshotCommitted"][0]
    assert snap.args["root"] == "0x" + keccak(b"r").hex()
