"""The node's job worker: runs queued jobs one at a time, each in its own process, so a
crash or a kill of a job never takes the node down (the job is then resumable)."""

from __future__ import annotations

import logging
import subprocess
import threading

from openledger.factory.jobs import JobService, spawn_runner

log = logging.getLogger("openledger.worker")


class JobWorker(threading.Thread):
    def __init__(self, jobs: JobService, *, interval: float = 2.0) -> None:
        super().__init__(name="openledger-job-worker", daemon=True)
        self.jobs = jobs
        self.interval = interval
        self._stop = threading.Event()
        self.current: subprocess.Popen | None = None

    def run(self) -> None:
        while not self._stop.is_set():
            if self.current is not None and self.current.poll() is None:
                self._stop.wait(self.interval)
                continue
            self.current = None
            job_id = self.jobs.next_queued()
            if job_id is None:
                self._stop.wait(self.interval)
                continue
            log.info("starting job %s", job_id)
            self.current = spawn_runner(job_id)

    def stop(self) -> None:
        """Stop picking up jobs; a running job goes on in its own process."""
        self._stop.set()
