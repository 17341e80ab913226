"""Trainer checkpoints on disk: writing, reading, retention, compatibility, RNG state.

A checkpoint is a directory ``checkpoints/step-NNNNNN`` holding ``adapter.safetensors``
(trainable tensors by name), ``best.safetensors`` (the best-by-eval adapter so far),
``optimizer.pt``, ``rng.pt`` (torch, numpy, python) and ``state.json``. It is written to a
``.tmp-*`` directory first and renamed into place by the trainer.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from openledger.errors import ConflictError
from openledger.factory.data import Example
from openledger.fsutil import fsync_dir

CKPT_RE = re.compile(r"step-(\d+)")
#: Settings that may differ between a run and its resume (they don't change the maths).
RESUMABLE_CHANGES = frozenset({"checkpoint_every", "keep_checkpoints"})


def fingerprint(train: list[Example], eval: list[Example]) -> str:
    """sha256 over the ids, input ids and labels of both splits."""
    h = hashlib.sha256()
    for split, examples in (("train", train), ("eval", eval)):
        h.update(split.encode())
        for e in examples:
            h.update(e.example_id.encode())
            h.update(np.asarray(e.input_ids, dtype=np.int64).tobytes())
            h.update(np.asarray(e.labels, dtype=np.int64).tobytes())
    return h.hexdigest()


def write_checkpoint_files(
    tmp: Path,
    current: dict[str, torch.Tensor],
    best: dict[str, torch.Tensor],
    optimizer_state: dict[str, Any],
    meta: dict[str, Any],
) -> None:
    """Write a checkpoint's files into a fresh ``tmp`` directory and make them durable."""
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file(current, str(tmp / "adapter.safetensors"))
    save_file(best, str(tmp / "best.safetensors"))
    torch.save(optimizer_state, tmp / "optimizer.pt")
    torch.save(rng_state(), tmp / "rng.pt")
    (tmp / "state.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    for path in tmp.iterdir():
        with path.open("rb") as fh:
            os.fsync(fh.fileno())
    fsync_dir(tmp)


def read_checkpoint(path: Path) -> tuple[dict[str, Any], dict, dict, Any, dict[str, Any]]:
    """(meta, current tensors, best tensors, optimizer state, RNG state) of a checkpoint;
    raises whatever reading a damaged file raises."""
    meta = json.loads((path / "state.json").read_text(encoding="utf-8"))
    current = load_file(str(path / "adapter.safetensors"))
    best = load_file(str(path / "best.safetensors"))
    optim = torch.load(path / "optimizer.pt", weights_only=True)
    rng = torch.load(path / "rng.pt", weights_only=True)
    return meta, current, best, optim, rng


def remove_stale(checkpoint_dir: Path) -> None:
    """Remove the ``.tmp-*`` leftovers of a process killed mid-write."""
    if checkpoint_dir.is_dir():
        for stale in checkpoint_dir.glob(".tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)


def prune_checkpoints(work_dir: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` complete checkpoints."""
    for old in list_checkpoints(work_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def check_compatible(
    meta: dict[str, Any], path: Path, config: dict[str, Any], data_fingerprint: str
) -> None:
    """Raise :class:`ConflictError` unless the checkpoint was made with ``config`` (up to
    :data:`RESUMABLE_CHANGES`) on the same examples."""
    saved = meta.get("config", {})
    for key, value in config.items():
        if key in RESUMABLE_CHANGES or saved.get(key, value) == value:
            continue
        raise ConflictError(
            f"The checkpoint in {path.parent} was trained with {key}={saved[key]!r}, "
            f"not {value!r}.",
            field=key,
            value=value,
            fix=f"resume with {key}={saved[key]!r}, or start over in a new work dir "
            "(or with resume=False).",
        )
    if meta.get("data") != data_fingerprint:
        raise ConflictError(
            f"The checkpoint in {path.parent} was trained on different examples.",
            field="data",
            value=str(path),
            fix="resume with the same snapshot, tokenizer and max_seq_len, or start over "
            "in a new work dir (or with resume=False).",
        )


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state(legacy=False)
    version, internal, gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy_key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
        "numpy_pos": int(np_state["state"]["pos"]),
        "numpy_gauss": [int(np_state["has_gauss"]), float(np_state["gauss"])],
        "python": [version, list(internal), gauss],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(
        {
            "bit_generator": "MT19937",
            "state": {
                "key": state["numpy_key"].numpy().astype(np.uint32),
                "pos": state["numpy_pos"],
            },
            "has_gauss": state["numpy_gauss"][0],
            "gauss": state["numpy_gauss"][1],
        }
    )
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def list_checkpoints(work_dir: Path) -> list[Path]:
    """The complete checkpoints in ``work_dir/checkpoints``, oldest first (a directory is
    complete once renamed to ``step-NNNNNN``; temporaries start with a dot)."""
    folder = Path(work_dir) / "checkpoints"
    if not folder.is_dir():
        return []
    found = [
        (int(m.group(1)), p)
        for p in folder.iterdir()
        if (m := CKPT_RE.fullmatch(p.name)) and (p / "state.json").is_file()
    ]
    return [p for _, p in sorted(found)]
