"""Two job workers on one database: kill -9 the one running a training job and the other
requeues it when its heartbeat stops, resumes it from its checkpoints and ends with the same
adapter as an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from openledger.factory.runner import run_job
from tests.conftest import PASSWORD, World
from tests.factory.test_jobs import FAST, learnable_snapshot
from tests.servers import wait_until

pytestmark = pytest.mark.anvil

LONG = {**FAST, "epochs": 30}  # ~240 steps: time to kill it half-way


def _wait(what: str, check, timeout: float = 240.0, every: float = 0.02):
    return wait_until(check, timeout, every)  # ``what`` names the wait where it is called


def test_killed_workers_job_finishes_on_the_other(world: World, tiny_base_dir: Path) -> None:
    from safetensors.torch import load_file

    node = world.node
    ref = learnable_snapshot(world)
    first = node.jobs.submit_train(ref, str(tiny_base_dir), LONG)["id"]
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # as the workers run (OMP_NUM_THREADS=1): the same sums, bit for bit
    try:
        whole = run_job(node.jobs, node.snapshots, first, progress=False)
    finally:
        torch.set_num_threads(before)
    job = node.jobs.submit_train(ref, str(tiny_base_dir), LONG)["id"]
    s = node.settings
    env = {
        **os.environ,
        "OPENLEDGER_HOME": str(s.home),
        "OPENLEDGER_DB_URL": s.db_url,
        "OPENLEDGER_CHAIN_PORT": str(s.chain_port),
        "OPENLEDGER_PASSWORD": PASSWORD,
        "OPENLEDGER_ADDRESSES": str(s.addresses_path),
        "OMP_NUM_THREADS": "1",
        "OPENLEDGER_JOB_HEARTBEAT_S": "0.5",
        "OPENLEDGER_JOB_STALE_AFTER_S": "5",
    }
    argv = [sys.executable, "-m", "openledger.cli.main", "jobs", "worker", "--interval", "0.2"]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env}
    a = subprocess.Popen(argv, **quiet)
    b = None
    try:
        running = _wait("worker A's runner", lambda: (d := node.jobs.get(job))["pid"] and d)
        first_claim = running["worker"]
        b = subprocess.Popen(argv, **quiet)  # the second worker: idle, one job is queued
        work = Path(running["work_dir"])
        _wait("a checkpoint", lambda: list((work / "checkpoints").glob("step-*")))
        os.kill(running["pid"], signal.SIGKILL)  # the process training it ...
        a.kill()  # ... and its worker
        a.wait()
        done = _wait(
            "the job to finish on B",
            lambda: (d := node.jobs.get(job))["status"] in ("succeeded", "failed") and d,
            every=0.5,
        )
    finally:
        for p in (a, b):
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGINT)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
    assert done["status"] == "succeeded", done["error"]
    assert done["attempts"] == 2 and done["worker"] != first_claim
    assert str(b.pid) == done["worker"].split(":")[1]  # claimed by worker B
    steps = [m["step"] for m in node.jobs.metrics(job) if "train_loss" in m]
    assert steps == sorted(set(steps)) and steps[-1] == whole["result"]["steps"]
    x = load_file(Path(whole["result"]["adapter_dir"]) / "adapter_model.safetensors")
    y = load_file(Path(done["result"]["adapter_dir"]) / "adapter_model.safetensors")
    assert x.keys() == y.keys()
    for key in x:
        torch.testing.assert_close(x[key], y[key], atol=1e-6, rtol=1e-5)
