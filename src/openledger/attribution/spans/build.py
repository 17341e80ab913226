"""Building one segment in memory: documents to a token array, its suffix array, unigrams.

Documents are concatenated, each followed by the separator (the largest value of the token
dtype, never a token). The suffix array is libdivsufsort's (through pydivsufsort's loaded
library) on the big-endian bytes of the token array: at aligned offsets, byte order is token
order, so the aligned entries of the byte suffix array, divided by the token width, are the
token suffix array. The tokens are byte-swapped in place for the sort (and back), and the
aligned entries are compacted in place in chunks, so the peak is the token array plus the
byte suffix array (2 + 8 bytes per token for uint16 tokens below 2**30 tokens).
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
MAX_VOCAB = (1 << 32) - 1
_CHUNK = 1 << 22  # elements per step of the chunked passes


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


def _doc_tokens(doc: Document, i: int, dtype: np.dtype, vocab_size: int) -> np.ndarray:
    arr = np.asarray(doc.tokens)
    if arr.ndim != 1 or not (arr.size == 0 or np.issubdtype(arr.dtype, np.integer)):
        raise ValidationError(
            f"Document {i} (id {doc.id}) has tokens of type {arr.dtype} and shape "
            f"{arr.shape}; token ids must be a flat sequence of integers.",
            field="tokens",
            value=doc.id,
            fix="Pass the tokenizer's input ids of each document as a list or 1-D array.",
        )
    # ids that fit the token dtype unchanged are range-checked by unigram_counts
    if arr.size and not np.can_cast(arr.dtype, dtype):
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi >= vocab_size:
            bad = lo if lo < 0 else hi
            raise ValidationError(
                f"Document {i} (id {doc.id}) has token id {bad}, outside the vocabulary "
                f"0..{vocab_size - 1}.",
                field="tokens",
                value=bad,
                fix="Tokenise with the index's tokenizer, or pass its true vocab_size.",
            )
    return arr


def layout(docs: Iterable[Document], vocab_size: int) -> Corpus:
    """Concatenate ``docs`` with separators; ``ValidationError`` if there are none."""
    docs = list(docs)
    if not docs:
        raise ValidationError(
            "The corpus is empty: docs has 0 documents, and a span index needs at least one.",
            field="docs",
            value=0,
            fix="Pass at least one Document (a snapshot record's token ids).",
        )
    dtype = token_dtype(vocab_size)
    lengths = np.fromiter((len(d.tokens) for d in docs), dtype=np.int64, count=len(docs))
    offsets = np.zeros(len(docs) + 1, dtype=np.int64)
    np.cumsum(lengths + 1, out=offsets[1:])
    tokens = np.empty(int(offsets[-1]), dtype=dtype)
    contributors: dict[int, str] = {}
    for i, (doc, start, end) in enumerate(
        zip(docs, offsets[:-1].tolist(), offsets[1:].tolist(), strict=True)
    ):
        tokens[start : end - 1] = _doc_tokens(doc, i, dtype, vocab_size)
        contributors[int(doc.contribution)] = str(doc.contributor)
    tokens[offsets[1:] - 1] = separator(dtype)
    table = np.array([(int(d.id), int(d.contribution)) for d in docs], dtype=np.int64)
    return Corpus(tokens, offsets, table.reshape(len(docs), 2), contributors)


def _out_of_vocab(bad: int, vocab_size: int) -> ValidationError:
    return ValidationError(
        f"Token id {bad} is outside the vocabulary 0..{vocab_size - 1}.",
        field="tokens",
        value=bad,
        fix="Tokenise with the index's tokenizer, or pass its true vocab_size.",
    )


def unigram_counts(tokens: np.ndarray, vocab_size: int, docs: int) -> np.ndarray:
    """How often each token id occurs (int64, ``vocab_size``) in ``tokens`` holding ``docs``
    documents; ``ValidationError`` if an id is outside the vocabulary."""
    sep = separator(tokens.dtype)
    wide = tokens.dtype.itemsize > 2  # uint16 ids are counted over all 65,536 values
    counts = np.zeros(vocab_size if wide else sep + 1, dtype=np.int64)
    for a in range(0, tokens.size, _CHUNK):
        chunk = tokens[a : a + _CHUNK]
        if wide:
            chunk = chunk[chunk != sep]
            if chunk.size and int(chunk.max()) >= vocab_size:
                raise _out_of_vocab(int(chunk.max()), vocab_size)
        counts += np.bincount(chunk, minlength=counts.size)
    if wide:
        seps = tokens.size - int(counts.sum())
    else:
        seps = int(counts[sep])
        if counts[vocab_size:sep].any():
            raise _out_of_vocab(
                vocab_size + int(np.flatnonzero(counts[vocab_size:sep])[0]), vocab_size
            )
        counts = counts[:vocab_size].copy()
    if seps != docs:  # a document held the separator's value as a token id
        raise ValidationError(
            f"A document holds token id {sep}, outside the vocabulary 0..{vocab_size - 1}.",
            field="tokens",
            value=sep,
            fix="Tokenise with the index's tokenizer, or pass its true vocab_size.",
        )
    return counts


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
