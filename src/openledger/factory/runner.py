"""Running one training job to the end (or to a cancel), resumably.

Everything a resumed run needs is in the job's work directory: the trainer's checkpoints and
metrics, the run log, and ``lineage.jsonl`` (for every example: snapshot, record,
contribution, contributor), which attribution reads later.
"""

from __future__ import annotations

import json
import logging
import traceback
from pathlib import Path
from typing import Any

from openledger.datanets.snapshots import SnapshotService
from openledger.errors import OpenLedgerError, ValidationError
from openledger.factory.base import base_fingerprint, load_base
from openledger.factory.config import TrainConfig
from openledger.factory.data import build_examples, split_eval
from openledger.factory.jobs import JobService, cancel_checker
from openledger.factory.trainer import Trainer


def _log(work: Path) -> logging.Logger:
    logger = logging.getLogger(f"openledger.job.{work.name}")
    if not logger.handlers:
        handler = logging.FileHandler(work / "job.log", encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    return logger


def run_job(
    jobs: JobService,
    snapshots: SnapshotService,
    job_id: int,
    *,
    resume: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Claim the job, train (resuming from its newest checkpoint), record the outcome."""
    job = jobs.claim(job_id, resume=resume)
    lost = jobs.keep_alive(job_id)  # the heartbeat: while it beats, no other worker takes it
    try:
        return _run(jobs, snapshots, job, resume=resume, progress=progress, lost=lost)
    finally:
        lost.stop()  # type: ignore[attr-defined]


def _run(
    jobs: JobService,
    snapshots: SnapshotService,
    job: dict[str, Any],
    *,
    resume: bool,
    progress: bool,
    lost: Any,
) -> dict[str, Any]:
    job_id = job["id"]
    work = Path(job["work_dir"])
    work.mkdir(parents=True, exist_ok=True)
    log = _log(work)
    params = job["params"]
    log.info(
        "job %s %s (pid %s): %s",
        job_id,
        "resumed" if resume else "started",
        job["pid"],
        json.dumps(params),
    )
    try:
        config = TrainConfig.from_mapping(params["config"])
        model, tokenizer = load_base(params["base"])
        config.validate(model)
        table = snapshots.table(params["datanet"], params["version"])
        ref = f"{params['datanet']}@{params['version']}"
        examples = build_examples(
            table.to_pylist(), tokenizer, max_seq_len=config.max_seq_len, snapshot=ref
        )
        if not examples:  # every record truncated away or empty
            raise ValidationError(
                f"Snapshot {ref} yields no training examples at max_seq_len {config.max_seq_len}.",
                field="datanet",
                value=ref,
                fix="train on a snapshot with approved records, or raise max_seq_len.",
            )
        train, evaluation = split_eval(examples, config.eval_split, config.seed)
        trainer = Trainer(model, tokenizer, train, evaluation, config, work, progress=progress)
        cancelled = cancel_checker(jobs, job_id)
        result = trainer.run(resume=True, should_stop=lambda: lost() or cancelled())
        if lost():  # requeued while silent and taken by another worker: its run counts
            log.warning("job %s: the claim was taken by another worker; stopping", job_id)
            return jobs.get(job_id)
        outcome = result.to_dict()
        outcome["base_fingerprint"] = base_fingerprint(params["base"])
        if result.interrupted:
            jobs.finish(job_id, "cancelled", result=outcome)
            log.info("job %s cancelled at step %s", job_id, outcome.get("steps"))
        else:
            jobs.finish(job_id, "succeeded", result=outcome)
            log.info("job %s succeeded: %s", job_id, json.dumps(outcome))
        return jobs.get(job_id)
    except OpenLedgerError as exc:
        jobs.finish(job_id, "failed", error=str(exc))
        log.error("job %s failed: %s", job_id, exc)
        raise
    except BaseException as exc:  # a crash: record it, keep checkpoints for resume
        jobs.finish(job_id, "failed", error=f"{type(exc).__name__}: {exc}")
        log.error("job %s crashed:\n%s", job_id, traceback.format_exc())
        raise
