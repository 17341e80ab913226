"""The reduced quality harness that runs in CI (no retraining): the default policy against
the baselines on training, unseen-wording and negative queries, and the sybil."""

from __future__ import annotations

from pathlib import Path

import pytest

from openledger.attribution.quality.clinics import NEGATIVE, UNSEEN, make_clinics
from openledger.attribution.quality.harness import HarnessConfig, run
from openledger.datanets.dedup.minhash import MinHasher, estimate


def test_clinics_have_owners_overlap_a_sybil_noise_and_three_kinds_of_query() -> None:
    d = make_clinics(clinics=6, diseases_per_clinic=4, seed=0)
    names = set(d.contributor_of.values())
    assert names == {f"clinic-{i:02d}" for i in range(6)} | {"sybil", "noise"}
    assert d.contributions == sorted(d.contributor_of) and max(d.contributor_of) == 14
    assert max(d.contributor_of, key=lambda c: c) == next(
        c for c, n in d.contributor_of.items() if n == "sybil"
    ), "the sybil contributes last"
    kinds = {q["kind"] for q in d.queries}
    assert kinds == {"train", "unseen", "negative"}
    trained = {(r.get("prompt"), r.get("completion")) for r in d.rows}
    texts = " ".join((r.get("text") or "") + (r.get("prompt") or "") for r in d.rows)
    for q in d.queries_of("unseen"):
        assert (q["prompt"], q["completion"]) not in trained
        assert q["prompt"] not in texts and q["completion"] not in texts
    for q in d.queries_of("negative"):
        assert q["owners"] == []
    assert [q["prompt"] for q in d.queries_of("negative")][: len(NEGATIVE)] == [
        p for p, _ in NEGATIVE
    ]
    assert len(UNSEEN) >= 3
    # overlapping topics: a disease named in two clinics' data, its region by the neighbour
    for dis in d.diseases:
        if dis.region is not None:
            holders = {r["contributor"] for r in d.rows if dis.name in (r.get("text") or "")}
            assert {dis.owner, dis.region_by} <= holders
    # the sybil's paraphrases pass the near-duplicate check against what they copy
    hasher = MinHasher()
    for r in d.rows:
        if r["record"] in d.copied_records:
            mine = hasher.signature(r.get("text") or (r["prompt"] + r["completion"]))
            for o in d.rows:
                if o["contributor"] == "clinic-00":
                    theirs = hasher.signature(o.get("text") or (o["prompt"] + o["completion"]))
                    assert estimate(mine, theirs) < 0.8
    assert make_clinics(seed=1).rows != make_clinics(seed=0).rows
    assert make_clinics(seed=0).rows == make_clinics(seed=0).rows
    with pytest.raises(ValueError):
        make_clinics(clinics=7)


def test_reduced_harness(tiny_base_dir: Path, tmp_path: Path) -> None:
    cfg = HarnessConfig(
        clinics=4,
        diseases_per_clinic=3,
        train_queries=12,
        noise_records=4,
        loco=False,
        lds_subsets=0,
        proj_dim=256,
    )
    cfg.train.update(epochs=40, lr=2e-2)
    r = run(tiny_base_dir, tmp_path, cfg, say=lambda _: None)
    train, unseen = r["top1"]["train"], r["top1"]["unseen"]
    assert train["policy"] >= 0.9
    assert unseen["policy"] >= 0.8
    assert unseen["policy"] > max(unseen[m] for m in ("gradient", "grad_dot", "tfidf", "random"))
    assert r["negative_attributed"] <= 0.3
    assert r["sybil"]["share"] <= r["sybil"]["unique_share"] + 1e-9
    assert set(train) == {"policy", "gradient", "grad_dot", "tfidf", "bm25", "random"}
