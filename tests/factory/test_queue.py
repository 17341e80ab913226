"""The job queue on one database shared by several workers: each job claimed exactly once
(conditional UPDATE … RETURNING; FOR UPDATE SKIP LOCKED on PostgreSQL), heartbeats, and
requeueing a job whose worker went silent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from openledger.factory.jobs import JobService, new_worker_id
from openledger.store.db import Database
from openledger.store.factory_tables import JobRow
from tests.servers import wait_until
from tests.store.conftest import db_url, pg_url, sqlite_url  # noqa: F401 - fixtures

WORKER = """
import json, os, sys, time
from pathlib import Path
from openledger.factory.jobs import JobService, new_worker_id
from openledger.store.db import Database
url, go = sys.argv[1], Path(sys.argv[2])
jobs = JobService(Database.open(url), None, Path("/nowhere"))
(go.parent / f"ready-{os.getpid()}").touch()
while not go.exists():
    time.sleep(0.005)
ran, idle = [], 0
while idle < 25:
    claim = new_worker_id()
    job = jobs.claim_next(claim)
    if job is None:
        idle += 1
        time.sleep(0.01)
        continue
    idle = 0
    time.sleep(0.03)  # the work
    jobs.worker_id = claim
    assert jobs.finish(job, "succeeded", result={"pid": os.getpid()})
    ran.append(job)
print(json.dumps(ran))
"""


def _queue(db: Database, n: int) -> list[int]:
    with db.session() as s:
        rows = [JobRow(kind="train", params={"n": i}, work_dir="") for i in range(n)]
        s.add_all(rows)
        s.flush()
        return [r.id for r in rows]


def test_two_workers_run_each_of_20_jobs_exactly_once(db_url: str, tmp_path: Path) -> None:  # noqa: F811
    db = Database.open(db_url)
    try:
        ids = _queue(db, 20)
        go = tmp_path / "go"
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", WORKER, db_url, str(go)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        wait_until(lambda: len(list(tmp_path.glob("ready-*"))) >= 2, timeout=60, fail=False)
        go.touch()
        outs = [p.communicate(timeout=120) for p in procs]
        assert all(p.returncode == 0 for p in procs), [e for _, e in outs]
        ran = [json.loads(o.splitlines()[-1]) for o, _ in outs]
        assert sorted(ran[0] + ran[1]) == ids  # every job, none twice
        assert ran[0] and ran[1]  # both took part
        with db.session() as s:
            rows = {r.id: r for r in s.scalars(select(JobRow))}
        assert {r.status for r in rows.values()} == {"succeeded"}
        assert {r.attempts for r in rows.values()} == {1}
        for proc, jobs in zip(procs, ran, strict=True):
            assert {rows[j].result["pid"] for j in jobs} == {proc.pid}
    finally:
        db.dispose()


def test_a_silent_job_is_requeued_and_its_old_claim_is_refused(
    sqlite_url: str,  # noqa: F811
) -> None:
    db = Database.open(sqlite_url)
    try:
        (job,) = _queue(db, 1)
        jobs = JobService(db, None, Path("/nowhere"), heartbeat_s=0.05, stale_after_s=5)
        first = new_worker_id()
        assert jobs.claim_next(first) == job and jobs.claim_next(new_worker_id()) is None
        assert jobs.heartbeat(job, first)
        assert jobs.requeue_stale() == []  # it beats: it stays
        old = datetime.now(UTC) - timedelta(seconds=6)
        with db.session() as s:
            s.execute(update(JobRow).where(JobRow.id == job).values(heartbeat_at=old))
        assert jobs.get(job)["alive"] is False
        assert jobs.requeue_stale() == [job] and jobs.requeue_stale() == []
        assert not jobs.heartbeat(job, first)  # the silent worker has lost it
        second = new_worker_id()
        assert jobs.claim_next(second) == job
        jobs.worker_id = first
        assert not jobs.finish(job, "succeeded", result={})  # a late finish writes nothing
        jobs.worker_id = second
        assert jobs.finish(job, "succeeded", result={"by": "second"})
        done = jobs.get(job)
        assert done["status"] == "succeeded" and done["attempts"] == 2
        assert done["result"] == {"by": "second"}
    finally:
        db.dispose()


def test_keep_alive_beats_until_stopped_and_notices_a_lost_claim(sqlite_url: str) -> None:  # noqa: F811
    db = Database.open(sqlite_url)
    try:
        (job,) = _queue(db, 1)
        jobs = JobService(db, None, Path("/nowhere"), heartbeat_s=0.05, stale_after_s=5)
        claimed = jobs.claim(job)
        assert claimed["status"] == "running" and claimed["pid"] == os.getpid()
        lost = jobs.keep_alive(job)
        before = jobs.get(job)["heartbeat_at"]
        wait_until(lambda: jobs.get(job)["heartbeat_at"] > before, timeout=5)
        assert not lost()
        with db.session() as s:  # another worker took it over
            s.execute(update(JobRow).where(JobRow.id == job).values(worker="elsewhere:1:x"))
        assert wait_until(lost, timeout=5)
        lost.stop()  # type: ignore[attr-defined]
        with pytest.raises(Exception, match="cannot be started"):
            jobs.claim(job)
    finally:
        db.dispose()
