"""Index builds: content-hashed, resumable, parallel, rebuilt when what decides them changes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from openledger.attribution.gradient import build as build_mod
from openledger.attribution.gradient.build import (
    BuildParams,
    BuildPlan,
    CheckpointRef,
    build_index,
)
from openledger.attribution.gradient.index import DEFAULT_DAMPING, GradientIndex
from openledger.attribution.gradient.loading import ModelSpec
from openledger.errors import ConflictError, ValidationError
from tests.attribution.conftest import Trained


def plan(t: Trained, **params) -> BuildPlan:
    return BuildPlan(
        spec=ModelSpec(str(t.base_dir), str(t.adapter_dir)),
        examples=t.examples,
        checkpoints=[CheckpointRef("published", "abc")],
        params=BuildParams(**{"proj_dim": 32, "shard_size": 8, "batch_size": 4, **params}),
        identity={"model": "m", "adapter_sha256": "abc", "max_seq_len": 64},
    )


def test_build_is_deterministic_and_hashed(trained: Trained, tmp_path: Path) -> None:
    a = build_index(plan(trained), tmp_path / "a", progress=False)
    b = build_index(plan(trained), tmp_path / "b", progress=False)
    assert a["index_hash"] == b["index_hash"] and a["n_examples"] == len(trained.examples)
    assert a["checkpoints"][0]["shard_rows"] == [8] * (len(trained.examples) // 8) + (
        [len(trained.examples) % 8] if len(trained.examples) % 8 else []
    )
    index = GradientIndex(tmp_path / "a")
    index.verify()
    assert len(index) == len(trained.examples)
    assert index.examples.column("record").to_pylist() == [e.record for e in trained.examples]
    lam = a["checkpoints"][0]["lambda"]
    assert lam > 0 and a["params"]["damping"] == DEFAULT_DAMPING
    other_seed = build_index(plan(trained, seed=1), tmp_path / "c", progress=False)
    assert other_seed["index_hash"] != a["index_hash"]
    shard = tmp_path / "a" / "ckpt-00" / "shard-00000.f16"
    shard.write_bytes(bytes(len(shard.read_bytes())))
    with pytest.raises(ConflictError):
        GradientIndex(tmp_path / "a").verify()


def test_an_interrupted_build_resumes_where_it_stopped(
    trained: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference = build_index(plan(trained), tmp_path / "ref", progress=False)
    calls = {"n": 0}
    real = build_mod.write_shard

    def crash_on_third(folder, index, features):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(folder, index, features)

    monkeypatch.setattr(build_mod, "write_shard", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        build_index(plan(trained), tmp_path / "x", progress=False)
    assert not (tmp_path / "x" / "meta.json").exists()
    written = []
    monkeypatch.setattr(
        build_mod, "write_shard", lambda f, i, x: written.append(i) or real(f, i, x)
    )
    meta = build_index(plan(trained), tmp_path / "x", progress=False)
    assert written == list(range(2, len(reference["checkpoints"][0]["shard_rows"])))
    assert meta["index_hash"] == reference["index_hash"]
    written.clear()
    assert build_index(plan(trained), tmp_path / "x", progress=False) == meta  # up to date
    assert written == []


def test_changed_parameters_discard_a_partial_build(trained: Trained, tmp_path: Path) -> None:
    build_index(plan(trained), tmp_path / "x", progress=False)
    (tmp_path / "x" / "meta.json").unlink()  # partial
    meta = build_index(plan(trained, damping=0.5), tmp_path / "x", progress=False)
    assert meta["params"]["damping"] == 0.5
    assert json.loads((tmp_path / "x" / "build.json").read_text())["params"]["damping"] == 0.5


def test_thread_count_workers_and_batch_size_build_the_same_bytes(
    trained: Trained, tmp_path: Path
) -> None:
    """Anyone rebuilding the index gets the same index hash: float64 gradients rounded to
    float16 rows with power-of-two scales do not depend on the summation order."""
    import torch

    reference = build_index(plan(trained), tmp_path / "one", progress=False)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        single = build_index(plan(trained, batch_size=1), tmp_path / "single", progress=False)
    finally:
        torch.set_num_threads(threads)
    two = build_index(plan(trained, batch_size=7), tmp_path / "two", workers=2, progress=False)
    assert single["index_hash"] == reference["index_hash"] == two["index_hash"]
    for name in ("one", "single", "two"):
        GradientIndex(tmp_path / name).verify()
    a, b = GradientIndex(tmp_path / "one"), GradientIndex(tmp_path / "two")
    q = np.random.default_rng(0).standard_normal(a.k)
    scores = a.checkpoints[0].scores(q)
    try:
        torch.set_num_threads(1 if threads > 1 else 2)
        assert np.array_equal(scores, b.checkpoints[0].scores(q))  # and on another thread count
    finally:
        torch.set_num_threads(threads)


def test_checkpoint_ensemble_has_one_block_per_checkpoint(trained: Trained, tmp_path: Path) -> None:
    ckpts = sorted((trained.work / "checkpoints").glob("step-*/adapter.safetensors"))
    assert ckpts, "the fixture keeps training checkpoints"
    p = plan(trained)
    p.checkpoints = [CheckpointRef("published", "abc"), CheckpointRef("early", "x", str(ckpts[0]))]
    meta = build_index(p, tmp_path / "e", progress=False)
    index = GradientIndex(tmp_path / "e")
    assert len(index.checkpoints) == 2
    a = np.asarray(index.checkpoints[0].shards[0][0], dtype=np.float32)
    b = np.asarray(index.checkpoints[1].shards[0][0], dtype=np.float32)
    assert not np.allclose(a, b) and len(meta["checkpoints"]) == 2
    shutil.rmtree(tmp_path / "e")


def test_bad_parameters(trained: Trained, tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as err:
        build_index(plan(trained, proj_dim=4), tmp_path / "x", progress=False)
    assert err.value.field == "proj_dim"
    p = plan(trained)
    p.examples = []
    with pytest.raises(ValidationError) as err:
        build_index(p, tmp_path / "y", progress=False)
    assert err.value.field == "examples"
