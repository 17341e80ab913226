"""Building one segment in memory: documents to a token array, its suffix array, unigrams.

Documents are concatenated, each followed by the separator (the largest value of the token
dtype, never a token). The suffix array is libdivsufsort's (through pydivsufsort's loaded
library) on the big-endian bytes of the token array: at aligned offsets, byte order is value
order, so the aligned entries of the byte suffix array, divided by the token width, are the
token suffix array. The tokens are byte-swapped in place for the sort (and back), and the
aligned entries are compacted in place in chunks, so the peak is the token array plus the
byte suffix array (2 + 8 bytes per token for uint16 tokens below 2**30 tokens).

Token codes: uint16 arrays hold ``code(id) = id * 40504 mod 65535`` rather than the id, a
bijection of 0..65534 that never yields the separator. Small vocabularies leave the high
byte of an id nearly constant; libdivsufsort sorts the spread-out codes about 1.5 times
faster (measured on the benchmark corpus). The suffix array is in code order, and queries
are encoded the same way. uint32 arrays hold the ids (spreading them made sorting slower).
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from pydivsufsort.dll import libdivsufsort, libdivsufsort64

from openledger.errors import ValidationError

UINT16_MAX_VOCAB = 65535  # token ids 0..65534; 65535 is the separator
CODE_MULTIPLIER = 40504  # coprime with CODE_MODULUS, near 65535 / golden ratio
CODE_MODULUS = 65535
MAX_VOCAB = (1 << 32) - 1
_CHUNK = 1 << 20  # elements per step of the chunked passes (bounds their temporaries)


@dataclass(frozen=True)
class Document:
    """One indexed document: a snapshot record's token ids and where it came from."""

    id: int
    contribution: int
    contributor: str
    tokens: Sequence[int] | np.ndarray


def check_vocab(vocab_size: int) -> int:
    if not isinstance(vocab_size, int | np.integer) or not 1 <= int(vocab_size) <= MAX_VOCAB:
        raise ValidationError(
            f"vocab_size must be an integer from 1 to {MAX_VOCAB}, got {vocab_size!r}.",
            field="vocab_size",
            value=vocab_size,
            fix="Pass the tokenizer's vocabulary size (len(tokenizer)).",
        )
    return int(vocab_size)


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 while every id and the separator fit, else uint32."""
    return np.dtype(np.uint16 if vocab_size <= UINT16_MAX_VOCAB else np.uint32)


def separator(dtype: np.dtype) -> int:
    return int(np.iinfo(dtype).max)


def sa_dtype(positions: int) -> np.dtype:
    return np.dtype(np.int32 if positions <= np.iinfo(np.int32).max else np.int64)


@dataclass
class Corpus:
    """Documents laid out for one segment."""

    tokens: np.ndarray  # token dtype; every document followed by the separator
    offsets: np.ndarray  # int64 (docs + 1,): document starts, then len(tokens)
    docs: np.ndarray  # int64 (docs, 2): record id, contribution id
    contributors: dict[int, str]  # contribution -> contributor


def encode(ids: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Token ids (already checked against the vocabulary) as stored in a ``dtype`` array."""
    if np.dtype(dtype).itemsize > 2:
        return np.asarray(ids).astype(np.uint32)
    wide = np.asarray(ids).astype(np.uint32)
    wide *= CODE_MULTIPLIER  # < 65535 * 40504 < 2**32
    wide %= CODE_MODULUS
    return wide.astype(np.uint16)


def code_table(vocab_size: int, dtype: np.dtype) -> np.ndarray:
    """The code of every token id of the vocabulary."""
    return encode(np.arange(vocab_size, dtype=np.uint32), dtype)


def _out_of_vocab(bad: int, vocab_size: int, where: str = "") -> ValidationError:
    return ValidationError(
        f"{where}Token id {bad} is outside the vocabulary 0..{vocab_size - 1}.",
        field="tokens",
        value=bad,
        fix="Tokenise with the index's tokenizer, or pass its true vocab_size.",
    )


def check_ids(tokens: Sequence[int] | np.ndarray, vocab_size: int, where: str = "") -> np.ndarray:
    """``tokens`` as a 1-D integer array; ``ValidationError`` if not or if an id is outside
    the vocabulary."""
    arr = np.asarray(tokens)
    if arr.ndim != 1 or not (arr.size == 0 or np.issubdtype(arr.dtype, np.integer)):
        raise ValidationError(
            f"{where}Token ids must be a flat sequence of integers, got {arr.dtype} with "
            f"shape {arr.shape}.",
            field="tokens",
            value=str(arr.dtype),
            fix="Pass the tokenizer's input ids as a list or 1-D integer array.",
        )
    if arr.size:
        hi = int(arr.max())
        if hi >= vocab_size:
            raise _out_of_vocab(hi, vocab_size, where)
        if np.issubdtype(arr.dtype, np.signedinteger) and (lo := int(arr.min())) < 0:
            raise _out_of_vocab(lo, vocab_size, where)
    return arr


