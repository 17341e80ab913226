"""Building a gradient index: resumable, sharded, optionally in parallel processes.

Each (checkpoint, shard) is an independent task whose files are written atomically with a
marker last, so an interrupted build (Ctrl-C, a crash) resumes where it stopped: finished
shards are kept when ``build.json`` — everything that decides the numbers — is unchanged,
and discarded otherwise. With ``workers > 1`` the tasks run in spawned processes, each
loading the model once and using ``cores // workers`` torch threads.

Reproducible: each example's gradient is computed in a batch of same-length examples (no
padding, row-by-row operations), on one thread, in float64, and stored as float16 rows with
power-of-two scales, so another thread count, ``workers`` or
``batch_size`` gives the same bytes, and the same index hash, on the same kind of CPU
(tests/attribution/gradient/test_build.py and bench_attribution_verify.py rebuild to
check). ``batch_size`` is therefore not part of what is hashed. (Across CPU architectures
BLAS kernels may sum in another order; a gradient that is a near-cancelling sum can then
round to another float16 in rare entries. Token provenance, the default policy, has no such
step: docs/attribution-verify.md.)
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from openledger.attribution.gradient.grads import make_grads, module_shapes
from openledger.attribution.gradient.index import (
    BUILD,
    DEFAULT_DAMPING,
    META,
    PRECOND,
    ckpt_dir,
    finish_meta,
    preconditioner,
    read_marker,
    shard_stem,
    write_examples,
    write_shard,
)
from openledger.attribution.gradient.loading import (
    ModelSpec,
    load_lora_state,
    read_checkpoint_tensors,
)
from openledger.attribution.gradient.projection import Projection
from openledger.attribution.types import preview
from openledger.errors import ValidationError
from openledger.factory.data import Example, collate
from openledger.factory.train_ops import pad_id
from openledger.fsutil import write_atomic


@dataclass(frozen=True)
class BuildParams:
    """Everything that decides the index's numbers (stored in build.json and meta.json)."""

    proj_dim: int = 1024
    seed: int = 0
    cap: int | None = None  # per-module width; None: the largest that keeps R ≤ 65,536 rows
    loss_reduction: str = "sum"
    grads: str = "auto"
    damping: float = DEFAULT_DAMPING
    shard_size: int = 4096
    batch_size: int = 32

    def validate(self) -> None:
        checks = [
            ("proj_dim", self.proj_dim >= 8, "at least 8 (1024 is the default)"),
            ("damping", self.damping > 0, "positive (0.1 is the default)"),
            ("shard_size", self.shard_size >= 1, "at least 1"),
            ("batch_size", self.batch_size >= 1, "at least 1"),
        ]
        for name, ok, rule in checks:
            if not ok:
                raise ValidationError(
                    f"{name}={getattr(self, name)!r} must be {rule}.",
                    field=name,
                    value=getattr(self, name),
                    fix=f"pass a {name} that is {rule}.",
                )


@dataclass(frozen=True)
class CheckpointRef:
    """A set of LoRA weights to index: the published adapter (``path`` None) or a training
    checkpoint's ``adapter.safetensors``."""

    name: str
    sha256: str
    path: str | None = None


@dataclass
class BuildPlan:
    spec: ModelSpec
    examples: Sequence[Example]
    checkpoints: Sequence[CheckpointRef]
    params: BuildParams
    identity: dict[str, Any] = field(default_factory=dict)  # model, adapter, snapshot, ...


def _shards(n: int, size: int) -> list[tuple[int, int]]:
    return [(s, min(s + size, n)) for s in range(0, n, size)]


def hashed_params(params: BuildParams) -> dict[str, Any]:
    """The parameters that decide the index's bytes (not ``batch_size``: see above)."""
    return {k: v for k, v in asdict(params).items() if k != "batch_size"}


def _build_doc(plan: BuildPlan, projection: Projection) -> dict[str, Any]:
    return {
        "identity": plan.identity,
        "params": hashed_params(plan.params),
        "projection": projection.describe(),
        "checkpoints": [asdict(c) for c in plan.checkpoints],
        "examples": [e.example_id for e in plan.examples],
    }


# --------------------------------------------------------------------------- worker side

_WORKER: dict[str, Any] = {}


