"""Credit holds across processes: two ledgers (two nodes) on one database lease credit under
the database's write lock and together never hold or charge more than an account has; idle
leases go back, a dead node's leases expire, a withdrawal request cuts them."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from openledger.chain.addr import to_checksum_address
from openledger.chain.bindings import Params
from openledger.errors import PaymentRequiredError
from openledger.ledger.credit.leases import CreditLeases, trim_to_available
from openledger.ledger.pricing.fees import fee
from openledger.ledger.pricing.params import ParamsCache
from openledger.ledger.receipts.canonical import ReceiptSigner
from openledger.ledger.service import LedgerService
from openledger.store.datanet_tables import ContributionRow, DatanetRow, SnapshotRow
from openledger.store.db import Database
from openledger.store.ledger_tables import CreditLeaseRow, CreditRow, ReceiptRow
from openledger.units import OPEN
from tests.servers import wait_until
from tests.store.conftest import db_url, pg_url, sqlite_url  # noqa: F401 - fixtures

PAYER = to_checksum_address("0x" + "aa" * 20)
OWNER = "0x" + "d0" * 20
ROOT = "0x" + "5a" * 32
PRICE_IN, PRICE_OUT = 3 * OPEN // 1000, 7 * OPEN // 1000
PARAMS = Params(
    version=1,
    treasury="0x" + "7e" * 20,
    platform_bps=1_000,
    owner_bps=2_000,
    stakers_bps=2_000,
    contributors_bps=5_000,
    min_stake=10 * OPEN,
    slash_bps=5_000,
    stake_unlock_delay=7 * 86_400,
    epoch_length=86_400,
    max_file_bytes=10_000_000,
    max_files_per_day=20,
    escrow_withdraw_delay=86_400,
    root_activation_delay=3_600,
    min_deposit=OPEN,
)
MODEL = {
    "id": 1,
    "name": "m",
    "owner": OWNER,
    "base": "b",
    "adapter_sha256": "ab" * 32,
    "snapshot_roots": [ROOT],
    "price_in": str(PRICE_IN),
    "price_out": str(PRICE_OUT),
}
HOLD = fee(100, 100, PRICE_IN, PRICE_OUT)  # what each request holds


def setup_store(db: Database, deposited: int) -> None:
    with db.session() as s:
        dn = DatanetRow(
            chain_id=1,
            name="d",
            description="",
            owner=OWNER,
            validators=[OWNER],
            quorum=1,
            min_stake=OPEN,
            metadata_uri="",
            tx_hash="0x",
        )
        s.add(dn)
        s.flush()
        s.add(
            ContributionRow(
                chain_id=1,
                datanet_id=dn.id,
                contributor=OWNER,
                root=ROOT,
                record_count=5,
                stake=10 * OPEN,
                status="approved",
                approvals=1,
                files=[],
                file_count=1,
                manifest_sha="00",
                signature="0x",
                tx_hash="0x",
            )
        )
        s.add(
            SnapshotRow(
                datanet_id=dn.id,
                version=1,
                root=ROOT,
                record_count=5,
                contribution_ids=[1],
                parquet_sha="",
                manifest_sha="",
                tx_hash="0x",
            )
        )
        s.add(
            CreditRow(
                account=PAYER,
                deposited=deposited,
                withdrawn=0,
                charged=0,
                collected=0,
                pending_withdrawal=0,
                withdrawal_ready_at=0,
            )
        )


def ledger(db: Database) -> LedgerService:
    params = ParamsCache(lambda: PARAMS.version, lambda: PARAMS)
    return LedgerService(
        db, params, lambda: ReceiptSigner(b"\x11" * 32), chain_id=31337, pricing_process=False
    )


def credit_row(db: Database) -> CreditRow:
    with db.session() as s:
        return s.get(CreditRow, PAYER)


def leases(db: Database) -> dict[str, int]:
    with db.session() as s:
        return {r.node: r.amount for r in s.scalars(select(CreditLeaseRow)) if r.amount}


def test_two_nodes_never_hold_or_charge_more_than_the_credit(db_url: str) -> None:  # noqa: F811
    db = Database.open(db_url)
    deposit = 40 * HOLD + HOLD // 2  # room for 40 holds, not 41
    setup_store(db, deposit)
    nodes = [ledger(db), ledger(db)]
    holds: list[list] = [[], []]
    refused = [0, 0]

    def client(i: int) -> None:
        for _ in range(40):
            try:
                holds[i].append(nodes[i].reserve(PAYER, MODEL, 100, 100))
            except PaymentRequiredError:
                refused[i] += 1

    try:
        threads = [threading.Thread(target=client, args=(i,)) for i in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        taken = len(holds[0]) + len(holds[1])
        assert taken == 40 and refused[0] + refused[1] == 40  # exactly what fits, together
        row = credit_row(db)
        assert row.held == sum(leases(db).values()) <= deposit
        receipts = [
            nodes[i].charge(h, 50, request_hash=f"0x{i}{n:063x}", attribution=None)
            for i in (0, 1)
            for n, h in enumerate(holds[i])
        ]
        assert len(receipts) == 40
        row = credit_row(db)
        charged = 40 * fee(100, 50, PRICE_IN, PRICE_OUT)
        assert row.charged == charged <= deposit
        with db.session() as s:
            assert len(s.scalars(select(ReceiptRow)).all()) == 40
        for n in nodes:
            n.return_idle_leases(idle_s=0)
        assert leases(db) == {} and credit_row(db).held == 0
        # what the holds did not use is available again, to either node
        nodes[1].reserve(PAYER, MODEL, 100, 100)
    finally:
        for n in nodes:
            n.close()
        assert leases(db) == {} and credit_row(db).held == 0  # close gives leases back
        db.dispose()


def test_a_dead_nodes_lease_expires_and_a_withdrawal_cuts_leases(sqlite_url: str) -> None:  # noqa: F811
    db = Database.open(sqlite_url)
    setup_store(db, 10 * OPEN)
    try:
        dead = CreditLeases(db, "dead-host:1:x", ttl_s=30)
        got, unheld = dead.take(PAYER, OPEN)
        assert (got, unheld) == (5 * OPEN, 10 * OPEN)  # at least what is needed, up to half
        live = ledger(db)
        live.reserve(PAYER, MODEL, 100, 100)  # leases half of the 5 OPEN left
        assert credit_row(db).held == 5 * OPEN + 5 * OPEN // 2
        with db.session() as s:
            s.get(CreditLeaseRow, (PAYER, "dead-host:1:x")).renewed_at = datetime.now(
                UTC
            ) - timedelta(seconds=31)
        assert CreditLeases(db, "any", ttl_s=30).expire() == 1
        assert credit_row(db).held == 5 * OPEN // 2 and "dead-host:1:x" not in leases(db)
        with db.locked_session(0) as s:  # a withdrawal request of 9 OPEN arrives
            s.get(CreditRow, PAYER).pending_withdrawal = 9 * OPEN
            s.flush()
            trim_to_available(s, PAYER)
        assert credit_row(db).held == OPEN and leases(db) == {live.node_id: OPEN}
        # the keeper sees its smaller lease, then returns what is idle
        wait_until(lambda: leases(db) == {live.node_id: HOLD}, timeout=10, fail=False)
        assert live.credit(PAYER)["leased"] == str(HOLD)  # what its request in flight holds
        assert leases(db) == {live.node_id: HOLD} and credit_row(db).held == HOLD
        live.close()
    finally:
        db.dispose()
