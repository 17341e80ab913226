"""Queries: canary facts go to their owners, results are reproducible, bad input is named."""

from __future__ import annotations

import numpy as np
import pytest

from openledger.attribution.gradient.attributor import GradientAttributor, query_tensors
from openledger.attribution.gradient.build import build_index
from openledger.attribution.gradient.index import GradientIndex
from openledger.attribution.types import Attribution
from openledger.errors import ValidationError
from tests.attribution.conftest import Trained, loaded

from .test_build import plan


@pytest.fixture(scope="module")
def attributor(trained: Trained, tmp_path_factory: pytest.TempPathFactory) -> GradientAttributor:
    root = tmp_path_factory.mktemp("attr-index")
    build_index(plan(trained, proj_dim=256), root, progress=False)
    model, tok = loaded(trained)
    return GradientAttributor(model, tok, GradientIndex(root), model_name="m")


def test_owner_facts_go_to_their_owner(attributor: GradientAttributor, trained: Trained) -> None:
    hits = 0
    for q in trained.data.queries:
        result = attributor.attribute(q["prompt"], q["completion"])
        by_name: dict[str, float] = {}
        for s in result.shares:
            by_name[s.contributor] = by_name.get(s.contributor, 0.0) + s.weight
        hits += max(by_name, key=by_name.get) in q["owners"]
    assert hits / len(trained.data.queries) >= 0.8


def test_result_shape_and_reproducibility(attributor: GradientAttributor, trained: Trained) -> None:
    q = trained.data.queries[0]
    a = attributor.attribute(q["prompt"], q["completion"], top=5)
    b = attributor.attribute(q["prompt"], q["completion"], top=5)
    assert a.to_dict() == b.to_dict()
    assert a.method == "gradient" and a.params["proj_dim"] == 256 and a.model == "m"
    assert a.index_hash == attributor.index.index_hash and not a.truncated
    assert sum(s.weight for s in a.shares) == pytest.approx(1.0)
    assert all(s.weight > 0 for s in a.shares)
    assert [s.weight for s in a.shares] == sorted((s.weight for s in a.shares), reverse=True)
    assert len(a.evidence) == 5 and a.evidence[0].score >= a.evidence[-1].score > 0
    top = a.evidence[0]
    assert top.record is not None and top.example_id.endswith(f"#{top.record}") and top.preview
    assert Attribution.from_dict(a.to_dict()) == a


def test_weights_are_positive_scores_summed_per_contribution(
    attributor: GradientAttributor, trained: Trained
) -> None:
    q = trained.data.queries[1]
    scores, _ = attributor.example_scores(q["prompt"], q["completion"])
    contribs = np.array([e.contribution for e in trained.examples])
    expected = {int(c): float(np.maximum(scores[contribs == c], 0).sum()) for c in set(contribs)}
    total = sum(expected.values())
    got = attributor.attribute(q["prompt"], q["completion"]).weights()
    assert got == pytest.approx({c: v / total for c, v in expected.items() if v > 0})


def test_preconditioning_changes_the_scores(
    attributor: GradientAttributor, trained: Trained
) -> None:
    q = trained.data.queries[2]
    pre, _ = attributor.example_scores(q["prompt"], q["completion"])
    plain, _ = attributor.example_scores(q["prompt"], q["completion"], precondition=False)
    assert not np.allclose(pre / np.abs(pre).max(), plain / np.abs(plain).max())


def test_empty_and_too_long_completions(attributor: GradientAttributor, trained: Trained) -> None:
    with pytest.raises(ValidationError) as err:
        attributor.attribute("Q: what?", "   ")
    assert err.value.field == "completion"
    long = " ".join(["Zorvia"] * 200)
    result = attributor.attribute("Q: tell me", long)
    assert result.truncated and "completion truncated" in result.notes[0]


def test_truncation_keeps_the_prompt_end_and_completion_start(
    attributor: GradientAttributor,
) -> None:
    tok = attributor.tokenizer
    ids, labels, notes = query_tensors(tok, "a " * 100, "b " * 100, 64)
    assert ids.shape[1] == 64 and len(notes) == 2
    kept_completion = int((labels[0] != -100).sum())
    assert kept_completion == 32
    ids, labels, notes = query_tensors(tok, "short", "b " * 100, 64)
    assert ids.shape[1] == 64 and len(notes) == 1 and notes[0].startswith("completion")
