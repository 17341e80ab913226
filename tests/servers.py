"""Run an ASGI app on a real socket in a thread, for tests that need HTTP between parts."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from tests.conftest import free_port


def wait_until(condition: Callable[[], Any], timeout: float = 20.0, every: float = 0.02) -> Any:
    """Poll ``condition`` until it returns something truthy (returned) or ``timeout`` ends
    (AssertionError)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(every)


@contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    """``app`` served at the yielded URL until the block ends."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
