"""Helpers shared by the attribution benchmarks: the machine, the cached tiny base."""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
CACHE = ROOT.parent / ".openledger" / "bench-cache"


def machine() -> dict[str, Any]:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem = int(Path("/proc/meminfo").read_text().split()[1]) * 1024
    except OSError:
        mem = 0
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem / 2**30, 1),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "load_average_at_start": os.getloadavg(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def tiny_base(say: Any = print) -> Path:
    """The default tiny base (500 steps), built once and cached (gitignored)."""
    from openledger.factory.tiny_base import build_tiny_base
    from openledger.factory.tiny_config import TinyBaseConfig

    out = CACHE / "tiny-base"
    if not (out / "config.json").exists():
        say(f"building the default tiny base into {out} (about a minute)…")
        build_tiny_base(out, TinyBaseConfig(), progress=True, overwrite=True)
    return out
