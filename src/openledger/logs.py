"""Logs: one JSON object a line (``--log-format json``) or plain text, with the request id of
the API request being handled on every line logged while it is (``request_context``).

``openledger serve`` configures them: text on a terminal, JSON otherwise, unless
``--log-format`` (or ``OPENLEDGER_LOG_FORMAT``) says which.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

FORMATS = ("json", "text")
#: the API request being handled: ``{"request_id": ..., "receipt_ids": [...]}``
request_context: ContextVar[dict[str, Any] | None] = ContextVar("request_context", default=None)

_STANDARD = set(logging.LogRecord("x", 0, "x", 0, "x", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}


class ContextFilter(logging.Filter):
    """Adds ``request_id`` to every record logged while an API request is handled."""

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = request_context.get()
        if ctx is not None and not hasattr(record, "request_id"):
            record.request_id = ctx["request_id"]
        return True


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {
        k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")
    }


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **_extras(record),
        }
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        extras = _extras(record)
        rid = extras.pop("request_id", None)
        line = f"{when} {record.levelname:<7} {record.name}: {record.getMessage()}"
        if rid:
            line += f" [{rid}]"
        if "receipt_ids" in extras:
            line += f" receipts {','.join(extras['receipt_ids'])}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def check_format(value: str | None) -> str | None:
    if value is not None and value not in FORMATS:
        from openledger.errors import ValidationError

        raise ValidationError(
            f"Unknown log format {value!r}.",
            field="log_format",
            value=value,
            fix="use json or text (or leave it out: text on a terminal, JSON otherwise).",
        )
    return value


def configure(fmt: str | None = None, *, level: int = logging.INFO) -> str:
    """Send the process's logs to stderr in ``fmt`` (default: text on a TTY, else JSON);
    returns the format chosen. A second call replaces the handler the first one added."""
    chosen = check_format(fmt) or ("text" if sys.stderr.isatty() else "json")
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_openledger", False)]:
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if chosen == "json" else TextFormatter())
    handler.addFilter(ContextFilter())
    handler._openledger = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):  # one format for every line: through the root
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # the API logs its own request lines
    return chosen


__all__ = [
    "FORMATS",
    "ContextFilter",
    "JsonFormatter",
    "TextFormatter",
    "configure",
    "request_context",
]
