"""The reduced quality harness that runs in CI: canary top-1 of the gradient method ≥ 0.8."""

from __future__ import annotations

from pathlib import Path

from openledger.attribution.quality.harness import HarnessConfig, run
from openledger.attribution.quality.synthetic import make_datanet


def test_synthetic_datanet_has_owners_a_duplicator_and_noise() -> None:
    d = make_datanet(owners=10, facts_per_owner=4, facts_step=1, queries_per_owner=None)
    names = set(d.contributor_of.values())
    assert len(names) == 12 and {"duplicator", "noise"} <= names
    assert len(d.facts["owner-09"]) == 13 and d.facts["duplicator"] == d.facts["owner-00"]
    words = {n: {w for f in fs for w in (f.entity, f.value)} for n, fs in d.facts.items()}
    for a in words:
        for b in words:
            if a < b and "duplicator" not in (a, b):
                assert not words[a] & words[b], "owners share no entity or value"
    dup_prompts = {r["prompt"] for r in d.rows if r["contributor"] == "duplicator"}
    own_prompts = {r["prompt"] for r in d.rows if r["contributor"] == "owner-00"}
    assert not dup_prompts & own_prompts  # a paraphrase, not a copy
    assert all(
        q["owners"] == ["owner-00", "duplicator"] for q in d.queries if q["owner"] == "owner-00"
    )
    assert make_datanet(seed=1).rows != make_datanet(seed=0).rows
    assert make_datanet(seed=0).rows == make_datanet(seed=0).rows


def test_reduced_harness_canary(tiny_base_dir: Path, tmp_path: Path) -> None:
    cfg = HarnessConfig(
        owners=10,
        facts_per_owner=2,
        facts_step=0,
        queries_per_owner=None,
        checkpoints=1,
        noise_records=4,
        loco=False,
        lds_subsets=0,
        proj_dim=256,
    )
    cfg.train.update(epochs=3, lr=5e-3)
    result = run(tiny_base_dir, tmp_path, cfg, say=lambda _: None)
    canary = result["canary_top1"]
    assert canary["gradient"] >= 0.8
    assert canary["random"] < canary["gradient"]
    assert set(canary) == {"gradient", "grad_dot", "tfidf", "random"}
