"""Training jobs: a store row, a work directory (log, checkpoints, metrics), and a runner
that can be killed at any moment and resumed to the same result."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from openledger.datanets.snapshots import SnapshotService, parse_ref
from openledger.errors import ConflictError, NotFoundError, ValidationError
from openledger.factory.config import TrainConfig
from openledger.factory.metrics import read_metrics
from openledger.procs import pid_alive
from openledger.store.db import Database
from openledger.store.factory_tables import JOB_STATUSES, JobRow

RESUMABLE = ("failed", "cancelled")
CANCEL_POLL_S = 2.0


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
    }


@dataclass
class JobService:
    db: Database
    snapshots: SnapshotService
    jobs_dir: Path

    # -- submitting -------------------------------------------------------------------------
    def submit_train(
        self,
        datanet: str,
        base: str,
        config: TrainConfig | dict[str, Any],
        owner: str | None = None,
    ) -> dict[str, Any]:
        """Validate a training request and queue it; returns the job. ``owner``: the account
        that asked for it over the API (None: the node's own, from the CLI)."""
        cfg = config if isinstance(config, TrainConfig) else TrainConfig.from_mapping(config)
        cfg.validate()  # the model-dependent checks (target modules) run when the job starts
        name, version = parse_ref(datanet)
        snap = self.snapshots.get(name, version)  # unknown datanet or version: NotFoundError
        _check_base(base)
        params = {
            "datanet": name,
            "version": snap["version"],
            "snapshot_root": snap["root"],
            "base": str(base),
            "config": cfg.to_dict(),
        }
        with self.db.session() as s:
            row = JobRow(kind="train", params=params, work_dir="", owner=owner)
            s.add(row)
            s.flush()
            row.work_dir = str(self.jobs_dir / f"job-{row.id:06d}")
            return job_dict(row)

    # -- reading ----------------------------------------------------------------------------
    def get(self, job_id: int) -> dict[str, Any]:
        with self.db.session() as s:
            row = self._row(s, job_id)
            doc = job_dict(row)
        work = Path(doc["work_dir"])
        metrics = read_metrics(work / "metrics.jsonl")
        doc["metrics"] = {"steps": len(metrics), "last": metrics[-1] if metrics else None}
        doc["loss_curve"] = str(work / "loss.png") if (work / "loss.png").exists() else None
        doc["alive"] = pid_alive(doc["pid"]) if doc["status"] == "running" else False
        return doc

    def list(self, status: str | None = None, offset: int = 0, limit: int = 50) -> dict[str, Any]:
        if status is not None and status not in JOB_STATUSES:
            raise ValidationError(
                f"Unknown job status {status!r}.", field="status", value=status,
                fix=f"use one of: {', '.join(JOB_STATUSES)}.",
            )  # fmt: skip
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
                    f"Job {job_id} is already {row.status}.", field="job", value=job_id,
                    fix="only queued or running jobs can be cancelled.",
                )  # fmt: skip
            return job_dict(row)

    def requeue(self, job_id: int) -> dict[str, Any]:
        """Put a failed, cancelled or crashed job back in the queue (it resumes)."""
        with self.db.session() as s:
            row = self._row(s, job_id)
            stale = row.status == "running" and not pid_alive(row.pid)
            if row.status not in RESUMABLE and not stale:
                raise ConflictError(
                    f"Job {job_id} is {row.status}; it cannot be resumed.", field="job",
                    value=job_id, fix="resume only failed, cancelled or crashed jobs.",
                )  # fmt: skip
            row.status, row.pid, row.cancel_requested, row.error = "queued", None, False, None
            return job_dict(row)

    def claim(self, job_id: int, *, resume: bool = False) -> dict[str, Any]:
        """Mark a job as running in this process (queued, or resumable when ``resume``)."""
        with self.db.session() as s:
            row = self._row(s, job_id)
            stale = row.status == "running" and not pid_alive(row.pid)
            allowed = ("queued",) + (RESUMABLE if resume else ())
            if row.status not in allowed and not (resume and stale):
                verb = "resumed" if resume else "started"
                raise ConflictError(
                    f"Job {job_id} is {row.status}"
                    + (f" in process {row.pid}" if row.status == "running" else "")
                    + f"; it cannot be {verb}.",
                    field="job",
                    value=job_id,
                    fix="resume only failed, cancelled or crashed jobs; `openledger jobs show`.",
                )
            row.status, row.pid, row.cancel_requested = "running", os.getpid(), False
            row.error, row.started_at = None, row.started_at or _now()
            return job_dict(row)

    def finish(self, job_id: int, status: str, *, result: dict | None = None,
               error: str | None = None) -> None:  # fmt: skip
        with self.db.session() as s:
            row = self._row(s, job_id)
            row.status, row.result, row.error = status, result, error
            row.finished_at = _now()

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
                f"No job {job_id}.", field="job", value=job_id,
                fix="list jobs with `openledger jobs list`.",
            )  # fmt: skip
        return row


def _check_base(base: str) -> None:
    path = Path(base).expanduser()
    looks_local = path.is_absolute() or base.startswith(".") or path.exists()
    if looks_local and not (path / "config.json").exists():
        raise NotFoundError(
            f"No Hugging Face model directory at {base!r} (no config.json).",
            field="--base",
            value=base,
            fix="pass a model directory, a hub id, or build the offline default with "
            "`openledger factory tiny-base`.",
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
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip


__all__ = ["JobService", "cancel_checker", "job_dict", "spawn_runner"]
