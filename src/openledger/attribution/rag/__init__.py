"""Retrieval (RAG) attribution: an index of a snapshot's chunks, retrieval into the prompt,
and attribution of an answer to the retrieved chunks by context ablation.

Public API::

    # the index (openledger rag index DATANET)
    build_index(rows, out_dir, *, snapshot, root, embedder=None,
                chunking=ChunkingParams(), overwrite=False) -> RagIndex
    open_index(path, *, embedder=None) -> RagIndex
    RagIndex.search(query, k) -> list[Retrieved]          # Retrieved(chunk, score, rank)
    load_embedder(device="cpu") -> SentenceEmbedder      # all-MiniLM-L6-v2, 384-d

    # retrieval into the prompt
    render_prompt(question, passages) -> str
    augment(question, retrieved, *, index_hash=None, embedding_model=None) -> AugmentedPrompt
    Retriever(index).augment(prompt, k) -> AugmentedPrompt  # AugmentedPrompt(text, chunks, ...)

    # attribution
    attribute(model, tokenizer, augmented, answer, *, chat=False, batch_size=None,
              max_length=None, model_name=None) -> Attribution      # method "rag"
    context_ablation(model, tokenizer, question, passages, answer, ...) -> Ablation
    answer_logprobs(model, contexts, answer, *, batch_size=None) -> list[float]

Typical use::

    index = build_index(table.to_pylist(), folder, snapshot="ocean@2", root=root)
    augmented = Retriever(open_index(folder)).augment("How deep is the ocean?", k=4)
    answer = generate(model, augmented.text)            # the serving engine's job
    attribution = attribute(model, tokenizer, augmented, answer)

Each module has one job: :mod:`.chunking` (rows → chunks; the chunking rule),
:mod:`.embed` (the embedding model), :mod:`.index` (the FAISS index and its folder format),
:mod:`.prompt` (the prompt template), :mod:`.ablation` (the attribution). Bad input raises
:mod:`openledger.errors` types naming the field, the value and the fix.
"""

from openledger.attribution.rag.ablation import (
    METHOD,
    Ablation,
    answer_logprobs,
    attribute,
    attribution_from_ablation,
    chunk_weights,
    context_ablation,
    model_max_length,
)
from openledger.attribution.rag.chunking import Chunk, ChunkingParams, chunk_rows, split_text
from openledger.attribution.rag.embed import (
    EMBEDDING_DIM,
    EMBEDDING_MODEL,
    Embedder,
    SentenceEmbedder,
    load_embedder,
)
from openledger.attribution.rag.index import (
    RagIndex,
    Retrieved,
    build_in_memory,
    build_index,
    open_index,
)
from openledger.attribution.rag.prompt import AugmentedPrompt, Retriever, augment, render_prompt

__all__ = [
    "EMBEDDING_DIM",
    "EMBEDDING_MODEL",
    "METHOD",
    "Ablation",
    "AugmentedPrompt",
    "Chunk",
    "ChunkingParams",
    "Embedder",
    "RagIndex",
    "Retrieved",
    "Retriever",
    "SentenceEmbedder",
    "answer_logprobs",
    "attribute",
    "attribution_from_ablation",
    "augment",
    "build_in_memory",
    "build_index",
    "chunk_rows",
    "chunk_weights",
    "context_ablation",
    "load_embedder",
    "model_max_length",
    "open_index",
    "render_prompt",
    "split_text",
]
