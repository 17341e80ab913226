"""``.jsonl``: one JSON object per non-blank line (text, prompt/completion or chat)."""

from __future__ import annotations

import json
from typing import Any

from openledger.datanets.limits import IngestLimits
from openledger.datanets.parsers.errors import error
from openledger.datanets.parsers.fields import check_messages, error_at, make_record, type_name
from openledger.datanets.records import Record

__all__ = ["parse_jsonl"]

_ACCEPTED_JSONL = (
    '"text", or "prompt" and "completion", or "messages" '
    '(a list of {"role": "system"|"user"|"assistant", "content": "..."})'
)
_FIX_JSONL_FIELDS = (
    'give each line a "text" string, or "prompt" and "completion" strings, or "messages": '
    '[{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}].'
)


def parse_jsonl(text: str, name: str, limits: IngestLimits) -> list[Record]:
    records = []
    loads = json.loads
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        location = f"line {number}"
        try:
            obj = loads(line)
        except json.JSONDecodeError as exc:
            raise error(
                name,
                location,
                "malformed_json",
                f"{exc.msg} at column {exc.colno}",
                fix='make each line one complete JSON object, e.g. {"text": "..."}: '
                "double-quoted strings, no trailing commas, no line breaks inside an object.",
            ) from None
        if not isinstance(obj, dict):
            raise error(
                name,
                location,
                "malformed_json",
                f"expected a JSON object, got {type_name(obj)}",
                fix=_FIX_JSONL_FIELDS,
            )
        records.append(_jsonl_record(obj, name, location, limits))
    return records


def _jsonl_record(obj: dict[str, Any], name: str, location: str, limits: IngestLimits) -> Record:
    err = error_at(name, location)
    if "messages" in obj:
        return make_record(name, location, limits, messages=check_messages(obj["messages"], err))
    if "prompt" in obj or "completion" in obj:
        for key in ("prompt", "completion"):
            if key not in obj:
                other = "completion" if key == "prompt" else "prompt"
                raise err(
                    "",
                    "missing_field",
                    f'"{other}" without "{key}"; accepted: {_ACCEPTED_JSONL}',
                    _FIX_JSONL_FIELDS,
                )
        fields = {}
        for key in ("prompt", "completion"):
            if not isinstance(obj[key], str):
                raise err(
                    "",
                    "bad_field",
                    f'"{key}" must be a string, got {type_name(obj[key])}',
                    _FIX_JSONL_FIELDS,
                )
            fields[key] = obj[key]
        return make_record(name, location, limits, **fields)
    if "text" in obj:
        if not isinstance(obj["text"], str):
            raise err(
                "",
                "bad_field",
                f'"text" must be a string, got {type_name(obj["text"])}',
                _FIX_JSONL_FIELDS,
            )
        return make_record(name, location, limits, text=obj["text"])
    keys = ", ".join(f'"{k}"' for k in list(obj)[:10]) or "none"
    raise err(
        "",
        "missing_field",
        f"no accepted field (the object's keys: {keys}); accepted: {_ACCEPTED_JSONL}",
        _FIX_JSONL_FIELDS,
    )
