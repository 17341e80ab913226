"""Near-duplicate detection: MinHash throughput, LSH query latency and index size.

Claims measured here (the datanet service's benchmark measures ingest end to end):
- signatures of 1 KB records at well over the 20 MB/min ingest target;
- a query of a 1 KB record against a datanet of 100,000 records well under 1 ms
  (amortised in ``query_many``);
- the index costs at most 1,024 bytes per record on disk (``dedup_bytes_per_record``);
- a pair at Jaccard 0.8 becomes an LSH candidate with probability >= 0.99 (measured on sets
  of exactly known Jaccard similarity, beside the formula 1 - (1 - s^r)^b).

Records are synthetic English-like paragraphs from a seeded generator: Zipf-distributed
words from a list of common English words plus a topic vocabulary, sentences of 6-22 words
with capitals, commas and full stops, about 1 KB each. Writes benchmarks/results/dedup.json.
Run: ``python benchmarks/bench_dedup.py [--records 100000]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from openledger.datanets.dedup import (
    DEFAULT_BANDS,
    DEFAULT_ROWS,
    MinHasher,
    NearDupIndex,
    candidate_probability,
)

ROOT = Path(__file__).resolve().parents[1]
TARGET_BYTES_PER_RECORD = 1024
TARGET_INGEST_MB_PER_MIN = 20
TARGET_QUERY_MS = 1.0


def _words(text: str) -> list[str]:
    return text.split()


VOCABULARY = 20_000  # words, Zipf-distributed (rank 1-400: real common English words)
TOPIC_SHARE = 0.15  # of the words drawn from the paragraph's topic vocabulary

COMMON = _words("""
the of and to a in is that for it as was with be by on not he this are or his from at which
but have an they you were her she there been one all we their has would when if so no what
can more out about up them some could him into its then two time only new these may like do
any my now over such our man me even most made after also did many before must through back
years where much your way well down should because each just those people how too little
state good very make world still own see men work long get here between both life being under
never day same another know while last might us great old year off come since against go came
right used take three states himself few house use during without again place around however
home small found thought went say part once general high upon school every does got united
left number course war until always away something fact though water less public put think
almost hand enough far took head yet government system better set told nothing night end why
called find going look asked later knew point next program city business give group toward
young days let room president side social given present several order national possible rather
second face per among form important often things looked early white case john become large big
need four within felt along children saw best church ever least power development light thing
seemed family interest want members mind country area others done turned although open god
service problem certain kind different thus began door help means sense whole matter perhaps
itself york times law human line above name example action company hands local show whether five
history gave today either act feet across taken past quite anything seen having death experience
body word half really week field car words already themselves information tell together college
shall money period held keep sure probably free seems political real behind cannot question air
office making brought whose special heard major problems ago became federal moment study available
known result street economic boy position reason change south board individual job areas society
""")

TOPICS = {
    "medicine": _words("""
    patient patients clinical treatment dose doses trial trials symptoms diagnosis
    chronic acute therapy hospital physician disease infection blood pressure heart cardiac renal
    liver tumor cancer cells immune vaccine antibody placebo cohort outcome mortality adverse
    surgery surgical recovery prescribed medication insulin glucose diabetes asthma lung imaging
    biopsy screening prevalence incidence randomized efficacy safety protocol ward nurse"""),
    "law": _words("""
    court courts judge judges statute contract contracts liability plaintiff defendant
    appeal ruling jurisdiction evidence testimony counsel verdict damages negligence breach
    clause tenant landlord property copyright patent trademark license agreement arbitration
    settlement motion hearing criminal civil penalty regulation compliance tribunal precedent
    constitutional amendment rights privacy consent witness jury sentence"""),
    "software": _words("""
    function functions server client request response database query index cache
    memory thread process kernel compiler runtime library module package version release bug
    patch deploy container cluster network latency throughput buffer stream parser token
    interface method class object variable pointer array string integer exception error log
    config schema migration commit branch merge test tests build pipeline"""),
    "finance": _words("""
    market markets price prices stock stocks bond bonds yield interest inflation
    rate rates investor investors fund funds portfolio risk return returns dividend equity debt
    credit loan loans bank banks capital revenue profit earnings quarter fiscal budget tax taxes
    currency exchange trading volatility asset assets liquidity valuation growth recession
    central reserve deposit mortgage insurance pension hedge"""),
}


class ParagraphGenerator:
    """Seeded English-like paragraphs of about ``target_bytes`` characters."""

    def __init__(self, seed: int = 0, target_bytes: int = 1000) -> None:
        self.rng = np.random.default_rng(seed)
        self.target = target_bytes
        self.topics = [np.array(t) for t in TOPICS.values()]
        # the long tail of the vocabulary: pronounceable pseudo-words, Zipf over all ranks
        syllables = [c + v for c in "bcdfghklmnprstvwz" for v in ("a", "e", "i", "o", "u", "ai")]
        tail = {
            "".join(self.rng.choice(syllables, size=int(self.rng.integers(2, 5))))
            for _ in range(VOCABULARY)
        }
        tail -= set(COMMON)
        tail_words = self.rng.permutation(sorted(tail))[: VOCABULARY - len(COMMON)]
        self.common = np.array(COMMON + tail_words.tolist())
        self.common_cdf = np.cumsum(1.0 / np.arange(1, self.common.size + 1))
        self.common_cdf /= self.common_cdf[-1]
        self.topic_cdfs = []
        for t in self.topics:
            cdf = np.cumsum((1.0 / np.arange(1, len(t) + 1)) ** 0.7)
            self.topic_cdfs.append(cdf / cdf[-1])

    def paragraph(self) -> str:
        rng = self.rng
        t = int(rng.integers(len(self.topics)))
        n = self.target // 4  # more words than a paragraph needs
        common = self.common[np.searchsorted(self.common_cdf, rng.random(n))]
        topic = self.topics[t][np.searchsorted(self.topic_cdfs[t], rng.random(n))]
        words = np.where(rng.random(n) < TOPIC_SHARE, topic, common).tolist()
        lengths = rng.integers(6, 23, size=n // 6).tolist()
        commas = rng.random(n // 6).tolist()
        sentences, size, i = [], 0, 0
        for length, comma in zip(lengths, commas, strict=True):
            if size >= self.target or i + length > n:
                break
            sw = words[i : i + length]
            i += length
            if length > 10 and comma < 0.5:
                sw[length // 2] += ","
            sentence = " ".join(sw)
            sentence = sentence[0].upper() + sentence[1:] + "."
            sentences.append(sentence)
            size += len(sentence) + 1
        return " ".join(sentences)

    def paragraphs(self, n: int) -> list[str]:
        return [self.paragraph() for _ in range(n)]

    def edit(self, text: str, share: float) -> str:
        """Replace ``share`` of the words by other common words (at least one)."""
        words = text.split()
        k = max(1, round(share * len(words)))
        for i in self.rng.choice(len(words), size=k, replace=False):
            words[i] = str(self.common[np.searchsorted(self.common_cdf, self.rng.random())])
        return " ".join(words)


def measured_candidate_probability(
    hasher: MinHasher, bands: int, rows: int, jaccard: float, pairs: int, seed: int
) -> tuple[float, float]:
    """(share of pairs sharing a band, share with estimate >= 0.8) at exact ``jaccard``."""
    rng = np.random.default_rng(seed)
    union = 1000  # shingles of a ~1 KB record
    inter = round(jaccard * union)
    only = (union - inter) // 2
    a_sets, b_sets = [], []
    for _ in range(pairs):
        u = rng.choice(2**32, size=inter + 2 * only, replace=False)
        a_sets.append(u[: inter + only])
        b_sets.append(np.concatenate([u[:inter], u[inter + only :]]))
    sa, sb = hasher.signatures_of_sets(a_sets), hasher.signatures_of_sets(b_sets)
    w = bands * rows
    same = (sa[:, :w] == sb[:, :w]).reshape(pairs, bands, rows).all(axis=2).any(axis=1)
    est = (sa == sb).mean(axis=1)
    return float(same.mean()), float((est >= 0.8).mean())


def main(records: int = 100_000) -> dict:
    hasher = MinHasher()
    bands, rows = DEFAULT_BANDS, DEFAULT_ROWS
    gen = ParagraphGenerator(seed=42)

    t = time.perf_counter()
    corpus = gen.paragraphs(records)
    gen_s = time.perf_counter() - t
    corpus_bytes = sum(len(p.encode()) for p in corpus)

    # signatures: the whole corpus in batches of 1,000 (one contribution's worth)
    t = time.perf_counter()
    sigs = np.concatenate(
        [hasher.signatures(corpus[i : i + 1000]) for i in range(0, records, 1000)]
    )
    sig_s = time.perf_counter() - t
    t = time.perf_counter()
    for p in corpus[:1000]:
        hasher.signature(p)
    single_sig_s = (time.perf_counter() - t) / 1000

    # queries: edited copies of indexed records (must match) and fresh paragraphs (must not)
    probe_n = 1000
    picks = gen.rng.choice(records, size=probe_n, replace=False)
    edited = [gen.edit(corpus[i], 0.05) for i in picks]
    fresh = gen.paragraphs(probe_n)
    edited_sigs, fresh_sigs = hasher.signatures(edited), hasher.signatures(fresh)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "dedup"
        index = NearDupIndex.open(path, hasher, bands, rows)
        keys = np.arange(1, records + 1, dtype=np.int64)
        t = time.perf_counter()
        index.rebuild(keys, sigs)
        build_s = time.perf_counter() - t
        bytes_on_disk = index.bytes_on_disk()

        t = time.perf_counter()
        hits = index.query_many(edited_sigs)
        query_edited_s = time.perf_counter() - t
        t = time.perf_counter()
        misses = index.query_many(fresh_sigs)
        query_fresh_s = time.perf_counter() - t
        found = sum(1 for i, h in zip(picks, hits, strict=True) if h and h[0] == keys[i])
        false_pos = sum(1 for h in misses if h is not None)
        single = []
        for s in fresh_sigs[:300]:
            t = time.perf_counter()
            index.query(s)
            single.append(time.perf_counter() - t)

        # incremental ingest on top of the 100k: contributions of 100 records, each one
        # signatures + query_many + add + commit (fsyncs, segment merges included)
        contributions, per = 100, 100
        new = gen.paragraphs(contributions * per)
        new_bytes = sum(len(p.encode()) for p in new)
        next_key = records + 1
        t = time.perf_counter()
        rejected = 0
        for c in range(contributions):
            batch = new[c * per : (c + 1) * per]
            s = hasher.signatures(batch)
            if any(m is not None for m in index.query_many(s)):
                rejected += 1
                continue
            index.add(np.arange(next_key, next_key + per), s)
            index.commit()
            next_key += per
        ingest_s = time.perf_counter() - t
        segments = len(index._segments)
        t = time.perf_counter()
        reopened = NearDupIndex.open(path, hasher, bands, rows)
        open_s = time.perf_counter() - t
        assert len(reopened) == len(index)
        final_bytes_per_record = index.bytes_on_disk() / len(index)

    probabilities = {}
    for s in (0.3, 0.5, 0.7, 0.8, 0.85, 0.9):
        cand, detected = measured_candidate_probability(hasher, bands, rows, s, 20_000, seed=7)
        probabilities[str(s)] = {
            "candidate_formula": round(candidate_probability(s, bands, rows), 6),
            "candidate_measured": cand,
            "estimate_ge_0.8_measured": detected,
        }

    mb = 1e6
    result = {
        "claim": "MinHash (char 5-grams, 128 perms) + LSH (25 bands x 5 rows) over a datanet of "
        f"{records:,} records of ~1 KB: query_many latency per record, bytes on disk per "
        "record, signature throughput; candidate probability at Jaccard 0.8 >= 0.99.",
        "params": {**hasher.params(), "bands": bands, "rows": rows, "threshold": 0.8},
        "records": records,
        "mean_record_bytes": round(corpus_bytes / records, 1),
        "signatures_per_s": round(records / sig_s, 1),
        "signatures_mb_per_min": round(corpus_bytes / mb / sig_s * 60, 1),
        "signature_single_ms": round(single_sig_s * 1e3, 3),
        "build_100k_s": round(build_s, 2),
        "dedup_bytes_per_record": round(bytes_on_disk / records, 1),
        "dedup_bytes_per_record_after_ingest": round(final_bytes_per_record, 1),
        "dedup_bytes_per_record_target": TARGET_BYTES_PER_RECORD,
        "query_many_ms_per_record_edited": round(query_edited_s / probe_n * 1e3, 4),
        "query_many_ms_per_record_fresh": round(query_fresh_s / probe_n * 1e3, 4),
        "query_single_ms_p50": round(float(np.median(single)) * 1e3, 3),
        "query_single_ms_p99": round(float(np.percentile(single, 99)) * 1e3, 3),
        "query_ms_target": TARGET_QUERY_MS,
        "edited_5pct_words_found": found / probe_n,
        "fresh_false_positives": false_pos / probe_n,
        "ingest": {
            "what": f"{contributions} contributions of {per} records on top of {records:,}: "
            "signatures + query_many + add + commit",
            "mb_per_min": round(new_bytes / mb / ingest_s * 60, 1),
            "ms_per_contribution": round(ingest_s / contributions * 1e3, 2),
            "rejected": rejected,
            "segments_after": segments,
            "open_ms": round(open_s * 1e3, 2),
            "target_mb_per_min": TARGET_INGEST_MB_PER_MIN,
        },
        "lsh_probabilities": probabilities,
        "meets_targets": bool(
            bytes_on_disk / records <= TARGET_BYTES_PER_RECORD
            and query_fresh_s / probe_n * 1e3 < TARGET_QUERY_MS
            and probabilities["0.8"]["candidate_measured"] >= 0.99
        ),
        "corpus_generation_s": round(gen_s, 1),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "cpu_count": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
        },
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    out = ROOT / "benchmarks" / "results" / "dedup.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    main(parser.parse_args().records)
