"""SpanIndex against the naive reference: counts, finds, longest matches and traced spans
across segments and document separators, before and after merge; bad input."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openledger.attribution.spans import Document, SpanIndex, build_index
from openledger.errors import ConflictError, NotFoundError, ValidationError
from tests.attribution.spans import naive

PROPERTY = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
TRACE_PARAMS = [(1, 1.0, 10), (2, 0.3, 2), (3, 0.05, 1)]
# many small indexes: on tmpfs their fsyncs cost nothing
SCRATCH = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None


@st.composite
def corpora(draw: st.DrawFn) -> tuple[list[list[int]], list[int], list[int], list[list[int]]]:
    """(documents, segment cuts, query, patterns) over a 2-4 token alphabet."""
    alphabet = draw(st.integers(2, 4))
    token = st.integers(0, alphabet - 1)
    docs = draw(st.lists(st.lists(token, max_size=20), min_size=1, max_size=7))
    cut = st.integers(1, len(docs) - 1)
    cuts = sorted(draw(st.sets(cut, min_size=1, max_size=2))) if len(docs) > 1 else []
    query: list[int] = []
    for _ in range(draw(st.integers(1, 5))):
        filled = [d for d in docs if d]
        if filled and draw(st.booleans()):
            doc = draw(st.sampled_from(filled))
            a = draw(st.integers(0, len(doc) - 1))
            query += doc[a : draw(st.integers(a + 1, len(doc)))]
        else:
            query += draw(st.lists(token, max_size=5))
    patterns = [query] + [query[a : a + k] for a in range(0, len(query), 3) for k in (1, 2, 4, 7)]
    patterns.append(draw(st.lists(token, min_size=1, max_size=30)))
    return docs, cuts, query, patterns


def _documents(docs: list[list[int]], start: int = 0) -> list[Document]:
    return [
        Document(
            id=1000 + start + i, contribution=(start + i) % 3, contributor=f"0x{i % 3}", tokens=d
        )
        for i, d in enumerate(docs)
    ]


def _check(index: SpanIndex, docs: list[list[int]], query: list[int], patterns) -> None:
    ids = [1000 + i for i in range(len(docs))]
    for p in patterns:
        assert index.count(p) == naive.count(docs, p)
        assert [tuple(h) for h in index.find(p)] == naive.find(docs, ids, p)
        assert [tuple(h) for h in index.find(p, limit=2)] == naive.find(docs, ids, p, 2)
    assert index.longest_matches(query).tolist() == naive.longest(docs, query)
    for min_len, fraction, max_docs in TRACE_PARAMS:
        got = [
            (s.start, s.end, s.count, [(d.doc, d.position) for d in s.docs])
            for s in index.trace(query, min_len=min_len, fraction=fraction, max_docs=max_docs)
        ]
        want = naive.trace(docs, ids, query, min_len=min_len, fraction=fraction, max_docs=max_docs)
        assert got == want


@PROPERTY
@given(case=corpora(), vocab_size=st.sampled_from([8, 70_000]))
def test_matches_naive_across_segments_and_merge(case, vocab_size: int) -> None:
    """uint16 and uint32 tokens; 1-3 segments, then merged, then reopened."""
    docs, cuts, query, patterns = case
    groups = [docs[a:b] for a, b in zip([0, *cuts], [*cuts, len(docs)], strict=True)]
    with tempfile.TemporaryDirectory(dir=SCRATCH) as tmp:
        index = build_index(
            _documents(groups[0]), Path(tmp), vocab_size=vocab_size, tokenizer_id="t"
        )
        done = len(groups[0])
        for group in groups[1:]:
            index.add_segment(_documents(group, done))
            done += len(group)
        assert index.segments == len(groups)
        assert index.docs == len(docs) and index.tokens == sum(map(len, docs))
        _check(index, docs, query, patterns)
        before = index.index_hash
        index.merge()
        assert index.segments == 1 and index.index_hash == before
        _check(index, docs, query, patterns)
        _check(SpanIndex.open(tmp, expect_tokenizer="t"), docs, query, patterns)


def test_uint32_vocabulary(tmp_path: Path) -> None:
    docs = [[70_000, 65_535, 65_536, 3], [3, 70_000, 65_535, 1, 99_999]]
    index = build_index(_documents(docs), tmp_path, vocab_size=100_000, tokenizer_id="big")
    assert index.meta["token_dtype"] == "uint32"
    assert index.count([70_000, 65_535]) == 2
    assert index.count([65_535, 65_536]) == 1
    assert [tuple(h) for h in index.find([65_535])] == [(1000, 1), (1001, 2)]
    spans = index.trace([9, 70_000, 65_535, 65_536, 3, 70_000], min_len=2, fraction=1.0)
    assert [(s.start, s.end) for s in spans] == [(1, 5), (4, 6)]


def test_vocab_65535_is_uint16_and_65536_is_uint32(tmp_path: Path) -> None:
    a = build_index(_documents([[65_534, 0]]), tmp_path / "a", vocab_size=65_535, tokenizer_id="t")
    b = build_index(_documents([[65_535, 0]]), tmp_path / "b", vocab_size=65_536, tokenizer_id="t")
    assert a.meta["token_dtype"] == "uint16" and b.meta["token_dtype"] == "uint32"
    assert a.count([65_534, 0]) == 1 and b.count([65_535, 0]) == 1


def test_empty_corpus_names_field_value_and_fix(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as err:
        build_index([], tmp_path, vocab_size=8, tokenizer_id="t")
    assert err.value.field == "docs" and err.value.value == 0 and err.value.fix
    assert "docs" in err.value.message and "0 documents" in err.value.message
    assert not (tmp_path / "meta.json").exists()
    index = build_index(_documents([[1, 2]]), tmp_path, vocab_size=8, tokenizer_id="t")
    with pytest.raises(ValidationError) as err:
        index.add_segment([])
    assert err.value.field == "docs"


def test_tokenizer_mismatch(tmp_path: Path) -> None:
    build_index(_documents([[1, 2]]), tmp_path, vocab_size=8, tokenizer_id="bpe-2048:abc")
    assert SpanIndex.open(tmp_path, expect_tokenizer="bpe-2048:abc").tokenizer == "bpe-2048:abc"
    with pytest.raises(ValidationError) as err:
        SpanIndex.open(tmp_path, expect_tokenizer="gpt2")
    assert err.value.field == "tokenizer" and err.value.value == "gpt2"
    assert "bpe-2048:abc" in err.value.message and err.value.fix


def test_bad_queries(tmp_path: Path) -> None:
    index = build_index(_documents([[1, 2, 3], [2, 3]]), tmp_path, vocab_size=8, tokenizer_id="t")
    too_long = [1, 2, 3] * 10
    assert index.count(too_long) == 0 and index.find(too_long) == []
    assert index.longest_matches(too_long).tolist()[:4] == [3, 2, 1, 3]
    assert index.count([]) == 0 and index.find([]) == [] and index.trace([]) == []
    assert index.attribute([]).shares == ()
    with pytest.raises(ValidationError) as err:
        index.count([1, 8])
    assert err.value.field == "tokens" and err.value.value == 8
    with pytest.raises(ValidationError):
        index.count([-1])
    with pytest.raises(ValidationError):
        index.find([1], limit=-1)
    with pytest.raises(ValidationError):
        index.trace([1, 2], min_len=0)
    with pytest.raises(ValidationError):
        index.trace([1, 2], fraction=0)


def test_bad_documents(tmp_path: Path) -> None:
    for bad in ([1, 8], [-1, 2], np.array([1, 65_535], dtype=np.uint16)):
        with pytest.raises(ValidationError) as err:
            build_index(_documents([[1], bad]), tmp_path, vocab_size=8, tokenizer_id="t")
        assert err.value.field == "tokens"
    with pytest.raises(ValidationError) as err:
        build_index(_documents([[1]]), tmp_path, vocab_size=0, tokenizer_id="t")
    assert err.value.field == "vocab_size"
    with pytest.raises(ValidationError) as err:
        build_index(_documents([[1]]), tmp_path, vocab_size=8, tokenizer_id="")
    assert err.value.field == "tokenizer_id"
    assert not (tmp_path / "meta.json").exists()


def test_open_missing_and_overwrite(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        SpanIndex.open(tmp_path)
    build_index(_documents([[1, 2]]), tmp_path, vocab_size=8, tokenizer_id="t")
    with pytest.raises(ConflictError):
        build_index(_documents([[3]]), tmp_path, vocab_size=8, tokenizer_id="t")
    index = build_index(_documents([[3]]), tmp_path, vocab_size=8, tokenizer_id="t", overwrite=True)
    assert index.count([3]) == 1 and index.count([1]) == 0
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("seg-")) == ["seg-000002"]


def test_attribute_weights(tmp_path: Path) -> None:
    # span A = [1..8] is in docs 10 (contribution 1) and 11 (contribution 2);
    # span B = [20..29] only in doc 12 (contribution 2). Output: A, a gap, B.
    a, b = list(range(1, 9)), list(range(20, 30))
    docs = [
        Document(10, 1, "alice", [40, *a, 41]),
        Document(11, 2, "bob", a),
        Document(12, 2, "bob", [42, *b]),
        Document(13, 3, "carol", [43, 44, 45]),
    ]
    index = build_index(docs, tmp_path, vocab_size=50, tokenizer_id="t")
    out = [*a, 46, 47, *b]
    result = index.attribute(out, min_len=4, fraction=1.0, decode=lambda ids: f"<{len(ids)}>")
    assert result.method == "spans"
    assert result.params == {
        "min_len": 4,
        "fraction": 1.0,
        "max_docs": 10,
        "index_hash": index.index_hash,
    }
    assert result.index_hash == index.index_hash
    # A: 8 tokens over 2 docs (4 + 4); B: 10 tokens over 1 doc. alice 4, bob 14.
    assert result.weights() == pytest.approx({2: 14 / 18, 1: 4 / 18})
    assert [s.contributor for s in result.shares] == ["bob", "alice"]
    assert result.unattributed == pytest.approx(0.0)
    top = result.evidence[0]
    assert top.contribution == 2 and top.record == 12 and top.score == 10
    assert top.detail == {
        "start": 10,
        "end": 20,
        "doc": 12,
        "position": 1,
        "count": 1,
        "text": "<10>",
    }
    plain = index.attribute(out, min_len=4, fraction=1.0, model="m")
    assert plain.model == "m" and plain.evidence[0].detail["tokens"] == b
    # only the rarer span survives at fraction 1/20 of 20 tokens -> 1 span
    one = index.attribute(out, min_len=4, fraction=0.05)
    assert one.weights() == pytest.approx({2: 1.0})
    assert index.attribute([43, 46, 47], min_len=4).shares == ()
