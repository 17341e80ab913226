"""One committed version of a span index, loaded: its segments, where each starts in the
global token and document numbering, and the arrays over all of them. The engine queries
it; a merge (``indexing``) rewrites it as one segment. Swapped whole, so a reader never
sees half of a commit."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from openledger.attribution.spans.build import first_token_ranges
from openledger.attribution.spans.store import SegmentData, read_segment
from openledger.errors import StoreError


@dataclass
class Segment:
    """One segment's arrays and where it sits in the whole index."""

    name: str
    data: SegmentData
    base: int  # global position of its first token
    doc_base: int  # global ordinal of its first document
    range_lo: np.ndarray  # per token id: its suffixes' range [lo, hi) in sa
    range_hi: np.ndarray


@dataclass(frozen=True)
class State:
    """One committed version of the index, swapped whole so readers never see half."""

    meta: dict
    segments: tuple[Segment, ...]
    unigrams: np.ndarray  # int64 (vocab_size): over all segments
    starts: np.ndarray  # int64 (docs + 1): global document starts, then the end
    docs: np.ndarray  # int64 (docs, 2): record id, contribution id
    contributors: dict[int, str]


def load_state(path: Path, meta: dict, *, mmap: bool, verify: bool) -> State:
    segments: list[Segment] = []
    base = doc_base = 0
    for entry in meta["segments"]:
        data = read_segment(path, entry, mmap=mmap, verify=verify)
        lo, hi = first_token_ranges(data.unigrams, data.tokens.dtype)
        segments.append(Segment(entry["name"], data, base, doc_base, lo, hi))
        base += data.tokens.size
        doc_base += data.docs.shape[0]
    if not segments:
        raise StoreError(
            f"The span index at {path} has no segments.",
            field="path",
            value=str(path),
            fix="Rebuild it from the model's training snapshot (build_index).",
        )
    contributors: dict[int, str] = {}
    for s in segments:
        contributors.update(s.data.contributors)
    return State(
        meta=meta,
        segments=tuple(segments),
        unigrams=np.sum([s.data.unigrams for s in segments], axis=0),
        starts=np.concatenate(
            [s.data.offsets[:-1] + s.base for s in segments] + [np.array([base], np.int64)]
        ),
        docs=np.concatenate([s.data.docs for s in segments]),
        contributors=contributors,
    )
