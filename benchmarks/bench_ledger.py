"""Paid-inference accounting throughput: receipts per second on SQLite.

Claim: receipts_per_s ≥ 5,000 on a 2-core machine. Per request, model compute excluded:
reserve (credit hold), then charge: fee, split (platform / owner / contributors by attribution,
~10 attributed contributions over a model trained on 50; the stakers' and the unattributed
parts pooled per beneficiary set), a signed, hash-chained receipt and the accounting (receipt
row, earnings and pool rows, the payer's credit debit) committed in the node's SQLite
database — through ``LedgerService`` as the API uses it, with ``--threads`` submitter threads
each keeping ``--window`` charges in flight (reserve, request hash, ``submit``; the oldest
awaited once the window is full), i.e. threads × window requests in flight at once, as a
server with that many concurrent requests has. As the node does by default, the ledger's
pricer thread hands the pricing (split, receipt JSON, Keccak) to the pricing process on the
other core; ``process_cpu_s`` is the node process's CPU time, ``pricing_process_cpu_s`` the
child's.

Also in the same run: the same service pricing in its own pricer thread instead
(``ledger_pricing_process = 0``), to show what the pricing process buys.

Baseline in the same run, one after the other with the same seeds: the same service and work
with one transaction per receipt (``openledger.ledger.receipts.writer.MAX_GROUP`` set to 1, i.e. no
group commit). Each run gets a fresh node home (``init_home``: keystore, migrated SQLite in
WAL mode), so both start from an empty ledger.

Setup, not timed: one datanet, 50 approved contributions (stakes 10–100 OPEN, 1–200 records)
and a snapshot naming them are inserted directly into the store (the ledger reads only those
rows); protocol parameters come from a ``ParamsCache`` over a fixed snapshot of the
ProtocolParams defaults (10/20/20/50 split; no devnet: the cache asks the chain for
``version()`` once per second at most, which is not what is measured); ``--payers`` accounts
with 1,000,000 OPEN of credit each. Attributions: a pool of 256 seeded ones, each naming 10
of the 50 contributions with weights summing to 0.5–0.95.

After every run the epoch is sealed (timed apart as ``seal_s``: the seal divides the pooled
stakers' and unattributed parts over the beneficiary set once per epoch) and the ledger is
checked (not timed): receipt count, contiguous seq and hash chain, sum of fees == sum of
credit debits == sum of earnings rows. Writes
benchmarks/results/ledger.json, with a profile of the writer: ``ReceiptWriter.write`` called in
one thread on prepared groups of the runs' median group size, timed plainly and under cProfile.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import random
import resource
import statistics
import sys
import tempfile
import threading
import time
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import common
from sqlalchemy import func, select
from web3 import Web3

import openledger.ledger.receipts.writer as writer_mod
from openledger.attribution.types import Attribution, Share, positive_shares
from openledger.chain.bindings import Params
from openledger.config import Settings
from openledger.heap import freeze_startup_heap
from openledger.home import init_home
from openledger.ledger.pricing.params import ParamsCache
from openledger.ledger.receipts.canonical import GENESIS, ReceiptSigner
from openledger.ledger.receipts.writer import _Charge
from openledger.ledger.receipts.writer_db import PendingReceipt
from openledger.ledger.service import LedgerService, request_hash
from openledger.node import Node
from openledger.store.datanet_tables import ContributionRow, DatanetRow, SnapshotRow
from openledger.store.ledger_tables import CreditRow, EarningRow, ReceiptRow
from openledger.units import OPEN

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
TARGET = 5_000
PASSWORD = "bench"
PRICE_IN, PRICE_OUT = 3 * OPEN // 1000, 7 * OPEN // 1000
SNAPSHOT_ROOT = "0x" + "5a" * 32
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


def address(i: int, tag: int) -> str:
    return Web3.to_checksum_address("0x" + f"{tag:02x}" + f"{i:038x}")


def fill_store(node: Node, rng: random.Random, contributions: int, payers: int) -> dict:
    """The datanet, contributions, snapshot and payer credit the ledger reads; the model."""
    with node.db.session() as s:
        dn = DatanetRow(
            chain_id=1,
            name="bench",
            description="",
            owner=address(0, 0xD0),
            validators=[address(1, 0xB0)],
            quorum=1,
            min_stake=10 * OPEN,
            metadata_uri="",
            tx_hash="0x" + "00" * 32,
        )
        s.add(dn)
        s.flush()
        for c in range(1, contributions + 1):
            s.add(
                ContributionRow(
                    chain_id=c,
                    datanet_id=dn.id,
                    contributor=address(c % 40, 0xC0),
                    root="0x" + f"{c:064x}",
                    record_count=rng.randint(1, 200),
                    stake=rng.randint(10, 100) * OPEN,
                    status="approved",
                    approvals=1,
                    files=[],
                    file_count=1,
                    manifest_sha="00" * 32,
                    signature="0x",
                    tx_hash="0x" + "00" * 32,
                )
            )
        s.add(
            SnapshotRow(
                datanet_id=dn.id,
                version=1,
                root=SNAPSHOT_ROOT,
                record_count=0,
                contribution_ids=list(range(1, contributions + 1)),
                parquet_sha="",
                manifest_sha="",
                tx_hash="0x" + "00" * 32,
            )
        )
        for p in range(payers):
            s.add(
                CreditRow(
                    account=address(p, 0xAA),
                    deposited=10**6 * OPEN,
                    withdrawn=0,
                    charged=0,
                    collected=0,
                    pending_withdrawal=0,
                    withdrawal_ready_at=0,
                )
            )
        s.commit()
    return {
        "id": 1,
        "name": "bench-lora",
        "owner": address(0, 0xD0),
        "base": "tiny-base",
        "adapter_sha256": "ab" * 32,
        "snapshot_roots": [SNAPSHOT_ROOT],
        "price_in": str(PRICE_IN),
        "price_out": str(PRICE_OUT),
    }


def attribution_pool(rng: random.Random, contributions: int, attributed: int) -> list:
    pool = []
    for _ in range(256):
        ids = rng.sample(range(1, contributions + 1), attributed)
        shares = positive_shares(
            {c: rng.random() for c in ids}, {c: address(c % 40, 0xC0) for c in ids}
        )
        scale = rng.uniform(0.5, 0.95)  # the rest is unattributed
        pool.append(
            Attribution(
                "gradient",
                {"k": 1024},
                tuple(
                    Share(x.contribution, x.contributor, x.weight * scale, x.score) for x in shares
                ),
                index_hash="0x" + "11" * 32,
            )
        )
    return pool


def one_run(args: argparse.Namespace, group: int, seed: int, *, process: bool = True) -> dict:
    """One run on a fresh node home; ``process``: price in the pricing process (as the node
    does by default) or in the ledger's own pricer thread."""
    rng = random.Random(seed)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.load(env={"OPENLEDGER_HOME": str(Path(tmp) / "home")})
        init_home(settings, PASSWORD)
        node = Node(settings, password_source=lambda: PASSWORD)
        try:
            out = _measure(node, args, group, rng, process)
        finally:
            node.close()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the pricing process, reaped by close
    out["pricing_process_cpu_s"] = round(
        after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime, 2
    )
    return out


