"""RAG fixtures: the real embedding model and tiny Llama (once per session), sample rows.

``sample_rows`` are snapshot rows (the schema of ``openledger.datanets.snapshots``) built
from the package's sample datanets: the ocean paragraphs as ``text`` records of
contribution 1, the space Q&A as ``prompt_completion`` and ``chat`` records of
contribution 2, and a few synthetic ``text`` records of contribution 3.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

import openledger.datanets
from openledger.attribution.rag import RagIndex, SentenceEmbedder, build_index, load_embedder
from openledger.factory.base import load_base

SAMPLES = Path(openledger.datanets.__file__).parent / "samples"
ALICE = "0x" + "aa" * 20
BOB = "0x" + "bb" * 20
CAROL = "0x" + "cc" * 20

SYNTHETIC = [
    "A dictionary maps hashable keys to arbitrary values. Keys are compared by equality.",
    "The heapq module keeps a list ordered as a binary heap, so the smallest item is first.",
    "Sourdough bread rises because wild yeast and lactic acid bacteria ferment the flour.",
]


def row(record: int, contribution: int, contributor: str, kind: str, **fields: Any) -> dict:
    base = {"text": None, "prompt": None, "completion": None, "messages": None}
    return {
        "record": record,
        "sha256": f"{record:064x}",
        "kind": kind,
        **base,
        **fields,
        "contribution": contribution,
        "contributor": contributor,
    }


def make_rows() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    md = (SAMPLES / "ocean-facts.md").read_text(encoding="utf-8")
    for para in md.split("\n\n"):
        if para.strip() and not para.startswith("#"):
            rows.append(row(len(rows), 1, ALICE, "text", text=para.strip()))
    for line in (SAMPLES / "space-qa.jsonl").read_text(encoding="utf-8").splitlines():
        doc = json.loads(line)
        if "messages" in doc:
            rows.append(row(len(rows), 2, BOB, "chat", messages=doc["messages"]))
        else:
            rows.append(row(len(rows), 2, BOB, "prompt_completion", **doc))
    for text in SYNTHETIC:
        rows.append(row(len(rows), 3, CAROL, "text", text=text))
    return rows


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """One torch intra-op thread inside the block, restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# This folder's tests set up, run and tear down on one torch thread: on a shared 2-core
# machine two threads can be 50x slower when another job is busy (the shared tiny base
# took 46 s instead of 1 s). Hooks, not a fixture, so session fixtures built for these
# tests are covered too and other folders keep their setting.
@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    with one_thread():
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    with one_thread():
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    with one_thread():
        return (yield)


@pytest.fixture(scope="session")
def embedder() -> SentenceEmbedder:
    return load_embedder()


@pytest.fixture(scope="session")
def sample_rows() -> list[dict[str, Any]]:
    return make_rows()


@pytest.fixture(scope="session")
def sample_index(
    tmp_path_factory: pytest.TempPathFactory,
    embedder: SentenceEmbedder,
    sample_rows: list[dict[str, Any]],
) -> RagIndex:
    """The sample rows' index, built once (read-only)."""
    out = tmp_path_factory.mktemp("rag") / "index"
    return build_index(
        sample_rows, out, snapshot="samples@1", root="0x" + "12" * 32, embedder=embedder
    )


@pytest.fixture(scope="session")
def tiny_lm(tiny_base_dir: Path) -> tuple[Any, Any]:
    """The session's tiny Llama and tokenizer (eager attention, eval mode; do not train)."""
    return load_base(tiny_base_dir)
