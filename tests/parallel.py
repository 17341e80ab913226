"""How the suite runs on several pytest-xdist workers (``make test`` runs ``-n 2``).

The hooks live in tests/conftest.py; this module holds what they do:

- **Threads.** Each worker's torch (and its subprocesses, through ``OMP_NUM_THREADS``) gets
  an equal share of the cores: two workers on 2 cores, each with 2 intra-op threads, spin
  against each other and a training loop runs several times slower (the demo took 270 s
  instead of 90 s). Tests that compare thread counts set theirs explicitly.
- **Scheduling.** With ``--dist loadgroup`` (pyproject's addopts) the tests of one file run
  on one worker (module fixtures are built once), files in an ``xdist_group`` together, and
  the work goes out in collection order, where the longest files come first (below), so
  that no long test starts last while the other worker idles.
- **Ports.** :func:`free_port` never hands two workers the same port (see there).

None of this applies to a run without ``-n``: it runs as before, in the usual order.
"""

from __future__ import annotations

import os
import socket
from typing import Any

import pytest

WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1", ... on a worker
WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
INDEX = int(WORKER[2:]) if WORKER.startswith("gw") and WORKER[2:].isdigit() else 0

#: Files that start several processes (serve, job workers, anvil, training) and wait on them
#: with timeouts: one worker runs them one after another rather than two at once.
PROCESS_GROUP = "processes"
PROCESS_FILES = (
    "tests/e2e/test_demo.py",
    "tests/e2e/test_providers.py",
    "tests/e2e/test_two_nodes.py",
    "tests/factory/test_worker.py",
)

#: The longest files (or groups) of a 2-worker run, longest first: they are handed out
#: first. Only the order of the work changes; every test runs as it would alone.
FIRST = (
    *PROCESS_FILES,
    "tests/attribution/quality/test_harness.py",
    "tests/api/test_fuzz.py",
    "tests/ledger/verification/test_verify.py",
    "tests/web/test_browser.py",
    "tests/e2e/test_serve.py",
)


def limit_threads() -> None:
    """One worker's share of the cores for torch/OpenMP (before torch is imported)."""
    if not WORKER:
        return
    share = max(1, (os.cpu_count() or 1) // WORKERS)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(share))


limit_threads()  # on import, from tests/conftest.py: before anything loads torch


def _file(item: pytest.Item) -> str:
    return item.nodeid.split("::", 1)[0]


def order_and_group(items: list[pytest.Item]) -> None:
    """On a worker: the :data:`FIRST` files first (a stable sort; every worker collects the
    same order), and the :data:`PROCESS_FILES` in one ``xdist_group``."""
    if not WORKER:
        return
    rank = {path: i for i, path in enumerate(FIRST)}
    items.sort(key=lambda item: rank.get(_file(item), len(FIRST)))
    for item in items:
        if _file(item) in PROCESS_FILES:
            item.add_marker(pytest.mark.xdist_group(PROCESS_GROUP))


def make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadgroup``, except that ungrouped tests go out a file at a time (not one by
    one) and the work queue keeps the collection order."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class FileGroupScheduling(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            if nodeid.rfind("@") > nodeid.rfind("]"):
                return nodeid.split("@")[-1]
            return nodeid.split("::", 1)[0]

    config.option.loadscopereorder = False
    return FileGroupScheduling(config, log)


def free_port() -> int:
    """A port that is free now. On a worker, only ports with ``(port // 2) % workers`` equal
    to this worker's index: the kernel picks at random, so two workers could otherwise get
    the same port between one test's pick and its server binding it."""
    held: list[socket.socket] = []
    try:
        for _ in range(64):
            s = socket.socket()
            held.append(s)  # held while searching: the kernel does not hand it out again
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            if WORKERS <= 1 or (port // 2) % WORKERS == INDEX:
                return port
        raise RuntimeError("no free port for this worker in 64 tries")
    finally:
        for s in held:
            s.close()