def make_ledger(
    node: Node,
    args: argparse.Namespace,
    rng: random.Random,
    process: bool = True,
    model: dict | None = None,
) -> tuple:
    model = model or fill_store(node, rng, args.contributions, args.payers)
    pool = attribution_pool(rng, args.contributions, args.attributed)
    key = bytes(node.accounts.signer("operator").key)
    params = ParamsCache(lambda: PARAMS.version, lambda: PARAMS)
    ledger = LedgerService(
        node.db, params, lambda: ReceiptSigner(key), chain_id=31337, pricing_process=process
    )
    return ledger, model, pool


def _measure(
    node: Node,
    args: argparse.Namespace,
    group: int,
    rng: random.Random,
    process: bool,
    *,
    model: dict | None = None,
    go: Path | None = None,
) -> dict:
    """One timed run; with ``go`` (a child of the multi-process run) the store is already
    filled (``model``), the run starts when the ``go`` file appears and is checked by the
    parent, which sees every process's receipts."""
    ledger, model, pool = make_ledger(node, args, rng, process, model)
    # warm-up (not timed): the writer thread, the beneficiary set, the signer
    warm = ledger.reserve(address(0, 0xAA), model, 10, 10)
    tag = os.getpid() if go is not None else 0
    ledger.charge(warm, 5, request_hash=f"0x{tag:064x}", attribution=pool[0])
    if not args.no_freeze:
        freeze_startup_heap()  # as `openledger serve` does once the node is built

    groups: list[int] = []
    commit_group = ledger.writer.commit_group

    def counted(jobs: list) -> None:  # group sizes: one list append per transaction
        groups.append(len(jobs))
        commit_group(jobs)

    ledger.writer.commit_group = counted  # type: ignore[method-assign]
    per_thread = args.receipts // args.threads
    payers = [address(p, 0xAA) for p in range(args.payers)]  # the harness's, not timed
    plans = []
    for _ in range(args.threads):
        r = random.Random(rng.randrange(2**32))
        plans.append(
            [(r.randint(20, 400), r.randint(16, 256), r.randrange(256)) for _ in range(per_thread)]
        )
    latencies: list[float] = []
    errors: list[BaseException] = []
    start = threading.Barrier(args.threads + 1)

    def submitter(t: int) -> None:
        """Reserve and submit one request after another, keeping ``window`` charges in
        flight (as a server handling that many requests at once does); a request's latency
        is from its reserve to its signed receipt."""
        mine: list[float] = []
        inflight: deque = deque()
        start.wait()
        try:
            for i, (prompt, completion, a) in enumerate(plans[t]):
                t0 = time.perf_counter()
                payer = payers[(t * per_thread + i) % args.payers]
                hold = ledger.reserve(payer, model, prompt, completion + 16)
                digest = request_hash(
                    payer, model["name"], {"t": t, "i": i, "prompt": prompt, "p": tag}
                )
                done = ledger.submit(hold, completion, request_hash=digest, attribution=pool[a])
                inflight.append((t0, done))
                if len(inflight) >= args.window:
                    t_first, first = inflight.popleft()
                    first.result(timeout=120)
                    mine.append(time.perf_counter() - t_first)
            while inflight:
                t_first, first = inflight.popleft()
                first.result(timeout=120)
                mine.append(time.perf_counter() - t_first)
        except BaseException as exc:
            errors.append(exc)
        latencies.extend(mine)

    writer_mod.MAX_GROUP, saved = group, writer_mod.MAX_GROUP
    try:
        threads = [threading.Thread(target=submitter, args=(t,)) for t in range(args.threads)]
        for th in threads:
            th.start()
        if go is not None:
            (go.parent / f"ready-{os.getpid()}").touch()
            while not go.exists():
                time.sleep(0.001)
        cpu0 = time.process_time()
        start.wait()
        wall0, t0 = time.time(), time.perf_counter()
        for th in threads:
            th.join()
        seconds = time.perf_counter() - t0
        wall1 = time.time()
        cpu = time.process_time() - cpu0
    finally:
        writer_mod.MAX_GROUP = saved
        ledger.close()
    if errors:
        raise errors[0]
    n = per_thread * args.threads
    if go is not None:
        return {
            "receipts": n,
            "seconds": round(seconds, 3),
            "wall_start": wall0,
            "wall_end": wall1,
            "process_cpu_s": round(cpu, 2),
            "transactions": len(groups),
            "mean_group": round(n / len(groups), 1),
        }
    t_seal = time.perf_counter()
    node.epochs._seal()  # divides the pools: once per epoch, not per receipt (timed apart)
    seal_s = time.perf_counter() - t_seal
    check = verify(node, n + 1)
    latencies.sort()
    out = {
        "receipts": n,
        "seconds": round(seconds, 3),
        "receipts_per_s": round(n / seconds, 1),
        "process_cpu_s": round(cpu, 2),
        "transactions": len(groups),
        "mean_group": round(n / len(groups), 1),
        "max_group": max(groups),
        "charge_latency_ms": {
            "p50": round(1e3 * latencies[len(latencies) // 2], 2),
            "p99": round(1e3 * latencies[int(len(latencies) * 0.99)], 2),
        },
        "seal_s": round(seal_s, 3),
        "earnings_rows_per_receipt": round(check["earnings_rows"] / (n + 1), 1),
        "receipt_body_bytes_mean": check["body_bytes_mean"],
        "checked": check["ok"],
    }
    return out


def multi_process_pg(args: argparse.Namespace, processes: int) -> dict:
    """``processes`` ledgers (as many nodes) in as many processes on one fresh PostgreSQL
    database, ``args.pg_receipts`` receipts in all, started together; checked afterwards as
    one ledger (one hash chain, fees == debits == earnings)."""
    import subprocess
    import uuid

    from sqlalchemy import create_engine, make_url

    admin = make_url(args.pg)
    name = f"ol_bench_{uuid.uuid4().hex[:12]}"
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = admin.set(database=name).render_as_string(hide_password=False)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            home = Path(tmp) / "home"
            env = {"OPENLEDGER_HOME": str(home), "OPENLEDGER_DB_URL": url}
            settings = Settings.load(env=env)
            init_home(settings, PASSWORD)
            node = Node(settings, password_source=lambda: PASSWORD)
            try:
                model = fill_store(node, random.Random(args.seed), args.contributions, args.payers)
                (Path(tmp) / "model.json").write_text(json.dumps(model))
                go = Path(tmp) / "go"
                each = args.pg_receipts // processes
                procs = [
                    subprocess.Popen(
                        [
                            sys.executable,
                            __file__,
                            "--child",
                            tmp,
                            "--receipts",
                            str(each),
                            "--threads",
                            str(args.threads),
                            "--window",
                            str(args.window),
                            "--payers",
                            str(args.payers),
                            "--seed",
                            str(args.seed + i),
                            "--contributions",
                            str(args.contributions),
                            "--attributed",
                            str(args.attributed),
                        ],
                        env={**os.environ, **env},
                        stdout=subprocess.PIPE,
                        text=True,
                    )
                    for i in range(processes)
                ]
                while len(list(Path(tmp).glob("ready-*"))) < processes:
                    if any(p.poll() is not None for p in procs):
                        raise RuntimeError("a child of the PostgreSQL run failed")
                    time.sleep(0.01)
                go.touch()
                outs = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
                if any(p.returncode for p in procs):
                    raise RuntimeError("a child of the PostgreSQL run failed")
                n = sum(o["receipts"] for o in outs)
                span = max(o["wall_end"] for o in outs) - min(o["wall_start"] for o in outs)
                node.epochs._seal()
                check = verify(node, n + processes)  # + each child's warm-up receipt
            finally:
                node.close()
    finally:
        with engine.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        engine.dispose()
    return {
        "processes": processes,
        "receipts": n,
        "seconds": round(span, 3),
        "receipts_per_s": round(n / span, 1),
        "checked": check["ok"],
        "per_process": outs,
    }


def child(args: argparse.Namespace) -> None:
    """One process of :func:`multi_process_pg` (``--child DIR``): prints its run as JSON."""
    tmp = Path(args.child)
    settings = Settings.load()
    node = Node(settings, password_source=lambda: PASSWORD)
    try:
        model = json.loads((tmp / "model.json").read_text())
        out = _measure(
            node,
            args,
            writer_mod.MAX_GROUP,
            random.Random(args.seed),
            True,
            model=model,
            go=tmp / "go",
        )
    finally:
        node.close()
    print(json.dumps(out))


CATEGORIES = (  # (name, test on (file, function name)) — first match wins
    ("sqlite3 C calls: commit (fsync)", lambda f, n: "sqlite3" in n and "commit" in n),
    ("sqlite3 C calls: execute / executemany", lambda f, n: "sqlite3" in n),
    ("SQLAlchemy (statements, session)", lambda f, n: "sqlalchemy" in f),
    ("json encoding (canonical_json, orjson)", lambda f, n: "json" in f or "orjson" in n),
    (
        "split (split_fee, allocate, Payout)",
        lambda f, n: "pricing.py" in f or (f == "<string>" and n in ("__init__", "<lambda>")),
    ),
    ("keccak256 (pysha3)", lambda f, n: "sha3" in n or "keccak" in n),
    ("head signature (coincurve)", lambda f, n: "secp256k1" in n or "coincurve" in f),
    (
        "credit_book.py / receipt_writer.py / receipts.py glue (holds, body, rows)",
        lambda f, n: any(
            f"ledger/{m}.py" in f for m in ("credit_book", "receipt_writer", "receipts")
        ),
    ),
)


def profile_writer(args: argparse.Namespace, group: int, rounds: int = 40) -> dict:
    """Where one receipt's CPU goes, single-threaded (no GIL waits counted), in its two
    halves: the request's thread (``reserve``, request hash, ``ReceiptWriter.price``:
    fee, split, body, content hash) and the writer (``ReceiptWriter.write`` on groups of
    ``group``: link hashes, head signature, rows, commit). First timed without a profiler,
    then under cProfile, grouped by category (cProfile inflates Python calls against C
    calls; the unprofiled figures are the real cost)."""
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.load(env={"OPENLEDGER_HOME": str(Path(tmp) / "home")})
        init_home(settings, PASSWORD)
        node = Node(settings, password_source=lambda: PASSWORD)
        ledger = None
        try:
            ledger, model, pool = make_ledger(node, args, rng)
            payers = [address(p, 0xAA) for p in range(args.payers)]

            def jobs() -> list:
                out = []
                for i in range(group):
                    payer = payers[rng.randrange(args.payers)]
                    hold = ledger.reserve(payer, model, rng.randint(20, 400), 272)
                    digest = request_hash(payer, model["name"], {"i": i})
                    charge = _Charge(
                        hold,
                        rng.randint(16, 256),
                        digest,
                        pool[rng.randrange(256)],
                        PendingReceipt(),
                    )
                    out.append(ledger.writer.price(charge))
                return out

            ledger.writer.write(jobs())  # warm: the beneficiary set, the signer
            if not args.no_freeze:
                freeze_startup_heap()
            t0 = time.perf_counter()
            plain = [jobs() for _ in range(rounds)]
            t1 = time.perf_counter()
            for js in plain:
                ledger.writer.write(js)
            t2 = time.perf_counter()
            prof = cProfile.Profile()
            prof.enable()
            for _ in range(rounds):
                ledger.writer.write(jobs())
            prof.disable()
        finally:
            if ledger is not None:
                ledger.close()  # its lease keeper would outlive the temporary home
            node.close()
    n = rounds * group
    cats: dict[str, float] = {name: 0.0 for name, _ in CATEGORIES} | {"other": 0.0}
    stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    for (file, _, name), (_, _, tottime, _, _) in stats.items():
        cat = next((c for c, test in CATEGORIES if test(file, name)), "other")
        cats[cat] += tottime
    total = sum(cats.values())
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(20)
    return {
        "group": group,
        "receipts": n,
        "request_thread_us_per_receipt": round(1e6 * (t1 - t0) / n),
        "writer_us_per_receipt": round(1e6 * (t2 - t1) / n),
        "single_thread_receipts_per_s": round(n / (t2 - t0), 1),
        "profiled_share": {
            k: f"{100 * v / total:.1f} %" for k, v in sorted(cats.items(), key=lambda kv: -kv[1])
        },
        "top_functions": buf.getvalue().strip().splitlines()[-22:],
    }


def verify(node: Node, expected: int) -> dict:
    """Count, chain, and money conservation of what the run wrote and the seal divided
    (not timed): every fee is in the earnings once the pools are divided."""
    with node.db.session() as s:
        rows = s.execute(
            select(
                ReceiptRow.seq,
                ReceiptRow.hash,
                ReceiptRow.prev_hash,
                ReceiptRow.fee,
                func.length(ReceiptRow.body),
            ).order_by(ReceiptRow.seq)
        ).all()
        earnings = int(s.scalar(select(func.count()).select_from(EarningRow)))
        earned = sum(int(a) for a in s.scalars(select(EarningRow.amount)))
        charged = sum(int(c) for c in s.scalars(select(CreditRow.charged)))
    prev, ok = GENESIS, len(rows) == expected
    for i, (seq, digest, prev_hash, _, _) in enumerate(rows, start=1):
        ok = ok and seq == i and prev_hash == prev
        prev = digest
    fees = sum(int(r[3]) for r in rows)
    ok = ok and fees == charged == earned
    if not ok:
        raise AssertionError(
            f"ledger check failed: {len(rows)} receipts of {expected}, "
            f"fees {fees}, charged {charged}, earned {earned}"
        )
    return {
        "ok": ok,
        "earnings_rows": earnings,
        "body_bytes_mean": round(sum(r[4] for r in rows) / len(rows)),
    }


def machine() -> dict:
    """``common.machine()`` plus what a database benchmark depends on."""
    import sqlite3

    return {
        **common.machine(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
    }


def main() -> dict:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--threads", type=int, default=8, help="submitter threads")
    ap.add_argument("--window", type=int, default=64, help="charges each submitter keeps in flight")
    ap.add_argument("--receipts", type=int, default=8_000, help="receipts per run (ours)")
    ap.add_argument(
        "--baseline-receipts",
        type=int,
        default=2_000,
        help="receipts per baseline run (its rate is what is compared)",
    )
    ap.add_argument("--runs", type=int, default=3, help="runs of each; the median is reported")
    ap.add_argument("--contributions", type=int, default=50, help="training contributions")
    ap.add_argument("--attributed", type=int, default=10, help="contributions per attribution")
    ap.add_argument("--payers", type=int, default=64)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument(
        "--no-freeze",
        action="store_true",
        help="leave the startup heap to the garbage collector (serve freezes it)",
    )
    ap.add_argument(
        "--no-profile",
        action="store_true",
        help="skip the single-threaded profile of the writer (groups of the median size)",
    )
    ap.add_argument("--out", type=Path, default=RESULTS / "ledger.json")
    ap.add_argument(
        "--pg",
        default=os.environ.get("OPENLEDGER_TEST_PG_URL"),
        help="PostgreSQL URL where the user may CREATE DATABASE: also run 1 and 2 ledger "
        "processes on one PostgreSQL database (default: OPENLEDGER_TEST_PG_URL)",
    )
    ap.add_argument("--pg-receipts", type=int, default=8_000, help="receipts per PG run, in all")
    ap.add_argument("--pg-runs", type=int, default=3, help="PG runs of each kind (median)")
    ap.add_argument("--pg-only", action="store_true", help="only the PostgreSQL runs")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return {"child": True}
    if args.pg_only:
        return pg_section(args, {})
    started = machine()
    ours, base, in_thread = [], [], []
    for run in range(args.runs):  # interleaved, so drifting load hits all alike
        ours.append(one_run(args, writer_mod.MAX_GROUP, args.seed + run))
        print(
            f"run {run + 1} ours: {ours[-1]['receipts_per_s']:,} receipts/s "
            f"(mean group {ours[-1]['mean_group']})",
            flush=True,
        )
        in_thread.append(one_run(args, writer_mod.MAX_GROUP, args.seed + run, process=False))
        print(
            f"run {run + 1} priced in the node's thread: "
            f"{in_thread[-1]['receipts_per_s']:,} receipts/s",
            flush=True,
        )
        b_args = argparse.Namespace(**{**vars(args), "receipts": args.baseline_receipts})
        base.append(one_run(b_args, 1, args.seed + run))
        print(f"run {run + 1} baseline: {base[-1]['receipts_per_s']:,} receipts/s", flush=True)
    median = statistics.median(r["receipts_per_s"] for r in ours)
    b_median = statistics.median(r["receipts_per_s"] for r in base)
    result: dict[str, Any] = {
        "claim": "paid-inference accounting throughput on SQLite (fee, split, signed "
        "hash-chained receipt, credit debit, receipt and earnings rows; model compute "
        "excluded), group commit",
        "receipts_per_s": median,
        "receipts_per_s_target": TARGET,
        "meets_target": median >= TARGET,
        "baseline": {
            "name": "the same service and work, one transaction per receipt "
            "(MAX_GROUP = 1, no group commit)",
            "receipts_per_s": b_median,
            "runs": base,
        },
        "speedup_over_baseline": round(median / b_median, 2),
        "priced_in_the_node_s_thread": {
            "name": "the same service with group commit, pricing in the ledger's pricer "
            "thread instead of the pricing process (ledger_pricing_process = 0)",
            "receipts_per_s": statistics.median(r["receipts_per_s"] for r in in_thread),
            "runs": in_thread,
        },
        "runs": ours,
        "parameters": {
            "threads": args.threads,
            "in_flight_per_thread": args.window,
            "in_flight": args.threads * args.window,
            "receipts_per_run": args.receipts,
            "baseline_receipts_per_run": args.baseline_receipts,
            "max_group": writer_mod.MAX_GROUP,
            "runs": args.runs,
            "training_contributions": args.contributions,
            "attributed_contributions": args.attributed,
            "payers": args.payers,
            "prompt_tokens": "20-400",
            "completion_tokens": "16-256 (max_tokens +16)",
            "seed": args.seed,
            "startup_heap_frozen": not args.no_freeze,
            "database": "SQLite (WAL, synchronous FULL default), fresh node home per run",
            "params": "ParamsCache over a fixed ProtocolParams snapshot (defaults; no devnet)",
            "beneficiaries": "datanet, contributions and snapshot rows inserted directly",
        },
        "machine": {**started, "load_average_at_end": os.getloadavg()},
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if not args.no_profile:
        group = round(statistics.median(r["mean_group"] for r in ours))
        result["writer_profile"] = profile_writer(args, group)
        prof = result["writer_profile"]
        print(
            f"single thread, groups of {group}: {prof['request_thread_us_per_receipt']} us "
            f"request side + {prof['writer_us_per_receipt']} us writer per receipt",
            flush=True,
        )
    pg_section(args, result)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"receipts/s: {median:,} (target {TARGET:,}); baseline {b_median:,}; "
        f"{result['speedup_over_baseline']}x → {args.out}"
    )
    return result


def pg_section(args: argparse.Namespace, result: dict) -> dict:
    """The PostgreSQL figures: one ledger process, then two (two nodes on one database), in
    ``result["postgresql"]``; with ``--pg-only`` merged into the results file as it is."""
    if not args.pg:
        return result
    runs: dict[str, list[dict]] = {"1": [], "2": []}
    for _ in range(args.pg_runs):  # interleaved, so drifting load hits both alike
        for processes in (1, 2):
            run = multi_process_pg(args, processes)
            runs[str(processes)].append(run)
            print(
                f"PostgreSQL, {processes} process(es): {run['receipts_per_s']:,} receipts/s",
                flush=True,
            )
    section = {
        "claim": "the same accounting with every node on one PostgreSQL database: 1 and 2 "
        "ledger processes (each with its pricing process), credit leased from the database, "
        "one hash chain checked afterwards",
        "server": _pg_server(args.pg),
        "receipts_per_s": {
            k: statistics.median(r["receipts_per_s"] for r in v) for k, v in runs.items()
        },
        "median_of": args.pg_runs,
        "runs": runs,
        "load_average_at_end": os.getloadavg(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    result["postgresql"] = section
    if args.pg_only:
        doc = json.loads(args.out.read_text()) if args.out.exists() else {}
        doc["postgresql"] = section
        args.out.write_text(json.dumps(doc, indent=2) + "\n")
    return result


def _pg_server(url: str) -> str:
    """The server as measured: version and durability settings (the test server runs with
    fsync and synchronous_commit off)."""
    from sqlalchemy import create_engine

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            show = {
                k: conn.exec_driver_sql(f"SHOW {k}").scalar()
                for k in ("server_version", "fsync", "synchronous_commit")
            }
    finally:
        engine.dispose()
    return (
        f"PostgreSQL {show['server_version']} on this machine (the same 2 cores), fsync "
        f"{show['fsync']}, synchronous_commit {show['synchronous_commit']}"
    )


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
