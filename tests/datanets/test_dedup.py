"""Near-duplicate detection: MinHash signatures and the persistent LSH index."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openledger.datanets.dedup import (
    DEFAULT_BANDS,
    DEFAULT_ROWS,
    MinHasher,
    NearDupIndex,
    candidate_probability,
    estimate,
    normalise,
)
from openledger.errors import StoreError, ValidationError

# Four paragraphs on one topic (coffee growing), written to share vocabulary and phrasing.
COFFEE = [
    "Arabica coffee grows best at altitudes between one thousand and two thousand metres, "
    "where cool nights slow the ripening of the cherries and let the beans develop more "
    "sugars and acids. Farmers in the highlands of Ethiopia and Colombia pick the ripe "
    "cherries by hand, often passing over the same trees several times during a harvest, "
    "because the fruit on a single branch rarely ripens at the same time.",
    "Robusta coffee tolerates heat and disease better than arabica and is grown mostly in "
    "the lowlands of Vietnam, Brazil and Uganda. Its beans contain almost twice as much "
    "caffeine, which makes the plant bitter to insects but also gives the cup a harsher, "
    "earthier taste. Most robusta is sold to roasters who blend it into espresso or turn it "
    "into instant coffee.",
    "After the harvest the cherries are processed either by the washed method, in which the "
    "pulp is removed and the beans ferment in water tanks for a day or two, or by the natural "
    "method, in which whole cherries dry in the sun on raised beds for several weeks. The "
    "choice of process changes the flavour of the coffee as much as the variety of the tree.",
    "Green coffee keeps for a year if it is stored cool and dry, but roasted coffee loses its "
    "aroma within weeks. Roasters therefore buy green beans from importers, roast small "
    "batches close to where the coffee will be sold, and print the roast date on the bag so "
    "that cafes and customers can brew it while it is still fresh.",
]


def edit_words(text: str, replacements: dict[int, str]) -> str:
    words = text.split()
    for i, w in replacements.items():
        words[i] = w
    return " ".join(words)


EDITED = edit_words(COFFEE[0], {3: "ideally", 20: "acidity", 40: "usually", 55: "picking"})


@pytest.fixture(scope="module")
def hasher() -> MinHasher:
    return MinHasher()


@pytest.fixture
def index(tmp_path: Path, hasher: MinHasher) -> NearDupIndex:
    return NearDupIndex.open(tmp_path / "dedup", hasher)


def random_sigs(n: int, seed: int, num_perm: int = 128) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2**32, (n, num_perm), dtype=np.uint32)


def with_changed_columns(sig: np.ndarray, columns: int) -> np.ndarray:
    """A copy of ``sig`` whose first ``columns`` minima differ: estimate (128 - columns)/128."""
    out = sig.copy()
    out[..., :columns] ^= np.uint32(0x5A5A5A5A)
    return out


def state(ix: NearDupIndex) -> tuple[list[int], list[list[tuple[int, float]]]]:
    return ix.keys().tolist(), [ix.query(s) for s in random_sigs(40, 1)]


# ----------------------------------------------------------------------- signatures


def test_normalise_lowercases_and_collapses_non_alphanumerics() -> None:
    assert normalise("  Hello,\tWORLD!!  foo_bar\n") == "hello world foo bar"
    assert normalise("Straße ＡＢＣ") == "strasse abc"  # case-folded, NFKC
    assert normalise("Ünïcode—text… ok") == normalise("ünïcode text ok")


def test_edited_paragraph_is_a_near_duplicate(hasher: MinHasher) -> None:
    a, b = hasher.signatures([COFFEE[0], EDITED])
    assert 0.8 <= estimate(a, b) < 1.0


def test_whitespace_case_and_punctuation_changes_are_identical(hasher: MinHasher) -> None:
    noisy = "\n\n  " + "   ".join(COFFEE[0].upper().split()).replace(",", " ;") + " !!\n"
    assert hasher.estimate(hasher.signature(COFFEE[0]), hasher.signature(noisy)) == 1.0


def test_unrelated_paragraphs_of_one_topic_are_far_apart(hasher: MinHasher) -> None:
    sigs = hasher.signatures(COFFEE)
    for i in range(len(COFFEE)):
        for j in range(i + 1, len(COFFEE)):
            assert estimate(sigs[i], sigs[j]) <= 0.3, (i, j)


def test_signatures_shape_dtype_and_batch_equals_single(hasher: MinHasher) -> None:
    texts = [*COFFEE, "", "a", "short text", COFFEE[1] * 20]
    sigs = hasher.signatures(texts)
    assert sigs.shape == (len(texts), 128) and sigs.dtype == np.uint32
    for t, s in zip(texts, sigs, strict=True):
        assert np.array_equal(hasher.signature(t), s)
    assert hasher.signatures([]).shape == (0, 128)
    assert hasher.signatures(iter(COFFEE[:2])).shape == (2, 128)


def test_short_and_empty_texts(hasher: MinHasher) -> None:
    empty, punct, a, b = hasher.signatures(["", "?!", "ab", "abc"])
    assert estimate(empty, punct) == 1.0  # both normalise to ""
    assert estimate(empty, a) < 0.1 and estimate(a, b) < 0.1


def test_estimate_is_close_to_exact_jaccard(hasher: MinHasher) -> None:
    rng = np.random.default_rng(3)
    errors = []
    for jaccard in (0.2, 0.5, 0.8, 0.95):
        union, a_sets, b_sets = 600, [], []
        inter = round(jaccard * union)
        only = (union - inter) // 2
        for _ in range(200):
            u = rng.choice(2**32, size=inter + 2 * only, replace=False)
            a_sets.append(u[: inter + only])
            b_sets.append(np.concatenate([u[:inter], u[inter + only :]]))
        exact = inter / (inter + 2 * only)
        est = (hasher.signatures_of_sets(a_sets) == hasher.signatures_of_sets(b_sets)).mean(1)
        errors.append(abs(est.mean() - exact))
        assert est.std() < 1.5 * np.sqrt(exact * (1 - exact) / 128) + 0.01
    assert max(errors) < 0.015


def test_signatures_are_deterministic_across_processes(hasher: MinHasher) -> None:
    code = (
        "import sys; from openledger.datanets.dedup import MinHasher; "
        "sys.stdout.write(MinHasher().signatures(sys.argv[1:]).tobytes().hex())"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code, COFFEE[0], "Ünïcode ＡＢＣ"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout
    assert out == hasher.signatures([COFFEE[0], "Ünïcode ＡＢＣ"]).tobytes().hex()


def test_signatures_depend_on_the_seed_and_shingle_size() -> None:
    base = MinHasher().signature(COFFEE[0])
    assert not np.array_equal(base, MinHasher(seed=2).signature(COFFEE[0]))
    assert not np.array_equal(base, MinHasher(shingle_size=4).signature(COFFEE[0]))
    assert MinHasher(num_perm=64).signature(COFFEE[0]).shape == (64,)
    assert MinHasher() == MinHasher(128, 5, 1)


@pytest.mark.parametrize(
    "kwargs", [{"num_perm": 0}, {"num_perm": 1.5}, {"shingle_size": 0}, {"seed": -1}]
)
def test_bad_hasher_parameters(kwargs: dict) -> None:
    with pytest.raises(ValidationError) as err:
        MinHasher(**kwargs)
    assert err.value.field == next(iter(kwargs))


def test_default_lsh_makes_jaccard_08_a_candidate() -> None:
    assert candidate_probability(0.8, DEFAULT_BANDS, DEFAULT_ROWS) >= 0.99
    assert candidate_probability(0.3, DEFAULT_BANDS, DEFAULT_ROWS) < 0.1


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=300))
def test_identical_texts_have_identical_signatures(text: str) -> None:
    hasher = MinHasher()
    assert estimate(hasher.signature(text), hasher.signature(text)) == 1.0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.text(min_size=0, max_size=200), min_size=1, max_size=5))
def test_identical_texts_always_match_in_the_index(texts: list[str]) -> None:
    hasher = MinHasher()
    sigs = hasher.signatures(texts)
    with tempfile.TemporaryDirectory() as tmp:
        ix = NearDupIndex.open(Path(tmp) / "ix", hasher)
        ix.add(np.arange(len(texts)), sigs)
        ix.commit()
        found = ix.query_many(hasher.signatures(texts))
        for i, hit in enumerate(found):
            assert hit is not None and hit[1] == 1.0
            assert np.array_equal(sigs[hit[0]], sigs[i])  # the match is an identical text
        for i, t in enumerate(texts):
            assert (i, 1.0) in ix.query(hasher.signature(t), threshold=1.0)


# ----------------------------------------------------------------------- index


def test_query_finds_near_duplicates_and_not_unrelated(
    index: NearDupIndex, hasher: MinHasher
) -> None:
    index.add([10, 11, 12, 13], hasher.signatures(COFFEE))
    index.commit()
    hits = index.query(hasher.signature(EDITED))
    assert [k for k, _ in hits] == [10] and 0.8 <= hits[0][1] < 1.0
    fresh = "Tea is grown on steep hillsides in Darjeeling and picked as two leaves and a bud."
    assert index.query(hasher.signature(fresh)) == []
    many = index.query_many(hasher.signatures([fresh, EDITED, COFFEE[3].upper()]))
    assert many[0] is None and many[1][0] == 10 and many[2] == (13, 1.0)


def test_threshold_is_honoured(index: NearDupIndex) -> None:
    base = random_sigs(1, 5)[0]
    index.add([1, 2, 3], np.stack([base, with_changed_columns(base, 13), random_sigs(1, 6)[0]]))
    index.commit()
    # estimates against base: key 1 -> 1.0, key 2 -> 115/128 = 0.898
    assert index.query(base) == [(1, 1.0), (2, 115 / 128)]
    assert index.query(base, threshold=115 / 128) == [(1, 1.0), (2, 115 / 128)]
    assert index.query(base, threshold=0.9) == [(1, 1.0)]
    q = with_changed_columns(base, 26)  # 102/128 = 0.797 to key 1, 115/128 to key 2
    assert index.query(q) == [(2, 115 / 128)]
    assert index.query(q, threshold=0.79) == [(2, 115 / 128), (1, 102 / 128)]
    assert index.query_many(q[None, :], threshold=0.95) == [None]
    for bad in (0, -0.5, 1.5, float("nan")):
        with pytest.raises(ValidationError) as err:
            index.query(base, threshold=bad)
        assert err.value.field == "threshold"


def test_best_match_first_and_ties_by_key(index: NearDupIndex) -> None:
    base = random_sigs(1, 8)[0]
    index.add([7, 3, 9], np.stack([base, base, with_changed_columns(base, 10)]))
    index.commit()
    assert index.query(base) == [(3, 1.0), (7, 1.0), (9, 118 / 128)]
    assert index.query_many(np.stack([base, with_changed_columns(base, 10)])) == [
        (3, 1.0),
        (9, 1.0),
    ]


def test_staged_entries_are_not_queried(index: NearDupIndex) -> None:
    sigs = random_sigs(3, 9)
    index.add([1, 2, 3], sigs)
    assert index.query(sigs[0]) == [] and len(index) == 0 and index.staged == 3
    index.commit()
    assert index.query(sigs[0]) == [(1, 1.0)] and len(index) == 3 and index.staged == 0


def test_persistence_across_reopen(tmp_path: Path, hasher: MinHasher) -> None:
    ix = NearDupIndex.open(tmp_path / "ix", hasher)
    sigs = random_sigs(300, 10)
    for lo in range(0, 300, 50):
        ix.add(np.arange(lo, lo + 50), sigs[lo : lo + 50])
        ix.commit()
    ix.remove([5, 150])
    ix.commit()
    again = NearDupIndex.open(tmp_path / "ix", hasher, verify=True)
    assert len(again) == 298
    assert state(again) == state(ix)
    assert again.keys().tolist() == [k for k in range(300) if k not in (5, 150)]
    assert again.query(sigs[7]) == [(7, 1.0)] and again.query(sigs[5]) == []
    assert again.bytes_on_disk() == ix.bytes_on_disk()
    assert again.bytes_on_disk() / len(again) <= 1024


def test_rollback_drops_staged_additions_and_removals(index: NearDupIndex) -> None:
    sigs = random_sigs(4, 11)
    index.add([1, 2], sigs[:2])
    index.commit()
    index.add([3, 4], sigs[2:])
    index.remove([1])
    index.rollback()
    index.commit()  # nothing staged: a no-op
    assert index.keys().tolist() == [1, 2] and index.query(sigs[0]) == [(1, 1.0)]
    assert index.query(sigs[2]) == []


def test_remove_stops_matching_and_key_can_return(tmp_path: Path, hasher: MinHasher) -> None:
    ix = NearDupIndex.open(tmp_path / "ix", hasher)
    sigs = hasher.signatures(COFFEE)
    ix.add([1, 2, 3, 4], sigs)
    ix.commit()
    ix.remove([2, 99])  # 99 is unknown: ignored
    assert ix.query(sigs[1]) == [(2, 1.0)]  # removal applies at commit
    ix.commit()
    assert ix.query(sigs[1]) == [] and len(ix) == 3
    reopened = NearDupIndex.open(tmp_path / "ix", hasher)
    assert reopened.query(sigs[1]) == [] and reopened.keys().tolist() == [1, 3, 4]
    reopened.add([2], sigs[1:2])  # a removed key may be added again
    reopened.commit()
    assert reopened.query(sigs[1]) == [(2, 1.0)]
    # removing a staged entry drops it before it is ever committed
    reopened.add([5], hasher.signatures(["a brand new record about tea"]))
    reopened.remove([5])
    reopened.commit()
    assert 5 not in reopened.keys().tolist()


def test_remove_everything_and_compaction(index: NearDupIndex) -> None:
    sigs = random_sigs(100, 12)
    index.add(np.arange(100), sigs)
    index.commit()
    index.remove(np.arange(0, 100, 2))
    index.commit()
    assert len(index) == 50
    index.remove(np.arange(1, 60, 2))  # more dead than alive: the segment is compacted
    index.commit()
    assert len(index) == 20 and index.keys().tolist() == list(range(61, 100, 2))
    assert index.bytes_on_disk() < 40 * 1024
    index.remove(index.keys())
    index.commit()
    assert len(index) == 0 and index.query(sigs[99]) == []


def test_duplicate_and_malformed_additions_are_refused(index: NearDupIndex) -> None:
    sigs = random_sigs(3, 13)
    index.add([1, 2], sigs[:2])
    with pytest.raises(ValueError, match="already"):
        index.add([2], sigs[2:])
    with pytest.raises(ValueError, match="unique"):
        index.add([5, 5], sigs[:2])
    with pytest.raises(ValueError, match="shape"):
        index.add([6], sigs[:1, :64])
    with pytest.raises(ValueError):
        index.add([6, 7], sigs[:1])
    index.commit()
    with pytest.raises(ValueError, match="already"):
        index.add([1], sigs[2:])


def test_many_commits_merge_into_few_segments(index: NearDupIndex) -> None:
    sigs = random_sigs(640, 14)
    for i in range(64):
        index.add(np.arange(i * 10, i * 10 + 10), sigs[i * 10 : i * 10 + 10])
        index.commit()
    assert len(index) == 640
    assert len(index._segments) <= 7  # about log2(64)
    found = index.query_many(sigs)
    assert [f[0] for f in found] == list(range(640))
    names = sorted(p.name for p in index.path.iterdir())
    assert len([n for n in names if n.startswith("seg-")]) == len(index._segments)
    assert not [n for n in names if n.startswith(".tmp-")]


def test_rebuild_replaces_everything(index: NearDupIndex) -> None:
    old, new = random_sigs(20, 15), random_sigs(30, 16)
    index.add(np.arange(20), old)
    index.commit()
    index.add([100], new[:1])  # staged: dropped by rebuild
    index.rebuild(np.arange(1000, 1030), new)
    assert index.keys().tolist() == list(range(1000, 1030))
    assert index.query(old[0]) == [] and index.query(new[3]) == [(1003, 1.0)]
    assert NearDupIndex.open(index.path).keys().tolist() == list(range(1000, 1030))
    index.rebuild(np.empty(0, dtype=np.int64), np.empty((0, 128), dtype=np.uint32))
    assert len(index) == 0 and len(NearDupIndex.open(index.path)) == 0
    assert [p.name for p in index.path.glob("seg-*")] == []


def test_crash_between_files_keeps_the_previous_commit(
    tmp_path: Path, hasher: MinHasher, monkeypatch: pytest.MonkeyPatch
) -> None:
    ix = NearDupIndex.open(tmp_path / "ix", hasher)
    sigs = random_sigs(60, 17)
    ix.add(np.arange(30), sigs[:30])
    ix.commit()
    ix.remove([3])
    ix.commit()
    before = state(ix)
    files_before = sorted(p.name for p in ix.path.iterdir())

    real_replace = os.replace
    calls = []

    def crashing_replace(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError("simulated crash")
        return real_replace(src, dst)

    ix.add(np.arange(30, 60), sigs[30:])  # a new segment, merged with the old one
    ix.remove([4])  # and a tombstone
    monkeypatch.setattr(os, "replace", crashing_replace)
    with pytest.raises(OSError, match="simulated crash"):
        ix.commit()
    monkeypatch.setattr(os, "replace", real_replace)
    assert len(calls) == 2

    reopened = NearDupIndex.open(tmp_path / "ix", hasher, verify=True)
    assert state(reopened) == before
    assert reopened.query(sigs[40]) == [] and reopened.query(sigs[4]) == [(4, 1.0)]
    assert state(ix) == before  # the failed commit changed nothing in memory either
    assert sorted(p.name for p in ix.path.iterdir()) == files_before
    ix.commit()  # the staged work is still there and can be committed
    assert ix.query(sigs[40]) == [(40, 1.0)] and ix.query(sigs[4]) == []
    assert state(NearDupIndex.open(tmp_path / "ix", hasher)) == state(ix)


@pytest.mark.parametrize("crash_at", [1, 2, 3])
def test_crash_at_any_replace_of_a_merge(
    tmp_path: Path, hasher: MinHasher, monkeypatch: pytest.MonkeyPatch, crash_at: int
) -> None:
    ix = NearDupIndex.open(tmp_path / "ix", hasher)
    sigs = random_sigs(40, 18)
    ix.add(np.arange(20), sigs[:20])
    ix.commit()
    before = state(ix)
    real_replace = os.replace
    calls = []

    def crashing_replace(src, dst):
        calls.append(dst)
        if len(calls) == crash_at:
            raise OSError("simulated crash")
        return real_replace(src, dst)

    ix.add(np.arange(20, 40), sigs[20:])
    monkeypatch.setattr(os, "replace", crashing_replace)
    try:
        ix.commit()
        committed = True
    except OSError:
        committed = False
    monkeypatch.setattr(os, "replace", real_replace)
    reopened = NearDupIndex.open(tmp_path / "ix", hasher, verify=True)
    assert len(reopened) == (40 if committed else 20)
    if not committed:
        assert state(reopened) == before


def test_wrong_parameters_on_reopen(tmp_path: Path, hasher: MinHasher) -> None:
    ix = NearDupIndex.open(tmp_path / "ix", hasher)
    ix.add([1], random_sigs(1, 19))
    ix.commit()
    for kwargs in (
        {"hasher": MinHasher(seed=2)},
        {"hasher": MinHasher(num_perm=64), "bands": 16, "rows": 4},
        {"hasher": MinHasher(shingle_size=4)},
        {"bands": 20},
        {"rows": 4},
    ):
        with pytest.raises(StoreError) as err:
            NearDupIndex.open(tmp_path / "ix", **kwargs)
        assert "Rebuild" in err.value.fix
        assert "was built with" in err.value.message
    assert len(NearDupIndex.open(tmp_path / "ix", hasher)) == 1


def test_bad_lsh_parameters(tmp_path: Path) -> None:
    with pytest.raises(ValidationError):
        NearDupIndex.open(tmp_path / "ix", MinHasher(num_perm=64), bands=25, rows=5)
    with pytest.raises(ValidationError):
        NearDupIndex.open(tmp_path / "ix", bands=0)


def _segment_file(ix: NearDupIndex) -> Path:
    return next(ix.path.glob("seg-*.bin"))


@pytest.mark.parametrize(
    "damage",
    [
        "truncate segment",
        "delete segment",
        "garble meta",
        "empty meta",
        "meta count",
        "delete meta",
        "segment header",
    ],
)
def test_corrupt_index_raises_store_error_and_can_be_recreated(
    tmp_path: Path, hasher: MinHasher, damage: str
) -> None:
    ix = NearDupIndex.open(tmp_path / "ix", hasher)
    sigs = random_sigs(10, 20)
    ix.add(np.arange(10), sigs)
    ix.commit()
    seg, meta = _segment_file(ix), ix.path / "meta.json"
    if damage == "truncate segment":
        seg.write_bytes(seg.read_bytes()[:-100])
    elif damage == "delete segment":
        seg.unlink()
    elif damage == "garble meta":
        meta.write_text("{not json")
    elif damage == "empty meta":
        meta.write_text("")
    elif damage == "meta count":
        m = json.loads(meta.read_text())
        m["count"] = 11
        meta.write_text(json.dumps(m))
    elif damage == "delete meta":
        meta.unlink()
    elif damage == "segment header":
        data = bytearray(seg.read_bytes())
        data[:8] = b"NOTASEG!"
        seg.write_bytes(bytes(data))
    with pytest.raises(StoreError) as err:
        NearDupIndex.open(tmp_path / "ix", hasher)
    assert "corrupt" in err.value.message and "Rebuild" in err.value.fix
    fresh = NearDupIndex.create(tmp_path / "ix", hasher)
    assert len(fresh) == 0
    fresh.rebuild(np.arange(10), sigs)
    assert NearDupIndex.open(tmp_path / "ix", hasher).query(sigs[2]) == [(2, 1.0)]


def test_verify_detects_a_flipped_bit(tmp_path: Path, hasher: MinHasher) -> None:
    ix = NearDupIndex.open(tmp_path / "ix", hasher)
    ix.add(np.arange(10), random_sigs(10, 21))
    ix.commit()
    seg = _segment_file(ix)
    data = bytearray(seg.read_bytes())
    data[200] ^= 1
    seg.write_bytes(bytes(data))
    NearDupIndex.open(tmp_path / "ix", hasher)  # sizes still match: a cheap open passes
    with pytest.raises(StoreError, match="checksum"):
        NearDupIndex.open(tmp_path / "ix", hasher, verify=True)


def test_index_path_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "ix").write_text("x")
    with pytest.raises(StoreError):
        NearDupIndex.open(tmp_path / "ix")


def test_a_second_writer_is_refused(tmp_path: Path, hasher: MinHasher) -> None:
    a = NearDupIndex.open(tmp_path / "ix", hasher)
    b = NearDupIndex.open(tmp_path / "ix", hasher)
    sigs = random_sigs(2, 22)
    a.add([1], sigs[:1])
    a.commit()
    b.add([2], sigs[1:])
    with pytest.raises(StoreError, match="another process") as err:
        b.commit()
    assert "Reopen" in err.value.fix
    assert NearDupIndex.open(tmp_path / "ix", hasher).keys().tolist() == [1]


def test_bytes_per_record_within_budget(index: NearDupIndex) -> None:
    index.add(np.arange(2000), random_sigs(2000, 23))
    index.commit()
    assert index.bytes_on_disk() / len(index) <= 1024
