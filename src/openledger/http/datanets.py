"""What the datanet routes of both faces share: a snapshot as a download, an access price
as a request gives it."""

from __future__ import annotations

import tempfile
from pathlib import Path

from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from openledger.node import Node
from openledger.units import parse_open


def export_file(node: Node, datanet: str, version: int, fmt: str, account: str) -> FileResponse:
    """A snapshot written for ``account`` (a priced one only if it may read it: 402
    otherwise, and nothing is written) as a download, its temporary folder removed after."""
    tmp = tempfile.TemporaryDirectory(prefix="export-")
    name = f"{datanet}-v{version}.{fmt}"
    try:
        path = node.snapshots.export(
            f"{datanet}@{version}", fmt, Path(tmp.name) / name, account=account
        )
    except BaseException:
        tmp.cleanup()
        raise
    return FileResponse(path, filename=name, background=BackgroundTask(tmp.cleanup))


def price_wei(value: str | None, field: str) -> int | None:
    """An access price as a request gives it, in OPEN, as wei (None: unchanged)."""
    return None if value is None else parse_open(value, field=field)
