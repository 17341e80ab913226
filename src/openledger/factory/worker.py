"""The job worker: claims queued jobs one at a time and runs each in its own process, so a
crash or a kill of a job never takes the node down (the job is then resumable).

Any number of workers may share one database (``openledger serve`` runs one; ``openledger
jobs worker`` runs one on its own, e.g. on a GPU machine): a job is claimed atomically by
one of them (``JobService.claim_next``), the process running it renews its heartbeat, and
each worker requeues the running jobs whose heartbeat stopped, so the job of a worker that
died finishes on another.
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading

from openledger.factory.jobs import WORKER_ENV, JobService, new_worker_id, spawn_runner

log = logging.getLogger("openledger.worker")


class JobWorker(threading.Thread):
    def __init__(self, jobs: JobService, *, interval: float = 2.0) -> None:
        super().__init__(name="openledger-job-worker", daemon=True)
        self.jobs = jobs
        self.interval = interval
        self._stop = threading.Event()
        self.current: subprocess.Popen | None = None
        self.current_job: int | None = None
        self.claim = ""

    def tick(self) -> int | None:
        """Requeue silent jobs; if idle, claim the next queued job and start it (its id)."""
        for job_id in self.jobs.requeue_stale():
            log.warning("job %s: its worker stopped answering; requeued", job_id)
        if self.current is not None and self.current.poll() is None:
            # beat for the claim while the runner starts (importing torch takes seconds)
            self.jobs.heartbeat(self.current_job, self.claim)  # type: ignore[arg-type]
            return None
        self.current = self.current_job = None
        claim = new_worker_id()
        job_id = self.jobs.claim_next(claim)
        if job_id is None:
            return None
        log.info("starting job %s", job_id, extra={"job": job_id, "worker": claim})
        self.current = spawn_runner(job_id, env={**os.environ, WORKER_ENV: claim})
        self.current_job, self.claim = job_id, claim
        return job_id

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # the database went away for a moment: try again next tick
                log.exception("the job worker's tick failed")
            self._stop.wait(self.interval)

    def stop(self) -> None:
        """Stop picking up jobs; a running job goes on in its own process."""
        self._stop.set()
