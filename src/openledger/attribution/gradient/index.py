"""The on-disk gradient index: projected training gradients, preconditioner, example map.

Layout of an index folder::

    build.json                 what is being built (written first; a different one
                               discards the partial build)
    ckpt-00/                   one folder per checkpoint (00: the published adapter)
      shard-00000.f16          rows × k float16, each row divided by its scale
      shard-00000.scale.f32    rows float32: row scale, the power of two at or above the
                               RMS of the projected gradient (exact, so reproducible)
      shard-00000.gram.f64     k × k float64: this shard's ΦᵀΦ of the stored rows (deleted
                               once precond.f32 is written)
      shard-00000.json         written last: rows and sha256 of the three files
      precond.f32              k × k float32: (ΦᵀΦ + λI)⁻¹ — derived from the rows, so not
                               part of the index hash (a verifier recomputes it)
    examples.parquet           example_id, record, sha256, contribution, contributor,
                               tokens, preview (row i of Φ is example i)
    meta.json                  written last: parameters, λ, every file's sha256, index_hash

λ (the ridge of the preconditioner) is ``damping · tr(ΦᵀΦ) / k`` — ``damping`` times the
mean eigenvalue of ΦᵀΦ, so it scales with the gradients and the number of examples; the
default 0.3 was chosen with the quality harness (docs/attribution-gradient.md has the sweep).

Rows are stored scaled by a power of two to RMS in (½, 1] so float16 keeps ~3 significant
digits whatever the gradients' magnitude; a score is ``scale_i · (Φ̂_i · q)``. Gradients
are computed in float64, row by row (:mod:`~openledger.attribution.gradient.build`), and
then rounded to the stored float16, so another thread count or batch size gives the same
bytes (and the same index hash).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from openledger.errors import ConflictError, NotFoundError, ValidationError
from openledger.fsutil import write_atomic

FORMAT = 2
META = "meta.json"
BUILD = "build.json"
EXAMPLES = "examples.parquet"
PRECOND = "precond.f32"
DEFAULT_DAMPING = 0.3


def ckpt_dir(root: Path, i: int) -> Path:
    return root / f"ckpt-{i:02d}"


def shard_stem(i: int) -> str:
    return f"shard-{i:05d}"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def canonical(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


# --------------------------------------------------------------------------- shards


def write_shard(folder: Path, index: int, features: torch.Tensor) -> dict[str, Any]:
    """Store one shard of projected gradients (rows × k); returns its marker."""
    folder.mkdir(parents=True, exist_ok=True)
    phi = features.double()
    rms = phi.pow(2).mean(dim=1).sqrt().clamp(min=1e-30)  # (rows,)
    scale = torch.exp2(torch.ceil(torch.log2(rms)))  # a power of two: division is exact
    rows16 = (phi / scale[:, None]).to(torch.float16)
    stored = rows16.double() * scale[:, None]  # exactly what a query reads back
    gram = (stored.T @ stored).numpy()  # (k, k)
    rows = rows16.numpy()
    stem = shard_stem(index)
    files = {
        f"{stem}.f16": np.ascontiguousarray(rows).tobytes(),
        f"{stem}.scale.f32": scale.float().numpy().tobytes(),
        f"{stem}.gram.f64": np.ascontiguousarray(gram).tobytes(),
    }
    for name, data in files.items():
        write_atomic(folder / name, data)
    marker = {
        "rows": int(features.shape[0]),
        "k": int(features.shape[1]),
        # tr(ΦᵀΦ) of this shard in numpy's fixed summation order (λ is hashed: it must not
        # depend on the BLAS thread count that summed the gram)
        "sumsq": float(np.square(stored.numpy()).sum()),
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()},
    }
    write_atomic(folder / f"{stem}.json", json.dumps(marker, sort_keys=True))
    return marker


def read_marker(folder: Path, index: int, rows: int, k: int) -> dict[str, Any] | None:
    """A shard's marker when the shard is complete and has the expected shape."""
    path = folder / f"{shard_stem(index)}.json"
    try:
        marker = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if marker.get("rows") != rows or marker.get("k") != k:
        return None
    if not all((folder / name).exists() for name in marker.get("files", {})):
        return None
    return marker


def preconditioner(
    grams: Sequence[np.ndarray], damping: float, sumsq: Sequence[float] | None = None
) -> tuple[np.ndarray, float]:
    """(ΦᵀΦ + λI)⁻¹ and λ = damping · tr(ΦᵀΦ)/k, from the shards' partial grams (and their
    traces summed in a fixed order, ``sumsq``, when given)."""
    gram = np.sum(grams, axis=0)
    k = gram.shape[0]
    trace = float(np.trace(gram)) if sumsq is None else math.fsum(sumsq)
    lam = damping * trace / k
    if lam <= 0:
        lam = 1e-12  # every gradient is zero: the identity is as good as anything
    inv = np.linalg.inv(gram + lam * np.eye(k))
    return inv.astype(np.float32), lam


def examples_table(rows: Sequence[dict[str, Any]]) -> pa.Table:
    schema = pa.schema(
        [
            ("example_id", pa.string()),
            ("record", pa.int64()),
            ("sha256", pa.string()),
            ("contribution", pa.int64()),
            ("contributor", pa.string()),
            ("tokens", pa.int32()),
            ("preview", pa.string()),
        ]
    )
    return pa.Table.from_pylist(list(rows), schema=schema)


