"""The offline corpus of the tiny base: text that is on every machine with the package.

The docstrings of the Python standard library (read with :mod:`ast`, in sorted order;
nothing is imported), the help topics Python ships in ``pydoc_data``, and the package's
own sample datanet files.
"""

from __future__ import annotations

import ast
import contextlib
import json
import sysconfig
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: The default cap on the corpus size (``TinyBaseConfig.max_corpus_chars``).
DEFAULT_MAX_CORPUS_CHARS = 4_000_000

#: Standard-library entries left out of the corpus (tests, tools, generated tables).
_STDLIB_SKIP = frozenset(
    {
        "__pycache__",
        "site-packages",
        "dist-packages",
        "lib-dynload",
        "test",
        "tests",
        "idle_test",
        "idlelib",
        "lib2to3",
        "turtledemo",
        "ensurepip",
        "encodings",
        "pydoc_data",
    }
)


def stdlib_docstrings(root: Path | None = None, *, min_chars: int = 40) -> list[str]:
    """Docstrings of the standard library's Python sources, in sorted file order.

    Read with :mod:`ast` (nothing is imported, so no module runs); duplicates and
    docstrings shorter than ``min_chars`` are dropped. ``root`` defaults to the running
    Python's stdlib directory (tests pass one package of it).
    """
    root = Path(sysconfig.get_path("stdlib")) if root is None else Path(root)
    files: list[Path] = []
    for entry in sorted(root.iterdir(), key=lambda p: p.name):
        if entry.name in _STDLIB_SKIP or entry.name.startswith(("config-", "_sysconfigdata")):
            continue
        if entry.is_file() and entry.suffix == ".py":
            files.append(entry)
        elif entry.is_dir():
            files.extend(
                p
                for p in sorted(entry.rglob("*.py"), key=lambda p: p.as_posix())
                if not _STDLIB_SKIP.intersection(p.relative_to(root).parts)
            )
    seen: dict[str, None] = {}
    for file in files:
        try:
            tree = ast.parse(file.read_bytes(), filename=str(file))
        except (OSError, SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                doc = ast.get_docstring(node, clean=True)
                if doc and len(doc) >= min_chars:
                    seen.setdefault(doc, None)
    return list(seen)


def pydoc_topics() -> list[str]:
    """The help topics Python ships for ``help('TOPIC')`` (language reference excerpts)."""
    try:
        from pydoc_data.topics import topics
    except ImportError:  # pragma: no cover - some distributions strip pydoc_data
        return []
    return [topics[key] for key in sorted(topics)]


def sample_datanet_texts() -> list[str]:
    """The package's sample datanet files as plain text (JSONL: the string fields)."""
    import openledger.datanets

    folder = Path(openledger.datanets.__file__).parent / "samples"
    texts: list[str] = []
    if not folder.is_dir():
        return texts
    for file in sorted(folder.iterdir(), key=lambda p: p.name):
        if not file.is_file():
            continue
        raw = file.read_text(encoding="utf-8", errors="replace")
        if file.suffix == ".jsonl":
            for line in raw.splitlines():
                with contextlib.suppress(json.JSONDecodeError):
                    texts.append("\n".join(_strings(json.loads(line))))
        else:
            texts.append(raw)
    return [t for t in texts if t.strip()]


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def default_corpus(max_chars: int = DEFAULT_MAX_CORPUS_CHARS) -> list[str]:
    """The offline corpus: sample datanets, pydoc topics, stdlib docstrings (capped)."""
    out: list[str] = []
    total = 0
    for source in (sample_datanet_texts, pydoc_topics, stdlib_docstrings):
        for doc in source():
            if total >= max_chars:
                return out
            out.append(doc)
            total += len(doc)
    return out
