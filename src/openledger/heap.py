"""Keep the garbage collector off the long-lived heap of a serving process.

Importing torch, transformers and SQLAlchemy leaves about half a million objects that live
as long as the process; every full collection walks all of them again, and a request path
that allocates a few hundred small dicts (pricing, receipts) triggers collections often
enough that this walk was half of a paid request's CPU time (`benchmarks/bench_ledger.py`).
``freeze_startup_heap`` moves what exists once the node is built into the collector's
permanent generation (``gc.freeze``): it is never scanned again, and cycles created later
are still collected as before.
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> int:
    """Collect once, then freeze every object that survives; returns how many were frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
