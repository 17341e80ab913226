"""A contribution's records, their canonical form and hash, and the contribution Merkle root.

A record's identity is its canonical JSON: only the kind's fields and ``kind``, keys sorted,
no whitespace, UTF-8 (not ASCII-escaped). Its ``sha256`` is the hash of those bytes, so the
same content uploaded from two files (or twice) has one hash; ``source`` and ``location``
only say where it came from. The contribution root is OpenZeppelin's ``SimpleMerkleTree``
over the records' raw sha256 digests (see :class:`openledger.chain.merkle.SimpleMerkleTree`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar, overload

from openledger.chain.merkle import SimpleMerkleTree
from openledger.errors import ValidationError

__all__ = [
    "KINDS",
    "ROLES",
    "Kind",
    "Record",
    "contribution_proof",
    "contribution_root",
    "contribution_tree",
]

Kind = Literal["text", "prompt_completion", "chat"]
KINDS: tuple[str, ...] = ("text", "prompt_completion", "chat")
ROLES: tuple[str, ...] = ("system", "user", "assistant")
_FIELDS: dict[str, tuple[str, ...]] = {
    "text": ("text",),
    "prompt_completion": ("prompt", "completion"),
    "chat": ("messages",),
}


# json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False), built once
_ENCODE = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
_T = TypeVar("_T")


class _cached(Generic[_T]):
    """``functools.cached_property`` without its per-access lock (3.11): computed once,
    stored in the instance ``__dict__`` (which a frozen dataclass still has)."""

    def __init__(self, func: Callable[[Any], _T]) -> None:
        self.func = func
        self.name = func.__name__
        self.__doc__ = func.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type) -> _cached[_T]: ...
    @overload
    def __get__(self, obj: object, owner: type) -> _T: ...
    def __get__(self, obj: object | None, owner: type) -> _cached[_T] | _T:
        if obj is None:
            return self
        value = obj.__dict__[self.name] = self.func(obj)
        return value


def _bad(message: str, field: str, fix: str, value: Any = None) -> ValidationError:
    return ValidationError(message, field=field, value=value, fix=fix)


@dataclass(frozen=True)
class Record:
    """One training example of a contribution (already normalised by the parsers)."""

    kind: Kind
    text: str | None = None
    prompt: str | None = None
    completion: str | None = None
    messages: tuple[tuple[str, str], ...] | None = None  # (role, content) pairs
    source: str = ""  # the file's display name
    location: str = ""  # where in the file: "line 12", "row 3", "paragraph 4"

    def __post_init__(self) -> None:
        if self.kind not in _FIELDS:
            raise _bad(
                f"Record kind {self.kind!r} is not one of {', '.join(KINDS)}.",
                "kind",
                f"use one of {', '.join(KINDS)}.",
                self.kind,
            )
        if self.kind == "chat":
            if self.messages is None:
                raise _bad("A chat record needs messages.", "messages", "pass messages.")
            try:
                pairs = tuple((role, content) for role, content in self.messages)
            except (TypeError, ValueError):
                pairs = ((None, None),)
            for role, content in pairs:
                if role not in ROLES or not isinstance(content, str):
                    raise _bad(
                        f"Chat message ({role!r}, {content!r:.40}) is not (role, text).",
                        "messages",
                        f"pass (role, content) pairs with a role from {', '.join(ROLES)}.",
                    )
            object.__setattr__(self, "messages", pairs)
        else:
            for name in _FIELDS[self.kind]:
                if not isinstance(getattr(self, name), str):
                    raise _bad(
                        f"A {self.kind} record needs a string {name!r}.",
                        name,
                        f"pass {name} as a string.",
                    )

    # --- canonical form and hash ---------------------------------------------------------

    def canonical(self) -> dict[str, Any]:
        """Only the kind's fields plus ``kind``; chat messages as ``{"role", "content"}``."""
        if self.kind == "text":
            return {"kind": "text", "text": self.text}
        if self.kind == "prompt_completion":
            return {"kind": self.kind, "prompt": self.prompt, "completion": self.completion}
        assert self.messages is not None
        return {
            "kind": "chat",
            "messages": [{"role": role, "content": content} for role, content in self.messages],
        }

    @_cached
    def _canonical_bytes(self) -> bytes:
        return _ENCODE(self.canonical()).encode("utf-8")

    def canonical_json(self) -> bytes:
        return self._canonical_bytes

    @_cached
    def sha256(self) -> str:
        """Hex sha256 of :meth:`canonical_json` (independent of source and location)."""
        return hashlib.sha256(self._canonical_bytes).hexdigest()

    @property
    def leaf(self) -> bytes:
        """The 32 raw bytes of :attr:`sha256`: this record's leaf in the contribution tree."""
        return bytes.fromhex(self.sha256)

    # --- text views ----------------------------------------------------------------------

    @_cached
    def content_text(self) -> str:
        """The text the caps and near-duplicate checks look at."""
        if self.kind == "text":
            return self.text or ""
        if self.kind == "prompt_completion":
            return f"{self.prompt}\n{self.completion}"
        assert self.messages is not None
        return "\n".join(f"{role}: {content}" for role, content in self.messages)

    @property
    def char_len(self) -> int:
        return len(self.content_text)

    def preview(self, n: int = 160) -> str:
        """The content on one line, cut to at most ``n`` characters (with an ellipsis)."""
        flat = " ".join(self.content_text.split())
        if len(flat) <= n:
            return flat
        return flat[: max(n - 1, 0)].rstrip() + "…"

    # --- parsing the canonical form back --------------------------------------------------

    @classmethod
    def from_canonical(
        cls, data: Mapping[str, Any], source: str = "", location: str = ""
    ) -> Record:
        """The inverse of :meth:`canonical` (no normalisation; unknown keys are rejected)."""
        if not isinstance(data, Mapping):
            raise _bad(
                f"A canonical record is a JSON object, not {type(data).__name__}.",
                "record",
                "pass the dict from Record.canonical() or its JSON.",
            )
        kind = data.get("kind")
        if kind not in _FIELDS:
            raise _bad(
                f"Canonical record kind {kind!r} is not one of {', '.join(KINDS)}.",
                "kind",
                f"set kind to one of {', '.join(KINDS)}.",
                kind,
            )
        expected = {"kind", *_FIELDS[kind]}
        if set(data) != expected:
            raise _bad(
                f"A canonical {kind} record has exactly the keys {sorted(expected)}, "
                f"not {sorted(map(str, data))}.",
                "record",
                f"keep only {', '.join(sorted(expected))}.",
            )
        if kind != "chat":
            for name in _FIELDS[kind]:
                if not isinstance(data[name], str):
                    raise _bad(
                        f"Canonical record field {name!r} must be a string.",
                        name,
                        f"make {name} a string.",
                    )
            return cls(
                kind=kind,
                source=source,
                location=location,
                **{name: data[name] for name in _FIELDS[kind]},
            )
        messages = data["messages"]
        if not isinstance(messages, list):
            raise _bad("Canonical chat messages must be a list.", "messages", "use a list.")
        pairs = []
        for i, message in enumerate(messages, 1):
            if (
                not isinstance(message, Mapping)
                or set(message) != {"role", "content"}
                or message["role"] not in ROLES
                or not isinstance(message["content"], str)
            ):
                raise _bad(
                    f"Canonical chat message {i} is not {{'role', 'content'}} with a role "
                    f"from {', '.join(ROLES)}.",
                    "messages",
                    'write each message as {"role": ..., "content": "..."}.',
                    i,
                )
            pairs.append((message["role"], message["content"]))
        return cls(kind="chat", messages=tuple(pairs), source=source, location=location)


# --- the contribution's Merkle tree ---------------------------------------------------------


def contribution_tree(records: Iterable[Record]) -> SimpleMerkleTree:
    return SimpleMerkleTree.from_leaves([r.leaf for r in records])


def contribution_root(records: Iterable[Record]) -> bytes:
    """The root committed on chain for a contribution: OpenZeppelin ``SimpleMerkleTree``
    over the records' sha256 leaves (sorted, not re-hashed, sorted-pair keccak256)."""
    return contribution_tree(records).root


def contribution_proof(records: Sequence[Record], index: int) -> list[bytes]:
    """The proof that ``records[index]`` is in :func:`contribution_root` of ``records``."""
    if not 0 <= index < len(records):
        raise ValidationError(
            f"Record index {index} is out of range for {len(records)} records.",
            field="index",
            value=index,
            fix=f"pass an index from 0 to {len(records) - 1}.",
        )
    return contribution_tree(records).proof(records[index].leaf)