def _worker_init(spec: ModelSpec, threads: int) -> None:
    torch.set_num_threads(max(1, threads))
    _WORKER.clear()
    _WORKER["spec"] = spec


def _worker_model(spec: ModelSpec) -> tuple[Any, Any, dict[str, torch.Tensor]]:
    if _WORKER.get("loaded") != spec:
        model, tokenizer = spec.load(dtype=torch.float64)
        published = {n: p.detach().clone() for n, p in model.named_parameters() if ".lora_" in n}
        _WORKER.update(
            loaded=spec, model=model, tokenizer=tokenizer, published=published, ckpt=None
        )
    return _WORKER["model"], _WORKER["tokenizer"], _WORKER["published"]


def shard_features(
    model: Any,
    tokenizer: Any,
    examples: Sequence[Example],
    projection: Projection,
    params: BuildParams,
    on_batch: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """(len(examples), k) projected per-example gradients, in the examples' order.

    Examples are batched only with examples of the same length (no padding) and computed
    on one thread, and the dense projection multiplies fixed blocks of rows
    (``Projection.project_rows``): every operation is row by row, so an example's bytes
    depend on nothing but the example, the weights and the projection — not on
    ``batch_size``, on which examples share its batch, on the thread count or on
    ``--workers`` (which run shards in parallel processes instead)."""
    grads = make_grads(model, projection, params.loss_reduction, params.grads)
    fn = grads.flat if hasattr(grads, "flat") else grads
    out: list[torch.Tensor | None] = [None] * len(examples)
    pad = pad_id(tokenizer)
    by_length: dict[int, list[int]] = {}
    for i, e in enumerate(examples):
        by_length.setdefault(len(e), []).append(i)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for length in sorted(by_length):
            group = by_length[length]
            for a in range(0, len(group), params.batch_size):
                idx = group[a : a + params.batch_size]
                batch = collate([examples[i] for i in idx], pad)  # one length: no padding
                for i, row in zip(idx, fn(batch["input_ids"], batch["labels"]), strict=True):
                    out[i] = row
                if on_batch:
                    on_batch(len(idx))
        stacked = torch.stack(out).double()  # type: ignore[arg-type]
        return projection.project_rows(stacked) if fn is not grads else stacked
    finally:
        torch.set_num_threads(threads)


def _run_task(
    spec: ModelSpec,
    projection: Projection,
    params: BuildParams,
    root: str,
    ck_index: int,
    ck: CheckpointRef,
    shard: int,
    examples: Sequence[Example],
    on_batch: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    model, tokenizer, published = _worker_model(spec)
    if _WORKER.get("ckpt") != ck:
        tensors = published if ck.path is None else read_checkpoint_tensors(Path(ck.path))
        load_lora_state(model, tensors)
        _WORKER["ckpt"] = ck
    feats = shard_features(model, tokenizer, examples, projection, params, on_batch)
    return write_shard(ckpt_dir(Path(root), ck_index), shard, feats)


def _pool_task(args: tuple) -> tuple[int, int, int]:
    projection, params, root, ck_index, ck, shard, examples = args
    _run_task(_WORKER["spec"], projection, params, root, ck_index, ck, shard, examples)
    return ck_index, shard, len(examples)


# --------------------------------------------------------------------------- orchestration


def _progress(enabled: bool, total: int, done: int) -> Any:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("[bold]attribution index"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("examples"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        disable=not enabled,
    )
    task = bar.add_task("build", total=total, completed=done)
    return bar, task


def build_index(
    plan: BuildPlan, root: Path, *, workers: int = 1, progress: bool = True, force: bool = False
) -> dict[str, Any]:
    """Build (or resume, or confirm up to date) the index in ``root``; returns meta.json."""
    plan.params.validate()
    if not plan.examples:
        raise ValidationError(
            "There are no training examples to index.",
            field="examples",
            value=0,
            fix="build the index for a model trained on a snapshot with records.",
        )
    root = Path(root)
    model, tokenizer = plan.spec.load(dtype=torch.float64)
    shapes = module_shapes(model)
    projection = Projection.for_modules(
        shapes, plan.params.proj_dim, plan.params.seed, plan.params.cap
    )
    doc = _build_doc(plan, projection)
    if force and root.exists():
        shutil.rmtree(root)
    meta_path, build_path = root / META, root / BUILD
    if build_path.exists() and json.loads(build_path.read_text()) != doc:
        shutil.rmtree(root)  # built for something else: start over
    elif meta_path.exists():
        return json.loads(meta_path.read_text())
    root.mkdir(parents=True, exist_ok=True)
    write_atomic(build_path, json.dumps(doc, sort_keys=True))

    ranges = _shards(len(plan.examples), plan.params.shard_size)
    k = projection.k
    todo = []
    done_rows = 0
    for ci, ck in enumerate(plan.checkpoints):
        for si, (a, b) in enumerate(ranges):
            if read_marker(ckpt_dir(root, ci), si, b - a, k) is None:
                todo.append((ci, ck, si, list(plan.examples[a:b])))
            else:
                done_rows += b - a
    total = len(plan.examples) * len(plan.checkpoints)
    bar, task = _progress(progress, total, done_rows)
    with bar:
        if workers <= 1 or len(todo) <= 1:
            _WORKER.update(
                loaded=plan.spec,
                model=model,
                tokenizer=tokenizer,
                ckpt=None,
                published={
                    n: p.detach().clone() for n, p in model.named_parameters() if ".lora_" in n
                },
            )
            for ci, ck, si, exs in todo:
                _run_task(
                    plan.spec,
                    projection,
                    plan.params,
                    str(root),
                    ci,
                    ck,
                    si,
                    exs,
                    on_batch=lambda n: bar.advance(task, n),
                )
        else:
            _run_pool(plan, projection, root, todo, workers, lambda n: bar.advance(task, n))
    return _finish(plan, projection, root, ranges, tokenizer)


def _run_pool(
    plan: BuildPlan,
    projection: Projection,
    root: Path,
    todo: list,
    workers: int,
    advance: Callable[[int], None],
) -> None:
    import multiprocessing

    threads = max(1, (os.cpu_count() or 1) // workers)
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        workers, mp_context=ctx, initializer=_worker_init, initargs=(plan.spec, threads)
    ) as pool:
        jobs = [(projection, plan.params, str(root), ci, ck, si, exs) for ci, ck, si, exs in todo]
        for _, _, rows in pool.map(_pool_task, jobs):
            advance(rows)


def _finish(
    plan: BuildPlan,
    projection: Projection,
    root: Path,
    ranges: list[tuple[int, int]],
    tokenizer: Any,
) -> dict[str, Any]:
    k = projection.k
    lambdas = []
    for ci in range(len(plan.checkpoints)):
        folder = ckpt_dir(root, ci)
        grams = [
            np.fromfile(folder / f"{shard_stem(si)}.gram.f64").reshape(k, k)
            for si in range(len(ranges))
        ]
        sumsq = [
            json.loads((folder / f"{shard_stem(si)}.json").read_text())["sumsq"]
            for si in range(len(ranges))
        ]
        inv, lam = preconditioner(grams, plan.params.damping, sumsq)
        write_atomic(folder / PRECOND, inv.tobytes())
        lambdas.append(lam)
        for si in range(len(ranges)):  # k × k float64 each: spent once the inverse exists
            (folder / f"{shard_stem(si)}.gram.f64").unlink()
    rows = [
        {
            "example_id": e.example_id,
            "record": e.record,
            "sha256": e.sha256,
            "contribution": e.contribution,
            "contributor": e.contributor,
            "tokens": len(e.input_ids),
            "preview": preview(tokenizer.decode(list(e.input_ids), skip_special_tokens=True)),
        }
        for e in plan.examples
    ]
    write_examples(root, rows)
    meta = {
        "method": "gradient",
        **plan.identity,
        "params": hashed_params(plan.params),
        "projection": {k_: v for k_, v in projection.describe().items() if k_ != "modules"},
        "modules": [m["name"] for m in projection.describe()["modules"]],
        "n_examples": len(plan.examples),
        "checkpoints": [
            {**asdict(c), "lambda": lam, "shard_rows": [b - a for a, b in ranges]}
            for c, lam in zip(plan.checkpoints, lambdas, strict=True)
        ],
    }
    return finish_meta(root, meta)
