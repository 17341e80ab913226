"""Span tracing (OLMoTrace style): which training documents an output copies spans from.

An index of tokenised documents (snapshot records) on suffix arrays built with
pydivsufsort, searched with vectorised numpy binary search. docs/attribution-spans.md
describes the on-disk format and the weight formula.

API
    ``Document(id, contribution, contributor, tokens)``
        a record id, its contribution id and contributor, and its token ids.
    ``build_index(docs, out_dir, *, vocab_size, tokenizer_id, overwrite=False) -> SpanIndex``
        one segment; uint16 tokens for vocabularies up to 65,535, else uint32.
        ``ValidationError`` for no documents or a token id outside the vocabulary.
    ``SpanIndex.open(path, *, expect_tokenizer=None, mmap=True, verify=False) -> SpanIndex``
        ``ValidationError`` if ``expect_tokenizer`` differs from the index's tokenizer.
    ``index.add_segment(docs) -> None``    new documents as a new segment
    ``index.merge() -> None``              all segments into one (same results and hash)
    ``index.count(tokens) -> int``
    ``index.find(tokens, limit=None) -> list[Hit]``   ``Hit(doc, position)`` in document
        order (record id, offset in the document's tokens)
    ``index.longest_matches(tokens) -> np.ndarray``   per output position
    ``index.trace(tokens, *, min_len=8, fraction=0.05, max_docs=10) -> list[Span]``
        ``Span(start, end, count, log_prob, docs)`` with ``SpanDoc(doc, contribution,
        contributor, position)``, ordered by start
    ``index.attribute(tokens, *, min_len=8, fraction=0.05, max_docs=10, decode=None,
        model=None) -> Attribution``      method "spans"
    ``index.tokenizer``, ``.vocab_size``, ``.tokens``, ``.docs``, ``.segments``,
    ``.index_hash``, ``.bytes_on_disk()``

Modules
    ``build``     documents to a token array, the suffix array, unigram counts
    ``store``     the on-disk format: segment directories, ``meta.json``, atomic writes, lock
    ``search``    vectorised suffix-array binary search (bounds, longest matches)
    ``trace``     maximal spans, ranking, document sampling, weights
    ``state``     one committed version of an index, loaded (its segments over all)
    ``indexing``  writing an index: build, add a segment, merge, commit
    ``engine``    ``SpanIndex`` (open, count, find, trace, attribute) and ``build_index``
"""

from openledger.attribution.spans.build import Document
from openledger.attribution.spans.engine import (
    DEFAULT_FRACTION,
    DEFAULT_MAX_DOCS,
    DEFAULT_MIN_LEN,
    Hit,
    SpanIndex,
    build_index,
)
from openledger.attribution.spans.trace import Span, SpanDoc

__all__ = [
    "DEFAULT_FRACTION",
    "DEFAULT_MAX_DOCS",
    "DEFAULT_MIN_LEN",
    "Document",
    "Hit",
    "Span",
    "SpanDoc",
    "SpanIndex",
    "build_index",
]
