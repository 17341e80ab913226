from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from openledger.attribution.gradient.index import (
    Checkpoint,
    GradientIndex,
    finish_meta,
    preconditioner,
    read_marker,
    write_shard,
)
from openledger.errors import NotFoundError


def _features(n: int = 40, k: int = 16, scale: float = 1e-4) -> torch.Tensor:
    return torch.randn(n, k, generator=torch.Generator().manual_seed(0)) * scale


def test_shard_round_trip_keeps_precision_at_any_scale(tmp_path: Path) -> None:
    for scale in (1e-7, 1.0, 1e4):
        phi = _features(scale=scale)
        write_shard(tmp_path, 0, phi)
        rows = np.fromfile(tmp_path / "shard-00000.f16", dtype=np.float16).reshape(40, 16)
        s = np.fromfile(tmp_path / "shard-00000.scale.f32", dtype=np.float32)
        back = rows.astype(np.float64) * s[:, None]
        assert np.allclose(back, phi.double().numpy(), rtol=2e-3, atol=scale * 2e-3)
        assert np.all(np.log2(s) == np.round(np.log2(s)))  # powers of two: exact division
        rms = np.sqrt((rows.astype(np.float64) ** 2).mean(axis=1))
        assert np.all((rms > 0.49) & (rms <= 1.0 + 1e-3))
        gram = np.fromfile(tmp_path / "shard-00000.gram.f64").reshape(16, 16)
        assert np.array_equal(gram, back.T @ back)  # the gram of what a query reads back
        exact = (phi.double().T @ phi.double()).numpy()
        assert np.allclose(gram, exact, rtol=1e-2, atol=1e-2 * np.abs(exact).max())


def test_marker_is_checked(tmp_path: Path) -> None:
    write_shard(tmp_path, 3, _features())
    assert read_marker(tmp_path, 3, 40, 16) is not None
    assert read_marker(tmp_path, 3, 41, 16) is None  # other shape: rebuild
    (tmp_path / "shard-00003.f16").unlink()
    assert read_marker(tmp_path, 3, 40, 16) is None  # a file is missing: rebuild


def test_preconditioner_lambda_rule() -> None:
    phi = _features(n=30, k=8, scale=1.0).double().numpy()
    grams = [phi[:10].T @ phi[:10], phi[10:].T @ phi[10:]]
    inv, lam = preconditioner(grams, damping=0.1)
    gram = phi.T @ phi
    assert lam == pytest.approx(0.1 * np.trace(gram) / 8)
    assert np.allclose(inv @ (gram + lam * np.eye(8)), np.eye(8), atol=1e-4)


def test_scores_match_float64_reference() -> None:
    phi = _features(n=50, k=16, scale=3e-3)
    rows = (phi / phi.pow(2).mean(1, keepdim=True).sqrt()).half().numpy()
    scale = phi.pow(2).mean(1).sqrt().double().numpy()
    p = np.linalg.inv(phi.double().numpy().T @ phi.double().numpy() + np.eye(16) * 1e-5)
    ck = Checkpoint([(rows[:20], scale[:20]), (rows[20:], scale[20:])], p.astype(np.float32))
    q = np.random.default_rng(0).standard_normal(16) * 1e-3
    exact = phi.double().numpy() @ (p @ q)
    got = ck.scores(q)
    assert np.allclose(got, exact, rtol=1e-2, atol=np.abs(exact).max() * 5e-3)
    plain = ck.scores(q, precondition=False)
    assert np.allclose(plain, phi.double().numpy() @ q, rtol=1e-2, atol=1e-9)
    assert np.all(ck.scores(np.zeros(16)) == 0)


def test_meta_hash_covers_every_file(tmp_path: Path) -> None:
    write_shard(tmp_path / "ckpt-00", 0, _features())
    meta = finish_meta(tmp_path, {"method": "gradient", "n_examples": 40})
    # the gram (and the preconditioner made from it) are derived from the rows: not hashed
    assert set(meta["files"]) == {
        f"ckpt-00/shard-00000{s}" for s in (".f16", ".scale.f32", ".json")
    }
    again = finish_meta(tmp_path, {"method": "gradient", "n_examples": 40})
    assert again["index_hash"] == meta["index_hash"]
    other = finish_meta(tmp_path, {"method": "gradient", "n_examples": 41})
    assert other["index_hash"] != meta["index_hash"]
    assert json.loads((tmp_path / "meta.json").read_text())["index_hash"] == other["index_hash"]


def test_opening_a_missing_index_says_to_build_it(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError) as err:
        GradientIndex(tmp_path)
    assert "build the model's gradient attribution index" in (err.value.fix or "")
