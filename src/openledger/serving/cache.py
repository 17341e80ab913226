"""The CPU tier of adapters: loaded from disk by background threads, kept least-recently-used.

Disk → CPU happens off the engine's thread, so a request for a cold adapter waits while the
requests already running keep decoding; CPU → device slot is a small copy the engine does
when it admits the request (:class:`~openledger.serving.lora.LoraSlots`).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from openledger.serving.adapters import LoraAdapter, load_adapter


class AdapterCache:
    """Adapters in host memory, at most ``capacity`` of them."""

    def __init__(
        self,
        resolve: Callable[[str], Path],
        *,
        capacity: int = 256,
        dtype: torch.dtype = torch.float32,
        workers: int = 2,
        on_ready: Callable[[], None] = lambda: None,
        loader: Callable[[str, Path], LoraAdapter] | None = None,
    ) -> None:
        self.resolve = resolve
        self.capacity = capacity
        self.dtype = dtype
        self.on_ready = on_ready
        self._loader = loader or (lambda name, path: load_adapter(name, path, dtype=dtype))
        self._lock = threading.Lock()
        self._ready: OrderedDict[str, LoraAdapter] = OrderedDict()
        self._loading: set[str] = set()
        self._failed: dict[str, Exception] = {}
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="adapter-load")
        self.load_ms: dict[str, float] = {}
        self.evictions = 0

    def get(self, name: str) -> LoraAdapter | None:
        """The adapter if it is in host memory (and mark it recently used)."""
        with self._lock:
            adapter = self._ready.get(name)
            if adapter is not None:
                self._ready.move_to_end(name)
            return adapter

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

    def load_now(self, name: str) -> LoraAdapter:
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
        except Exception as exc:  # delivered to the requests that wait for it
            with self._lock:
                self._loading.discard(name)
                self._failed[name] = exc
        else:
            self.load_ms[name] = (time.perf_counter() - start) * 1000
            self._store(adapter)
        self.on_ready()

    def _store(self, adapter: LoraAdapter) -> None:
        with self._lock:
            self._loading.discard(adapter.name)
            self._ready[adapter.name] = adapter
            self._ready.move_to_end(adapter.name)
            while len(self._ready) > self.capacity:
                self._ready.popitem(last=False)
                self.evictions += 1

    @property
    def resident(self) -> list[str]:
        with self._lock:
            return list(self._ready)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


__all__ = ["AdapterCache"]
