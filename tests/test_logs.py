"""Log formats: one JSON object a line with the request id of the request being handled."""

from __future__ import annotations

import io
import json
import logging
import sys

import pytest

from openledger.cli.main import main
from openledger.logs import configure, request_context


def test_json_lines_carry_the_request_id(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    root = logging.getLogger()
    level = root.level
    try:
        assert configure("json") == "json"
        log = logging.getLogger("openledger.test")
        token = request_context.set({"request_id": "r-1", "receipt_ids": []})
        try:
            log.info("inside %s", "a request", extra={"status": 200})
        finally:
            request_context.reset(token)
        log.warning("outside")
        assert configure("text") == "text"  # replaces the JSON handler, never stacks
        log.info("as text")
    finally:
        for h in [h for h in root.handlers if getattr(h, "_openledger", False)]:
            root.removeHandler(h)
        root.setLevel(level)
    first, second, third = stream.getvalue().splitlines()
    doc = json.loads(first)
    assert doc["message"] == "inside a request" and doc["request_id"] == "r-1"
    assert doc["status"] == 200 and doc["level"] == "info" and doc["logger"] == "openledger.test"
    assert "request_id" not in json.loads(second) and json.loads(second)["level"] == "warning"
    assert third.endswith("INFO    openledger.test: as text")


def test_unknown_log_format_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--log-format", "xml", "datanet", "list"]) == 1
    err = capsys.readouterr().err
    assert "Unknown log format 'xml'" in err and "json or text" in err
    assert err.startswith("error: --log-format: ")  # the service's log_format, as the CLI says it
