"""What the datanet routes of both faces share: a snapshot as a download, a contribution as
an account may read it, the plan that sets a datanet's access prices."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from openledger.chain.calls import Plan
from openledger.node import Node
from openledger.units import parse_open


def contribution_for(
    node: Node,
    contribution: int,
    account: str | None,
    offset: int,
    limit: int,
    *,
    everyone: bool = False,
) -> dict[str, Any]:
    """:meth:`ReviewService.detail` as ``account`` may read it (records withheld on a priced
    datanet from an account that may not read them; ``everyone``: the operator)."""
    doc = node.reviews.detail(contribution, offset=offset, limit=limit)
    withheld = None if everyone else node.access.withheld(contribution, account)
    if withheld is not None:
        doc["records"] = {**doc["records"], "items": [], "withheld": withheld}
    return doc


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


def plan_prices(
    node: Node, datanet: str, export: str | None, train: str | None, owner: str
) -> Plan:
    """The plan that sets a datanet's access prices, given in OPEN (None: unchanged)."""
    current = node.access.prices(datanet)
    ex = int(current["export"]) if export is None else parse_open(export, field="export")
    tr = int(current["train"]) if train is None else parse_open(train, field="train")
    return node.access.plan_set_prices(datanet, export=ex, train=tr, owner=owner)
