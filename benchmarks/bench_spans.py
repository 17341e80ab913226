"""Span tracing: suffix-array build speed and memory, bytes per token, trace latency.

Claims measured here (targets in ``TARGETS``):
- build at >= 3.5 M tokens/s with a peak of <= 22 bytes per token;
- <= 6.1 bytes per token on disk for a vocabulary below 65,536;
- trace of a 256-token output against >= 100 M indexed tokens in <= 15 ms p50;
- the same kind of queries give the same longest matches, spans, counts and documents
  as brute force on a small corpus split into three segments, and again after merge.

Corpus: text already on this machine (Python sources and docs in the virtualenv and
/usr/lib/python3*, C headers, /usr/share/doc, man pages), exact duplicates dropped, files
in a seeded random order, tokenised with a byte-level BPE of 2,048 tokens trained on a
sample of it (``openledger.factory.tiny_base.train_tokenizer``). One file is one document;
files are grouped into contributions by their top directory. The token arrays are cached
under ``.openledger/bench-cache/`` (first run: minutes of tokenising).

Outputs are 256 tokens alternating spans of 5-40 tokens copied from indexed documents
with spans of 5-40 tokens of held-out files (new text). The build runs in a child process
whose peak resident memory (VmHWM) is read from /proc. Writes
benchmarks/results/spans.json. Run: ``python benchmarks/bench_spans.py [--small]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import hashlib
import json
import math
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from openledger.attribution.spans import Document, SpanIndex, build_index
from openledger.attribution.spans.trace import keep_count, mix64

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".openledger" / "bench-cache"
RESULTS = ROOT / "benchmarks" / "results" / "spans.json"
VOCAB = 2048
SEED = 7
QUERY_LEN = 256
PIECE = (5, 40)
HELD_OUT_TOKENS = 2_000_000
TRAIN_SAMPLE_CHARS = 12_000_000
TARGETS = {
    "build_tokens_per_s": 3_500_000,
    "bytes_per_token": 6.1,
    "build_peak_bytes_per_token": 22,
    "trace_p50_ms": 15,
}
SOURCES = [
    (
        ROOT / ".venv" / "lib" / "python3.11" / "site-packages",
        {".py", ".pyi", ".rst", ".md", ".txt", ".h", ".c"},
    ),
    (Path("/usr/lib/python3"), {".py", ".txt", ".rst"}),
    (Path("/usr/lib/python3.11"), {".py", ".txt", ".rst"}),
    (Path("/usr/include"), {".h", ".hpp"}),
    (Path("/usr/share/doc"), {".gz", ".md", ".txt", ".html", ""}),
    (Path("/usr/share/man"), {".gz"}),
    (Path("/usr/share/perl"), {".pm", ".pod"}),
]
MAX_FILE_BYTES = 4_000_000


# ----------------------------------------------------------------------------- corpus


def text_files() -> list[tuple[str, Path]]:
    """(contribution name, path) of every candidate file, in a seeded random order."""
    found = []
    for root, suffixes in SOURCES:
        if not root.is_dir():
            continue
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                path = Path(dirpath) / name
                if path.suffix not in suffixes or path.is_symlink():
                    continue
                rel = path.relative_to(root).parts
                found.append((f"{root.name}/{rel[0] if len(rel) > 1 else ''}", path))
    found.sort(key=lambda x: str(x[1]))
    random.Random(SEED).shuffle(found)
    return found


def read_text(path: Path) -> str | None:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return None
        raw = path.read_bytes()
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)[:MAX_FILE_BYTES]
    except (OSError, EOFError, gzip.BadGzipFile):
        return None
    if not raw or b"\0" in raw[:4096]:
        return None
    text = raw.decode("utf-8", errors="replace")
    return text if len(text) >= 64 else None


def tokenizer(files: list[tuple[str, Path]]):
    """The byte-level BPE (vocab 2,048) trained on the first files, cached."""
    from tokenizers import Tokenizer

    path = CACHE / f"spans-bpe-{VOCAB}.json"
    if not path.exists():
        from openledger.factory.tiny_base import train_tokenizer

        sample, size = [], 0
        for _, f in files:
            if (text := read_text(f)) is not None:
                sample.append(text)
                size += len(text)
                if size >= TRAIN_SAMPLE_CHARS:
                    break
        wrapped = train_tokenizer(sample, VOCAB)
        CACHE.mkdir(parents=True, exist_ok=True)
        wrapped.backend_tokenizer.save(str(path))
    tok = Tokenizer.from_file(str(path))
    return tok, "bpe-2048:" + hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def corpus(target: int) -> dict:
    """Tokens (uint16) and per-document lengths/contributions of ``target`` indexed tokens
    plus ``HELD_OUT_TOKENS`` held out; cached."""
    files = text_files()
    tok, tok_id = tokenizer(files)
    cache = CACHE / f"spans-corpus-{target}-{tok_id.split(':')[1]}.npz"
    if cache.exists():
        with np.load(cache) as z:
            return {k: z[k] for k in z.files} | {"tokenizer": tok_id}
    want = target + HELD_OUT_TOKENS
    seen: set[bytes] = set()
    parts, lengths, groups, names = [], [], [], {}
    total, i, batch = 0, 0, 256
    started = time.perf_counter()
    while total < want and i < len(files):
        texts, group = [], []
        for name, path in files[i : i + batch]:
            text = read_text(path)
            if text is None:
                continue
            digest = hashlib.sha256(text.encode()).digest()
            if digest in seen:
                continue
            seen.add(digest)
            texts.append(text)
            group.append(names.setdefault(name, len(names)))
        i += batch
        for enc, g in zip(tok.encode_batch(texts, add_special_tokens=False), group, strict=True):
            ids = np.asarray(enc.ids, dtype=np.uint16)
            parts.append(ids)
            lengths.append(ids.size)
            groups.append(g)
            total += ids.size
        print(
            f"  tokenised {total:,} tokens ({time.perf_counter() - started:.0f} s)", file=sys.stderr
        )
    data = {
        "tokens": np.concatenate(parts),
        "lengths": np.asarray(lengths, dtype=np.int64),
        "groups": np.asarray(groups, dtype=np.int64),
    }
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(cache, **data)
    return data | {"tokenizer": tok_id}


def split(data: dict, target: int) -> tuple[list[Document], list[np.ndarray]]:
    """Indexed documents (views of the token array) up to ``target`` tokens, and the rest
    as held-out texts."""
    tokens, lengths, groups = data["tokens"], data["lengths"], data["groups"]
    starts = np.concatenate([[0], np.cumsum(lengths)])
    docs, held = [], []
    for i in range(lengths.size):
        ids = tokens[starts[i] : starts[i + 1]]
        if starts[i] < target:
            g = int(groups[i])
            docs.append(
                Document(i, g, "0x" + hashlib.sha256(str(g).encode()).hexdigest()[:40], ids)
            )
        elif ids.size >= PIECE[1]:
            held.append(ids)
    return docs, held


def outputs(docs: list[Document], held: list[np.ndarray], n: int, seed: int) -> list:
    """``n`` outputs of 256 tokens: copied spans of 5-40 tokens alternating with new text."""
    rng = np.random.default_rng(seed)
    long_docs = [d for d in docs if len(d.tokens) >= PIECE[1]]
    out = []
    for _ in range(n):
        pieces, size, copy = [], 0, bool(rng.integers(2))
        while size < QUERY_LEN:
            k = int(rng.integers(PIECE[0], PIECE[1] + 1))
            src = (
                long_docs[rng.integers(len(long_docs))].tokens
                if copy
                else held[rng.integers(len(held))]
            )
            a = int(rng.integers(0, len(src) - k + 1))
            pieces.append(np.asarray(src[a : a + k], dtype=np.int64))
            size += k
            copy = not copy
        out.append(np.concatenate(pieces)[:QUERY_LEN])
    return out


# ----------------------------------------------------------------------------- brute force


def brute_occurrences(text: np.ndarray, pattern: np.ndarray) -> np.ndarray:
    cand = np.flatnonzero(text == pattern[0])
    for k in range(1, pattern.size):
        cand = cand[cand + k < text.size]
        cand = cand[text[cand + k] == pattern[k]]
    return cand


def brute_longest(text: np.ndarray, query: np.ndarray) -> list[int]:
    out = []
    for i in range(query.size):
        cand, k = np.flatnonzero(text == query[i]), 0
        while cand.size:
            k += 1
            if i + k == query.size:
                break
            cand = cand[cand + k < text.size]
            cand = cand[text[cand + k] == query[i + k]]
        out.append(k)
    return out


def brute_trace(text, offsets, ids, query, *, min_len, fraction, max_docs):
    """Spans as (start, end, count, [(record id, offset)]) by scanning the whole text."""
    lengths = brute_longest(text, query)
    spans = [(i, i + n) for i, n in enumerate(lengths) if n >= 1]
    maximal = [
        (s, e)
        for s, e in spans
        if not any(s2 <= s and e <= e2 and (s2, e2) != (s, e) for s2, e2 in spans)
    ]
    maximal = [(s, e) for s, e in maximal if e - s >= min_len]
    counts = np.bincount(text[text < VOCAB], minlength=VOCAB)
    total = int(counts.sum())

    def prob(span):
        s, e = span
        return Fraction(math.prod(int(counts[t]) for t in query[s:e]), total ** (e - s))

    kept = sorted(maximal, key=lambda sp: (prob(sp), sp[0]))[: keep_count(fraction, query.size)]
    result = []
    for s, e in sorted(kept):
        occ = brute_occurrences(text, query[s:e])
        order = occ[np.argsort(mix64(occ))]
        chosen, seen = [], set()
        for p in order.tolist():
            d = int(np.searchsorted(offsets, p, side="right") - 1)
            if d not in seen:
                seen.add(d)
                chosen.append((int(ids[d]), p - int(offsets[d])))
                if len(chosen) == max_docs:
                    break
        result.append((s, e, int(occ.size), chosen))
    return result


def check_against_brute_force(data: dict, tmp: Path, n_queries: int) -> dict:
    """A small corpus in three segments (then merged): the same kind of queries, compared
    with brute force on longest matches, traced spans and counts."""
    docs, held = split(data, 300_000)
    third = len(docs) // 3
    index = build_index(
        docs[:third], tmp / "small", vocab_size=VOCAB, tokenizer_id=data["tokenizer"]
    )
    index.add_segment(docs[third : 2 * third])
    index.add_segment(docs[2 * third :])
    text = np.concatenate([np.append(np.asarray(d.tokens, np.int64), 65_535) for d in docs])
    offsets = np.concatenate([[0], np.cumsum([len(d.tokens) + 1 for d in docs])])
    ids = [d.id for d in docs]
    queries = outputs(docs, held, n_queries, seed=SEED + 1)
    want = [
        (
            brute_longest(text, q),
            brute_trace(text, offsets, ids, q, min_len=8, fraction=0.05, max_docs=10),
        )
        for q in queries
    ]
    patterns = [q[a : a + k] for q in queries for a, k in ((0, 6), (100, 12), (200, 3))]
    want_counts = [int(brute_occurrences(text, p).size) for p in patterns]

    def same() -> bool:
        for q, (lengths, spans) in zip(queries, want, strict=True):
            if index.longest_matches(q).tolist() != lengths:
                return False
            got = [
                (s.start, s.end, s.count, [(d.doc, d.position) for d in s.docs])
                for s in index.trace(q)
            ]
            if got != spans:
                return False
        return [index.count(p) for p in patterns] == want_counts

    segmented = same()
    segments = index.segments
    index.merge()
    merged = same()
    return {
        "matched": segmented and merged,
        "segmented_matched": segmented,
        "merged_matched": merged,
        "index_tokens": index.tokens,
        "segments": segments,
        "queries": n_queries,
        "count_patterns": len(patterns),
        "spans_compared": sum(len(s) for _, s in want),
        "span_documents_compared": sum(len(sp[3]) for _, s in want for sp in s),
    }


# ----------------------------------------------------------------------------- build child


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def build_child(target: int, out: Path) -> None:
    """Run in a fresh process: build the index of ``target`` tokens, report time and
    memory on stdout (JSON)."""
    data = corpus(target)
    docs, _ = split(data, target)
    before_kb = _status_kb("VmRSS")
    started = time.perf_counter()
    index = build_index(docs, out, vocab_size=VOCAB, tokenizer_id=data["tokenizer"])
    seconds = time.perf_counter() - started
    peak_kb = _status_kb("VmHWM")
    print(
        json.dumps(
            {
                "seconds": seconds,
                "tokens": index.tokens,
                "docs": index.docs,
                "bytes": index.bytes_on_disk(),
                "rss_before": before_kb * 1024,
                "peak_rss": peak_kb * 1024,
                "input_bytes": int(sum(len(d.tokens) for d in docs) * 2),
            }
        )
    )


# ----------------------------------------------------------------------------- main


def machine() -> dict:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": round(mem_kb / 2**20, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }


def main(target: int, n_queries: int, n_check: int) -> dict:
    load_before = os.getloadavg()
    data = corpus(target)  # tokenise (or load the cache) before timing anything
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        tmp = Path(tmp)
        child = subprocess.run(
            [sys.executable, __file__, "--build-child", str(target), str(tmp / "big")],
            check=True,
            capture_output=True,
            text=True,
        )
        built = json.loads(child.stdout.strip().splitlines()[-1])
        load_build = os.getloadavg()
        docs, held = split(data, target)
        queries = outputs(docs, held, n_queries + 10, seed=SEED)
        index = SpanIndex.open(tmp / "big", expect_tokenizer=data["tokenizer"], mmap=False)
        for q in queries[:10]:  # warm up
            index.trace(q)
        trace_ms, attribute_ms, kept = [], [], []
        for q in queries[10:]:
            t0 = time.perf_counter()
            spans = index.trace(q)
            trace_ms.append((time.perf_counter() - t0) * 1e3)
            kept.append(len(spans))
        for q in queries[10:]:
            t0 = time.perf_counter()
            index.attribute(q)
            attribute_ms.append((time.perf_counter() - t0) * 1e3)
        longest = [int(index.longest_matches(q).max()) for q in queries[10:20]]
        load_trace = os.getloadavg()
        del index
        check = check_against_brute_force(data, tmp, n_check)
    tokens = built["tokens"]
    result = {
        "claim": "Suffix-array span index (pydivsufsort + numpy): build speed and peak "
        "memory, bytes per token on disk, trace latency of 256-token outputs against "
        f"{tokens:,} tokens of natural text in memory, and agreement with brute force.",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "load_average": {
            "before": [round(x, 2) for x in load_before],
            "after_build": [round(x, 2) for x in load_build],
            "after_trace": [round(x, 2) for x in load_trace],
            "note": "1/5/15-minute load on a shared machine; > cores means other jobs ran",
        },
        "params": {
            "vocab_size": VOCAB,
            "tokenizer": data["tokenizer"],
            "min_len": 8,
            "fraction": 0.05,
            "max_docs": 10,
            "query_tokens": QUERY_LEN,
            "copied_and_new_pieces_tokens": list(PIECE),
            "queries": n_queries,
            "seed": SEED,
            "build_threads": "libdivsufsort as shipped by pydivsufsort uses OpenMP (2 cores)",
        },
        "corpus": "Python sources/docs (virtualenv, /usr/lib/python3*), C headers, "
        "/usr/share/doc, man pages, Perl modules; exact duplicates dropped; one file per "
        "document",
        "index_tokens": tokens,
        "index_docs": built["docs"],
        "build_seconds": round(built["seconds"], 2),
        "build_tokens_per_s": round(tokens / built["seconds"]),
        "bytes_per_token": round(built["bytes"] / tokens, 4),
        "build_peak_bytes_per_token": round((built["peak_rss"] - built["rss_before"]) / tokens, 2),
        "build_peak_note": "peak resident memory (VmHWM) of the build process minus its "
        "resident memory just before build_index (which holds the input documents)",
        "process_peak_bytes_per_token": round(built["peak_rss"] / tokens, 2),
        "process_peak_note": "VmHWM of the whole build process over tokens: interpreter, "
        "input token arrays and the build",
        "trace_p50_ms": round(float(np.percentile(trace_ms, 50)), 2),
        "trace_p95_ms": round(float(np.percentile(trace_ms, 95)), 2),
        "attribute_p50_ms": round(float(np.percentile(attribute_ms, 50)), 2),
        "trace_note": "SpanIndex.open(mmap=False): the index in memory; one thread; "
        f"{n_queries} outputs after 10 warm-up ones; trace = longest matches, maximal spans, "
        "ranking, ranges and documents of the kept spans; attribute adds the weights",
        "spans_kept_mean": round(float(np.mean(kept)), 2),
        "longest_match_max_first10": longest,
        "brute_force_check": check,
        "targets": TARGETS,
    }
    result["meets_targets"] = (
        result["build_tokens_per_s"] >= TARGETS["build_tokens_per_s"]
        and result["bytes_per_token"] <= TARGETS["bytes_per_token"]
        and result["build_peak_bytes_per_token"] <= TARGETS["build_peak_bytes_per_token"]
        and result["trace_p50_ms"] <= TARGETS["trace_p50_ms"]
        and check["matched"]
    )
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--small",
        action="store_true",
        help="2 M tokens, fewer queries; prints, does not write results",
    )
    parser.add_argument("--tokens", type=int, default=None, help="indexed tokens")
    parser.add_argument("--build-child", nargs=2, metavar=("TOKENS", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build_child:
        build_child(int(args.build_child[0]), Path(args.build_child[1]))
        sys.exit(0)
    target = args.tokens or (2_000_000 if args.small else 100_000_000)
    res = main(target, n_queries=50 if args.small else 300, n_check=5 if args.small else 20)
    text = json.dumps(res, indent=2)
    print(text)
    if not args.small:
        RESULTS.write_text(text + "\n")
