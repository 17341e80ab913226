"""The host tier of adapters: loaded from disk by background threads, kept least-recently-
used within a budget in bytes.

Disk → host happens off the engine's thread, so a request for a cold adapter waits while the
requests already running keep decoding; host → device slot is a small copy the engine does
when it admits the request (:class:`~openledger.serving.lora.LoraSlots`). The budget counts
the bytes of the adapters' tensors (``nbytes``), so a tier of rank-64 adapters on every
projection holds fewer of them than one of rank-8 adapters on q and v.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from openledger.errors import ValidationError


class AdapterCache:
    """Adapters in host memory, at most ``capacity_bytes`` of them."""

    def __init__(
        self,
        resolve: Callable[[str], Path],
        loader: Callable[[str, Path], Any],
        *,
        capacity_bytes: int = 4 << 30,
        workers: int = 2,
        on_ready: Callable[[], None] = lambda: None,
    ) -> None:
        self.resolve = resolve
        self.capacity_bytes = capacity_bytes
        self.on_ready = on_ready
        self._loader = loader
        self._lock = threading.Lock()
        self._ready: OrderedDict[str, Any] = OrderedDict()
        self._bytes = 0
        self._loading: set[str] = set()
        self._failed: dict[str, Exception] = {}
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="adapter-load")
        self.load_ms: dict[str, float] = {}
        self.evictions = 0
        self.loads = 0  # adapters loaded into host memory

    def get(self, name: str) -> Any | None:
        """The adapter if it is in host memory (and mark it recently used)."""
        with self._lock:
            adapter = self._ready.get(name)
            if adapter is not None:
                self._ready.move_to_end(name)
            return adapter

    def __contains__(self, name: object) -> bool:
        """In host memory now (without marking it used, unlike ``get``)."""
        with self._lock:
            return name in self._ready

    def request(self, name: str) -> None:
        """Start loading ``name`` in the background unless it is loaded or loading."""
        with self._lock:
            if name in self._ready or name in self._loading or name in self._failed:
                return
            self._loading.add(name)
        self._pool.submit(self._load, name)

    def prefetch(self, names: list[str]) -> None:
        for name in names:
            self.request(name)

    def take_error(self, name: str) -> Exception | None:
        """The error of a failed load (once: a later request tries again)."""
        with self._lock:
            return self._failed.pop(name, None)

    def load_now(self, name: str) -> Any:
        """Load in the caller's thread (tools and benchmarks)."""
        adapter = self.get(name)
        if adapter is None:
            adapter = self._loader(name, self.resolve(name))
            self._store(adapter)
        return adapter

    def _load(self, name: str) -> None:
        start = time.perf_counter()
        try:
            adapter = self._loader(name, self.resolve(name))
            self._store(adapter)
        except Exception as exc:  # delivered to the requests that wait for it
            with self._lock:
                self._loading.discard(name)
                self._failed[name] = exc
        else:
            self.load_ms[name] = (time.perf_counter() - start) * 1000
        self.on_ready()

    def _store(self, adapter: Any) -> None:
        size = int(adapter.nbytes)
        if size > self.capacity_bytes:
            raise ValidationError(
                f"adapter {adapter.name!r} takes {size:,} bytes; the host tier holds "
                f"{self.capacity_bytes:,}.",
                field="adapter",
                value=adapter.name,
                fix="raise [serve] host_tier_mb (OPENLEDGER_SERVE_HOST_TIER_MB).",
            )
        with self._lock:
            self._loading.discard(adapter.name)
            old = self._ready.pop(adapter.name, None)
            if old is not None:
                self._bytes -= int(old.nbytes)
            self._ready[adapter.name] = adapter
            self._bytes += size
            self.loads += 1
            while self._bytes > self.capacity_bytes:
                _, evicted = self._ready.popitem(last=False)
                self._bytes -= int(evicted.nbytes)
                self.evictions += 1

    @property
    def resident(self) -> list[str]:
        with self._lock:
            return list(self._ready)

    @property
    def nbytes(self) -> int:
        with self._lock:
            return self._bytes

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


__all__ = ["AdapterCache"]