def write_examples(root: Path, rows: Sequence[dict[str, Any]]) -> None:
    sink = pa.BufferOutputStream()
    pq.write_table(examples_table(rows), sink)
    write_atomic(root / EXAMPLES, sink.getvalue().to_pybytes())


def finish_meta(root: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """Hash every file, add ``index_hash`` (sha256 of the canonical meta), write meta.json."""
    files = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        derived = path.name == PRECOND or path.name.endswith(".gram.f64")
        hidden = path.name.startswith(".")
        if path.is_file() and not derived and not hidden and rel not in (META, BUILD):
            files[rel] = sha256_file(path)
    body = {**meta, "format": FORMAT, "files": files}
    body["index_hash"] = "0x" + hashlib.sha256(canonical(body)).hexdigest()
    write_atomic(root / META, json.dumps(body, indent=1, sort_keys=True))
    return body


# --------------------------------------------------------------------------- reading


@dataclass
class Checkpoint:
    """One checkpoint's rows (memory-mapped shards) and preconditioner."""

    shards: list[tuple[np.ndarray, np.ndarray]]  # (rows × k float16 memmap, rows scale)
    precond: np.ndarray  # (k, k) float32

    def scores(self, q: np.ndarray, precondition: bool = True) -> np.ndarray:
        """(N,) float64 scores of every example against the query gradient ``q`` (k,).

        One float16 matrix-vector product per shard on the memory-mapped rows (torch
        accumulates in float32; it splits rows, never a row, over threads, so the result is
        the same on any thread count — tested), the query scaled to [-1, 1] first."""
        v = self.precond.astype(np.float64) @ q if precondition else np.asarray(q, np.float64)
        peak = float(np.abs(v).max())
        if peak == 0 or not np.isfinite(peak):
            return np.zeros(sum(len(s) for _, s in self.shards))
        vh = torch.from_numpy((v / peak).astype(np.float16))  # entries in [-1, 1]
        out = []
        for rows, scale in self.shards:
            dots = torch.from_numpy(np.asarray(rows)) @ vh  # float16 matvec, float32 sums
            out.append(dots.double().numpy() * scale * peak)
        return np.concatenate(out) if out else np.zeros(0)


class GradientIndex:
    """A finished index, opened read-only (shards are memory-mapped)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        path = self.root / META
        if not path.exists():
            raise NotFoundError(
                f"No gradient index at {self.root}.",
                field="index",
                value=str(self.root),
                fix="build the model's gradient attribution index first.",
            )
        self.meta: dict[str, Any] = json.loads(path.read_text())
        if self.meta.get("format") != FORMAT:
            raise ValidationError(
                f"The index at {self.root} has format {self.meta.get('format')}; this "
                f"version reads format {FORMAT}.",
                field="index",
                value=str(self.root),
                fix="rebuild the model's gradient attribution index.",
            )

    @property
    def index_hash(self) -> str:
        return str(self.meta["index_hash"])

    @property
    def k(self) -> int:
        return int(self.meta["projection"]["k"])

    @cached_property
    def checkpoints(self) -> list[Checkpoint]:
        k = self.k
        out = []
        for i, ck in enumerate(self.meta["checkpoints"]):
            folder = ckpt_dir(self.root, i)
            shards = []
            for j, rows in enumerate(ck["shard_rows"]):
                stem = shard_stem(j)
                mat = np.memmap(folder / f"{stem}.f16", dtype=np.float16, mode="c", shape=(rows, k))
                scale = np.fromfile(folder / f"{stem}.scale.f32", dtype=np.float32)
                shards.append((mat, scale.astype(np.float64)))
            precond = np.fromfile(folder / PRECOND, dtype=np.float32).reshape(k, k)
            out.append(Checkpoint(shards, precond))
        return out

    @cached_property
    def examples(self) -> pa.Table:
        return pq.read_table(self.root / EXAMPLES)

    @cached_property
    def contributions(self) -> tuple[np.ndarray, np.ndarray]:
        """(unique contribution ids, row → position in that array)."""
        return np.unique(self.example_contributions, return_inverse=True)

    @cached_property
    def example_contributions(self) -> np.ndarray:
        """(N,) the contribution of each row."""
        return self.examples.column("contribution").to_numpy()

    @cached_property
    def example_rows(self) -> dict[str, list[Any]]:
        """Columns as Python lists (fast per-row access for evidence)."""
        cols = ("example_id", "record", "contribution", "preview")
        return {c: self.examples.column(c).to_pylist() for c in cols}

    @cached_property
    def contributors(self) -> dict[int, str]:
        """contribution → contributor address."""
        t = self.examples.select(["contribution", "contributor"])
        return dict(zip(t.column(0).to_pylist(), t.column(1).to_pylist(), strict=True))

    def __len__(self) -> int:
        return int(self.meta["n_examples"])

    def verify(self) -> None:
        """Recompute every file's sha256 and the index hash; raise on any difference."""
        for rel, digest in self.meta["files"].items():
            if sha256_file(self.root / rel) != digest:
                raise ConflictError(
                    f"Index file {rel} does not match its recorded sha256.",
                    field="index",
                    value=str(self.root / rel),
                    fix="rebuild the index.",
                )
        body = {k: v for k, v in self.meta.items() if k != "index_hash"}
        if "0x" + hashlib.sha256(canonical(body)).hexdigest() != self.index_hash:
            raise ConflictError(
                "meta.json does not match its index_hash.",
                field="index",
                value=str(self.root),
                fix="rebuild the index.",
            )
