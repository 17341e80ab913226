"""Token provenance on a real tiny model: owners found, text normalised as trained, exactly
the same weights on any thread count, and an index anyone rebuilds to the same hash."""

from __future__ import annotations

from pathlib import Path

import torch

from openledger.attribution.gradient.attributor import query_ids
from openledger.attribution.provenance import ProvenanceAttributor, ProvenanceIndex, build
from openledger.attribution.snapshot_indexes import tokenizer_id
from openledger.attribution.types import query_hash
from tests.attribution.conftest import Trained, loaded


def _attributor(t: Trained, folder: Path, examples=None) -> ProvenanceAttributor:
    model, tok = loaded(t)
    build(
        examples if examples is not None else t.examples,
        folder,
        vocab_size=len(tok),
        tokenizer_id=tokenizer_id(tok),
        identity={"model": "m"},
    )
    return ProvenanceAttributor.for_model(ProvenanceIndex(folder), model, tok, model_name="m")


def test_training_answers_go_to_their_owner(trained: Trained, tmp_path: Path) -> None:
    attributor = _attributor(trained, tmp_path / "p")
    _, tokenizer = loaded(trained)
    hits = 0
    rows = [r for r in trained.data.rows if r["kind"] == "prompt_completion"]
    for r in rows:
        a = attributor.attribute_ids(*query_ids(tokenizer, r["prompt"], r["completion"]))
        assert 0 < a.attributed <= 1 and a.method == "provenance"
        hits += bool(a.shares) and a.shares[0].contributor == r["contributor"]
    assert hits >= 0.9 * len(rows)


def test_whitespace_and_line_ends_do_not_change_the_weights(
    trained: Trained, tmp_path: Path
) -> None:
    attributor = _attributor(trained, tmp_path / "p")
    _, tokenizer = loaded(trained)
    r = next(r for r in trained.data.rows if r["kind"] == "prompt_completion")
    ref = attributor.attribute_ids(*query_ids(tokenizer, r["prompt"], r["completion"]))
    for prompt, completion in [
        (r["prompt"], " " + r["completion"]),
        (r["prompt"] + "  ", r["completion"] + " \r\n"),
        (" " + r["prompt"].replace("\n", "\r\n"), "\t" + r["completion"]),
    ]:
        again = attributor.attribute_ids(*query_ids(tokenizer, prompt, completion))
        assert again.weights() == ref.weights() and again.shares


def test_weights_are_exactly_the_same_on_another_thread_count_and_a_rebuilt_index(
    trained: Trained, tmp_path: Path
) -> None:
    first = _attributor(trained, tmp_path / "a")
    _, tokenizer = loaded(trained)
    queries = [query_ids(tokenizer, q["prompt"], q["completion"]) for q in trained.data.queries]
    ref = [first.attribute_ids(p, c).weights() for p, c in queries]
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1 if threads > 1 else 2)
        second = _attributor(trained, tmp_path / "b")  # rebuilt from the same examples
        again = [second.attribute_ids(p, c).weights() for p, c in queries]
    finally:
        torch.set_num_threads(threads)
    assert second.index.index_hash == first.index.index_hash
    assert again == ref  # bit for bit, not approximately
    assert any(ref)


def test_records_not_trained_on_earn_nothing(trained: Trained, tmp_path: Path) -> None:
    held = {e.record for e in trained.examples[::3]}
    kept = [e for e in trained.examples if e.record not in held]
    attributor = _attributor(trained, tmp_path / "p", kept)
    assert attributor.index.meta["records"] == [e.record for e in kept]
    _, tokenizer = loaded(trained)
    for r in trained.data.rows:
        if r["kind"] != "prompt_completion":
            continue
        a = attributor.attribute_ids(*query_ids(tokenizer, r["prompt"], r["completion"]))
        assert not {e.record for e in a.evidence} & held


def test_query_hash_names_the_tokens() -> None:
    assert query_hash([1, 2], [3]) == query_hash([1, 2], [3]) != query_hash([1], [2, 3])
    assert query_hash([1], [2]).startswith("0x") and len(query_hash([1], [2])) == 66