def layout(docs: Iterable[Document], vocab_size: int) -> Corpus:
    """Concatenate ``docs`` (as codes) with separators; ``ValidationError`` if there are
    none or a token id is outside the vocabulary."""
    docs = list(docs)
    if not docs:
        raise ValidationError(
            "The corpus is empty: docs has 0 documents, and a span index needs at least one.",
            field="docs",
            value=0,
            fix="Pass at least one Document (a snapshot record's token ids).",
        )
    dtype = token_dtype(vocab_size)
    table = code_table(vocab_size, dtype) if dtype.itemsize == 2 else None
    lengths = np.fromiter((len(d.tokens) for d in docs), dtype=np.int64, count=len(docs))
    offsets = np.zeros(len(docs) + 1, dtype=np.int64)
    np.cumsum(lengths + 1, out=offsets[1:])
    tokens = np.empty(int(offsets[-1]), dtype=dtype)
    contributors: dict[int, str] = {}
    for i, (doc, start, end) in enumerate(
        zip(docs, offsets[:-1].tolist(), offsets[1:].tolist(), strict=True)
    ):
        ids = check_ids(doc.tokens, vocab_size, f"Document {i} (id {doc.id}): ")
        if ids.size:
            tokens[start : end - 1] = ids if table is None else table[ids]
        contributors[int(doc.contribution)] = str(doc.contributor)
    tokens[offsets[1:] - 1] = separator(dtype)
    table = np.array([(int(d.id), int(d.contribution)) for d in docs], dtype=np.int64)
    return Corpus(tokens, offsets, table.reshape(len(docs), 2), contributors)


def unigram_counts(tokens: np.ndarray, vocab_size: int) -> np.ndarray:
    """How often each token id occurs (int64, ``vocab_size``) in a laid-out token array."""
    sep = separator(tokens.dtype)
    wide = tokens.dtype.itemsize > 2
    counts = np.zeros(vocab_size if wide else sep + 1, dtype=np.int64)
    for a in range(0, tokens.size, _CHUNK):
        chunk = tokens[a : a + _CHUNK]
        if wide:
            chunk = chunk[chunk != sep]
        counts += np.bincount(chunk, minlength=counts.size)
    return counts if wide else counts[code_table(vocab_size, tokens.dtype)]


def first_token_ranges(unigrams: np.ndarray, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """Per token id, the range ``[lo, hi)`` of the suffix array whose suffixes start with
    it: suffixes sort by their first code, so the ranges follow the codes' order."""
    order = np.argsort(code_table(unigrams.size, dtype), kind="stable")
    lo = np.empty(unigrams.size, dtype=np.int64)
    lo[order] = np.cumsum(unigrams[order]) - unigrams[order]
    return lo, lo + unigrams


def suffix_array(tokens: np.ndarray) -> np.ndarray:
    """The suffix array of ``tokens`` (uint16 or uint32), compared as token sequences.

    ``tokens`` is byte-swapped in place during the sort and restored before returning.
    The result (int32 up to 2**31 - 1 bytes of tokens, else int64) is a view of the first
    ``tokens.size`` entries of the byte-level array.
    """
    if tokens.dtype not in (np.dtype(np.uint16), np.dtype(np.uint32)):
        raise TypeError(f"tokens must be uint16 or uint32, not {tokens.dtype}")
    tokens = np.ascontiguousarray(tokens)
    width = tokens.dtype.itemsize
    nbytes = tokens.size * width
    if tokens.size == 0:
        return np.empty(0, dtype=np.int32)
    small = nbytes <= np.iinfo(np.int32).max
    out = np.empty(nbytes, dtype=np.int32 if small else np.int64)
    swap = sys.byteorder == "little"
    if swap:
        tokens.byteswap(inplace=True)
    try:
        if small:
            rc = libdivsufsort.divsufsort(
                ctypes.c_void_p(tokens.ctypes.data),
                ctypes.c_void_p(out.ctypes.data),
                ctypes.c_int32(nbytes),
            )
        else:
            rc = libdivsufsort64.divsufsort64(
                ctypes.c_void_p(tokens.ctypes.data),
                ctypes.c_void_p(out.ctypes.data),
                ctypes.c_int64(nbytes),
            )
    finally:
        if swap:
            tokens.byteswap(inplace=True)
    if rc != 0:
        raise RuntimeError(f"libdivsufsort failed with code {rc}")
    shift = width.bit_length() - 1
    kept = 0
    for a in range(0, nbytes, _CHUNK):
        chunk = out[a : a + _CHUNK]
        aligned = chunk[(chunk & (width - 1)) == 0]
        aligned >>= shift
        out[kept : kept + aligned.size] = aligned  # kept <= a: never overwrites unread entries
        kept += aligned.size
    assert kept == tokens.size
    return out[:kept]
