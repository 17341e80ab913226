"""Training jobs: a store row, a work directory (log, checkpoints, metrics), and a runner
that can be killed at any moment and resumed to the same result.

Several workers (on one machine or many) share one job table. A job is claimed by one
conditional ``UPDATE … RETURNING`` (on PostgreSQL the queued row is picked ``FOR UPDATE SKIP
LOCKED``), so two workers never run the same job; the claim names the worker
(``host:pid:token``) and the process running the job renews ``heartbeat_at`` every
``heartbeat_s``. A running job whose heartbeat is older than ``stale_after_s`` (or whose
process on this host is gone) is requeued by any worker and resumes from its checkpoints;
a runner that finds its claim taken stops and writes nothing.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update

from openledger.datanets.snapshots import SnapshotService, parse_ref
from openledger.errors import ConflictError, NotFoundError, Requester, ValidationError
from openledger.factory.config import TrainConfig
from openledger.factory.metrics import read_metrics
from openledger.procs import pid_alive
from openledger.store.db import Database
from openledger.store.factory_tables import JOB_STATUSES, JobRow

RESUMABLE = ("failed", "cancelled")
CANCEL_POLL_S = 2.0
HEARTBEAT_S = 5.0  # how often the process running a job says so
STALE_AFTER_S = 30.0  # a running job silent this long is requeued
HOST = socket.gethostname()
WORKER_ENV = "OPENLEDGER_JOB_WORKER"  # the claim a worker hands to the runner it spawns


def new_worker_id() -> str:
    """``host:pid:token``: who claims a job (the token tells two claims of one process apart)."""
    return f"{HOST}:{os.getpid()}:{secrets.token_hex(4)}"


def _same_host_dead(worker: str | None, pid: int | None) -> bool:
    """The job's process (``pid``, or the claiming worker's until a runner adopts the claim)
    ran on this host and is gone: no need to wait for its heartbeat to stop."""
    parts = str(worker or "").split(":")
    if len(parts) < 2 or parts[0] != HOST:
        return False
    try:
        return not pid_alive(pid or int(parts[1]))
    except ValueError:
        return False


def _now() -> datetime:
    return datetime.now(UTC)


def job_dict(row: JobRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "status": row.status,
        "params": row.params,
        "work_dir": row.work_dir,
        "pid": row.pid,
        "cancel_requested": row.cancel_requested,
        "error": row.error,
        "result": row.result,
        "created_at": row.created_at.isoformat(),
        "started_at": row.started_at.isoformat() if row.started_at else None,
        "finished_at": row.finished_at.isoformat() if row.finished_at else None,
        "owner": row.owner,
        "worker": row.worker,
        "heartbeat_at": row.heartbeat_at.isoformat() if row.heartbeat_at else None,
        "attempts": row.attempts,
    }


@dataclass
class JobService:
    db: Database
    snapshots: SnapshotService
    jobs_dir: Path
    heartbeat_s: float = HEARTBEAT_S
    stale_after_s: float = STALE_AFTER_S

    # -- submitting -------------------------------------------------------------------------
    #: the node's admission of training on a priced snapshot (``ledger.access``, wired by
    #: ``node.py``): ``(datanet, version, account, access id) -> grant`` raising a 402 when the
    #: account must pay first; ``spend(grant, job)`` spends a paid access on the job
    admit: Callable[..., Any] | None = None
    spend: Callable[[Any, int], None] | None = None

    def check_train(
        self, datanet: str, base: str, config: TrainConfig | dict[str, Any]
    ) -> dict[str, Any]:
        """Every check of :meth:`submit_train` that needs no payment (the configuration, the
        snapshot, the base): the job's parameters, or the error. Run before paying, so a
        request that would be refused costs nothing."""
        cfg = config if isinstance(config, TrainConfig) else TrainConfig.from_mapping(config)
        cfg.validate()  # the model-dependent checks (target modules) run when the job starts
        name, version = parse_ref(datanet)
        snap = self.snapshots.get(name, version)  # unknown datanet or version: NotFoundError
        _check_base(base)
        return {
            "datanet": name,
            "version": snap["version"],
            "snapshot_root": snap["root"],
            "base": str(base),
            "config": cfg.to_dict(),
        }

    def submit_train(
        self,
        datanet: str,
        base: str,
        config: TrainConfig | dict[str, Any],
        owner: str | None = None,
        *,
        payer: str | None = None,
        access: int | None = None,
    ) -> dict[str, Any]:
        """Validate a training request and queue it; returns the job. ``owner``: the account
        that asked for it over the API (None: the node's own, from the CLI). On a priced
        snapshot the job needs a paid training access of ``payer`` (default: ``owner``, else
        the operator), ``access`` or any unspent one, unless that account contributed to
        the snapshot or owns the datanet; the job spends it."""
        params = self.check_train(datanet, base, config)
        grant = None
        if self.admit is not None:
            grant = self.admit(params["datanet"], params["version"], payer or owner, access)
            params["access"] = grant.to_dict()
        with self.db.session() as s:
            row = JobRow(kind="train", params=params, work_dir="", owner=owner)
            s.add(row)
            s.flush()
            row.work_dir = str(self.jobs_dir / f"job-{row.id:06d}")
            doc = job_dict(row)
        if grant is not None and self.spend is not None:
            try:
                self.spend(grant, doc["id"])
            except BaseException:
                with self.db.session() as s:  # the payment went to another job: not queued
                    s.delete(s.get(JobRow, doc["id"]))
                raise
        return doc

    def submit_train_for(
        self,
        requester: Requester,
        datanet: str,
        base: str,
        config: TrainConfig | dict[str, Any],
        *,
        account: str,
        named: bool,
        access: int | None = None,
    ) -> dict[str, Any]:
        """:meth:`submit_train` for a request that acts for ``account`` (it pays any
        training access), ``named`` when it named that account itself (``as``). The job is
        ``account``'s, except that one asked by whoever speaks for the node (the operator:
        ``requester.owns(None)``) without naming an account is the node's own (no owner)."""
        owner = None if requester.owns(None) and not named else account
        return self.submit_train(datanet, base, config, owner=owner, payer=account, access=access)

    # -- reading ----------------------------------------------------------------------------
    def get(self, job_id: int) -> dict[str, Any]:
        with self.db.session() as s:
            row = self._row(s, job_id)
            doc = job_dict(row)
        work = Path(doc["work_dir"])
        metrics = read_metrics(work / "metrics.jsonl")
        doc["metrics"] = {"steps": len(metrics), "last": metrics[-1] if metrics else None}
        doc["loss_curve"] = str(work / "loss.png") if (work / "loss.png").exists() else None
        doc["alive"] = doc["status"] == "running" and self._alive(doc)
        return doc

    def own(
        self, job_id: int, requester: Requester, *, nodes_own: bool = False, what: str = "act on it"
    ) -> dict[str, Any]:
        """The job, if ``requester`` may ``what`` it: the account that queued it (or the
        operator), and with ``nodes_own`` anyone for the node's own jobs (queued without an
        owner, as the CLI's and the demo's are); a 403 otherwise."""
        doc = self.get(job_id)
        owner = doc.get("owner")
        if owner is None and nodes_own:
            return doc
        if not requester.owns(owner):
            raise requester.forbid(f"job {job_id} (queued by {owner or 'the node'})", what)
        return doc

    def _alive(self, doc: dict[str, Any]) -> bool:
        if _same_host_dead(doc["worker"], doc["pid"]):
            return False
        beat = doc["heartbeat_at"]
        if beat is None:  # claimed before heartbeats: the pid is all there is
            return pid_alive(doc["pid"])
        age = (_now() - datetime.fromisoformat(beat)).total_seconds()
        return age <= self.stale_after_s

    def list(self, status: str | None = None, offset: int = 0, limit: int = 50) -> dict[str, Any]:
        if status is not None and status not in JOB_STATUSES:
            raise ValidationError(
                f"Unknown job status {status!r}.",
                field="status",
                value=status,
                fix=f"use one of: {', '.join(JOB_STATUSES)}.",
            )
        with self.db.session() as s:
            q = select(JobRow).order_by(JobRow.id.desc())
            if status:
                q = q.where(JobRow.status == status)
            rows = list(s.scalars(q.offset(offset).limit(limit)))
            return {"items": [job_dict(r) for r in rows], "offset": offset, "limit": limit}

    def metrics(self, job_id: int) -> list[dict[str, Any]]:
        return read_metrics(Path(self.get(job_id)["work_dir"]) / "metrics.jsonl")

    # -- control ----------------------------------------------------------------------------
    def cancel(self, job_id: int) -> dict[str, Any]:
        with self.db.session() as s:
            row = self._row(s, job_id)
            if row.status == "queued":
                row.status, row.finished_at = "cancelled", _now()
            elif row.status == "running":
                row.cancel_requested = True
            else:
                raise ConflictError(
                    f"Job {job_id} is already {row.status}.",
                    field="job",
                    value=job_id,
                    fix="only queued or running jobs can be cancelled.",
                )
            return job_dict(row)

    def requeue(self, job_id: int) -> dict[str, Any]:
        """Put a failed, cancelled or crashed job back in the queue (it resumes)."""
        with self.db.session() as s:
            row = self._row(s, job_id)
            doc = job_dict(row)
        stale = row.status == "running" and not self._alive(doc)
        if row.status not in RESUMABLE and not stale:
            raise ConflictError(
                f"Job {job_id} is {row.status}; it cannot be resumed.",
                field="job",
                value=job_id,
                fix="resume only failed, cancelled or crashed jobs.",
            )
        if not self._swap(
            row, status="queued", worker=None, pid=None, cancel_requested=False, error=None
        ):
            raise ConflictError(
                f"Job {job_id} changed while it was being requeued.",
                field="job",
                value=job_id,
                fix="look at the job again.",
            )
        return self.get(job_id)

    def claim(self, job_id: int, *, resume: bool = False, worker: str | None = None) -> dict:
        """Mark a job as running in this process (queued, or resumable when ``resume``; or
        running under ``worker``, the claim of the worker that spawned this process). One
        compare-and-swap: of two processes claiming one job, one gets it."""
        worker = worker or os.environ.get(WORKER_ENV) or None
        with self.db.session() as s:
            row = self._row(s, job_id)
            doc = job_dict(row)
        adopt = worker is not None and row.status == "running" and row.worker == worker
        stale = row.status == "running" and not adopt and not self._alive(doc)
        allowed = ("queued",) + (RESUMABLE if resume else ())
        if not (row.status in allowed or (resume and stale) or adopt):
            raise self._not_claimable(row, resume)
        mine = worker if adopt else new_worker_id()
        now = _now()
        if not self._swap(
            row,
            status="running",
            worker=mine,
            pid=os.getpid(),
            heartbeat_at=now,
            cancel_requested=False,
            error=None,
            started_at=row.started_at or now,
            attempts=row.attempts + (0 if adopt else 1),
        ):
            with self.db.session() as s:
                raise self._not_claimable(self._row(s, job_id), resume)
        self.worker_id = mine
        return self.get(job_id)

    def _not_claimable(self, row: JobRow, resume: bool) -> ConflictError:
        verb = "resumed" if resume else "started"
        where = f" by {row.worker}" if row.status == "running" and row.worker else ""
        return ConflictError(
            f"Job {row.id} is {row.status}{where}; it cannot be {verb}.",
            field="job",
            value=row.id,
            fix="resume only failed, cancelled or crashed jobs; see the job's status.",
        )

    def _swap(self, seen: JobRow, **values: Any) -> bool:
        """Write ``values`` if the job is still as ``seen`` (status, worker, attempts)."""
        with self.db.session() as s:
            done = s.execute(
                update(JobRow)
                .where(
                    JobRow.id == seen.id,
                    JobRow.status == seen.status,
                    JobRow.worker.is_(None)
                    if seen.worker is None
                    else JobRow.worker == seen.worker,
                    JobRow.attempts == seen.attempts,
                )
                .values(**values)
                .returning(JobRow.id)
            ).first()
        return done is not None

    def claim_next(self, worker: str, kinds: tuple[str, ...] = ("train",)) -> int | None:
        """Claim the oldest queued job for ``worker``; its id, or None when none is queued.
        One conditional ``UPDATE … RETURNING`` (PostgreSQL: ``FOR UPDATE SKIP LOCKED``, so
        concurrent workers take different rows without waiting on each other)."""
        pick = (
            select(JobRow.id)
            .where(JobRow.status == "queued", JobRow.kind.in_(kinds))
            .order_by(JobRow.id)
            .limit(1)
        )
        if not self.db.is_sqlite:
            pick = pick.with_for_update(skip_locked=True)
        now = _now()
        with self.db.session() as s:
            got = s.execute(
                update(JobRow)
                .where(JobRow.id == pick.scalar_subquery(), JobRow.status == "queued")
                .values(
                    status="running",
                    worker=worker,
                    pid=None,
                    heartbeat_at=now,
                    cancel_requested=False,
                    error=None,
                    started_at=func.coalesce(JobRow.started_at, now),
                    attempts=JobRow.attempts + 1,
                )
                .returning(JobRow.id)
            ).first()
        return None if got is None else int(got[0])

    def heartbeat(self, job_id: int, worker: str) -> bool:
        """Renew the claim; False when the job is no longer this worker's (requeued after a
        silence, cancelled and taken by another): the runner must stop."""
        with self.db.session() as s:
            got = s.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.worker == worker, JobRow.status == "running")
                .values(heartbeat_at=_now())
                .returning(JobRow.id)
            ).first()
        return got is not None

    def requeue_stale(self) -> list[int]:
        """Requeue every running job whose heartbeat stopped (or whose process on this host
        is gone); returns their ids. Any worker may call it; each job is requeued once."""
        cutoff = datetime.fromtimestamp(time.time() - self.stale_after_s, UTC)
        with self.db.session() as s:
            rows = list(s.scalars(select(JobRow).where(JobRow.status == "running")))
            for row in rows:
                s.expunge(row)
        out = []
        for row in rows:
            silent = row.heartbeat_at is not None and row.heartbeat_at < cutoff
            if (silent or _same_host_dead(row.worker, row.pid)) and self._swap(
                row, status="queued", worker=None, pid=None
            ):
                out.append(row.id)
        return out

    def finish(
        self, job_id: int, status: str, *, result: dict | None = None, error: str | None = None
    ) -> bool:
        """Record the outcome, if the job is still this process's claim (else False: it was
        requeued and another worker owns it now)."""
        mine = getattr(self, "worker_id", None)
        with self.db.session() as s:
            q = update(JobRow).where(JobRow.id == job_id)
            if mine is not None:
                q = q.where(JobRow.worker == mine)
            got = s.execute(
                q.values(status=status, result=result, error=error, finished_at=_now()).returning(
                    JobRow.id
                )
            ).first()
        return got is not None

    def keep_alive(self, job_id: int) -> Callable[[], bool]:
        """Start renewing this process's claim every ``heartbeat_s`` in a daemon thread;
        returns ``lost()``, True once the claim was taken away."""
        worker = self.worker_id
        stop = threading.Event()
        state = {"lost": False}

        def beat() -> None:
            while not stop.wait(self.heartbeat_s):
                try:
                    if not self.heartbeat(job_id, worker):
                        state["lost"] = True
                        return
                except Exception:  # a database hiccup: try again at the next beat
                    continue

        threading.Thread(target=beat, name=f"job-{job_id}-heartbeat", daemon=True).start()
        lost = lambda: state["lost"]  # noqa: E731
        lost.stop = stop.set  # type: ignore[attr-defined]
        return lost

    def cancel_requested(self, job_id: int) -> bool:
        with self.db.session() as s:
            return bool(self._row(s, job_id).cancel_requested)

    def next_queued(self) -> int | None:
        with self.db.session() as s:
            q = select(JobRow.id).where(JobRow.status == "queued").order_by(JobRow.id).limit(1)
            return s.scalar(q)

    def _row(self, s: Any, job_id: int) -> JobRow:
        row = s.get(JobRow, job_id)
        if row is None:
            raise NotFoundError(
                f"No job {job_id}.",
                field="job",
                value=job_id,
                fix="name one of the account's training jobs.",
            )
        return row


def _check_base(base: str) -> None:
    path = Path(base).expanduser()
    looks_local = path.is_absolute() or base.startswith(".") or path.exists()
    if looks_local and not (path / "config.json").exists():
        raise NotFoundError(
            f"No Hugging Face model directory at {base!r} (no config.json).",
            field="base",
            value=base,
            fix="name a model directory or a hub id, or ask the node's operator to build the "
            "offline default (the tiny base).",
        )


def cancel_checker(jobs: JobService, job_id: int) -> Callable[[], bool]:
    """A cheap ``should_stop`` for the trainer: asks the store at most every few seconds."""
    state = {"at": 0.0, "stop": False}

    def should_stop() -> bool:
        now = time.monotonic()
        if now - state["at"] >= CANCEL_POLL_S:
            state["at"], state["stop"] = now, jobs.cancel_requested(job_id)
        return state["stop"]

    return should_stop


def spawn_runner(job_id: int, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Run a job in its own process (`openledger jobs run ID`), logging to its work dir."""
    return subprocess.Popen(
        [sys.executable, "-m", "openledger.cli.main", "jobs", "run", str(job_id), "--quiet"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


__all__ = ["JobService", "cancel_checker", "job_dict", "spawn_runner"]
