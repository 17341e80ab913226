"""Turn field values read from any format into a checked, normalised :class:`Record`.

Shared by every format: :func:`make_record` (normalise, reject empty or too-long records),
:func:`check_messages` (the shape of a chat ``messages`` value, from JSON lines or a
Parquet list column) and :func:`type_name` (a JSON-ish type name for messages).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from openledger.datanets.limits import IngestLimits
from openledger.datanets.normalize import normalize_text
from openledger.datanets.parsers.errors import IngestError, error
from openledger.datanets.records import ROLES, Record

__all__ = ["check_messages", "error_at", "make_record", "type_name"]


def make_record(
    name: str,
    location: str,
    limits: IngestLimits,
    *,
    text: str | None = None,
    prompt: str | None = None,
    completion: str | None = None,
    messages: Sequence[tuple[str, str]] | None = None,
) -> Record:
    """Normalise the fields, check emptiness and length, build the record."""

    def empty(what: str) -> IngestError:
        return error(
            name,
            location,
            "empty_record",
            f"{what} is empty after normalisation (only whitespace or control characters)",
            fix="give it content or remove it.",
        )

    if messages is not None:
        pairs = []
        for i, (role, content) in enumerate(messages, 1):
            content = normalize_text(content)
            if not content:
                raise empty(f"message {i} ({role})")
            pairs.append((role, content))
        record = Record(kind="chat", messages=tuple(pairs), source=name, location=location)
    elif text is not None:
        text = normalize_text(text)
        if not text:
            raise empty("the record")
        record = Record(kind="text", text=text, source=name, location=location)
    else:
        assert prompt is not None and completion is not None
        prompt, completion = normalize_text(prompt), normalize_text(completion)
        if not completion:
            raise empty("the completion")
        record = Record(
            kind="prompt_completion",
            prompt=prompt,
            completion=completion,
            source=name,
            location=location,
        )
    if record.char_len > limits.max_record_chars:
        raise error(
            name,
            location,
            "record_too_long",
            f"{record.char_len:,} characters; the cap is {limits.max_record_chars:,}",
            fix=f"split it into records of at most {limits.max_record_chars:,} characters "
            "(a .txt or .md file is split into records automatically).",
            value=record.char_len,
        )
    return record


def error_at(name: str, location: str) -> Callable[[str, str, str, str], IngestError]:
    """An error factory for :func:`check_messages` at ``location`` (plus a suffix)."""

    def err(suffix: str, rule: str, detail: str, fix: str) -> IngestError:
        return error(name, location + suffix, rule, detail, fix=fix)

    return err


def type_name(value: Any) -> str:
    return {
        type(None): "null",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def check_messages(
    value: Any, err: Callable[[str, str, str, str], IngestError]
) -> list[tuple[str, str]]:
    """Check a chat ``messages`` value; ``err(location_suffix, rule, detail, fix)``."""
    fix_shape = (
        'write messages as [{"role": "user", "content": "..."}, '
        '{"role": "assistant", "content": "..."}].'
    )
    if not isinstance(value, list | tuple) or not value:
        got = "an empty list" if isinstance(value, list | tuple) else type_name(value)
        raise err("", "bad_field", f'"messages" must be a non-empty list, got {got}', fix_shape)
    pairs = []
    for i, message in enumerate(value, 1):
        where = f", message {i}"
        if not isinstance(message, Mapping):
            raise err(
                where,
                "bad_field",
                f"a message must be an object, got {type_name(message)}",
                fix_shape,
            )
        for key in ("role", "content"):
            if message.get(key) is None:
                raise err(where, "missing_field", f'no "{key}"', fix_shape)
        role, content = message["role"], message["content"]
        if role not in ROLES:
            raise err(
                where,
                "bad_field",
                f'"role" is {role!r}; accepted roles: {", ".join(ROLES)}',
                f"use one of {', '.join(ROLES)} as the role.",
            )
        if not isinstance(content, str):
            raise err(
                where,
                "bad_field",
                f'"content" must be a string, got {type_name(content)}',
                fix_shape,
            )
        pairs.append((role, content))
    if not any(role == "assistant" for role, _ in pairs):
        raise err(
            "",
            "missing_field",
            "a chat needs at least one assistant message to learn from",
            'add the reply as {"role": "assistant", "content": "..."}.',
        )
    return pairs
