"""Run an ASGI app on a real socket in a thread, for tests that need HTTP between parts."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from tests.conftest import free_port


def wait_until(
    condition: Callable[[], Any], timeout: float = 20.0, every: float = 0.02, *, fail: bool = True
) -> Any:
    """Poll ``condition`` until it returns something truthy (returned) or ``timeout`` ends:
    then AssertionError, or with ``fail=False`` the last falsy value (to check that something
    does *not* happen within ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            if not fail:
                return value
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(every)


@contextmanager
def serve_in_thread(app: Any, *, port: int | None = None) -> Iterator[str]:
    """``app`` served at the yielded URL (on ``port``, or a free one) until the block ends."""
    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started or not thread.is_alive(), timeout=30)
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def serve_process(env: dict[str, str], port: int, log: Path, *extra: str) -> subprocess.Popen:
    """``openledger serve --port PORT [extra]`` as a child process, its output in ``log``."""
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "openledger.cli.main", "serve", "--port", str(port), *extra],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def wait_healthy(url: str, proc: subprocess.Popen, log: Path, path: str = "/health") -> None:
    """Wait until ``url + path`` answers 200; fails with the log if the process ends first."""

    def up() -> bool:
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            return httpx.get(f"{url}{path}", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(up, timeout=120, every=0.2)
