"""The chain's head as the event sync reads it, over plain JSON-RPC (no web3).

A read command (`openledger credit NAME`) first asks whether the sync is already at the head;
answering that with one ``eth_blockNumber`` over urllib costs milliseconds, where building
the web3 sync costs ~1 s of imports. Only when there are new blocks is the full sync built.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from openledger.errors import ChainUnreachableError

END_OF_BLOCK = 2**31 - 1  # log index meaning "every log of this block is applied"


def rpc(url: str, method: str, params: list[Any] | None = None, *, timeout: float = 10.0) -> Any:
    """One JSON-RPC call; an endpoint that does not answer is a ChainUnreachableError."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []})
    request = urllib.request.Request(
        url, data=body.encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            doc = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ChainUnreachableError(
            f"The JSON-RPC endpoint {url} did not answer {method} ({exc}).",
            field="OPENLEDGER_CHAIN_URL",
            value=url,
            fix="start the devnet with `openledger chain up`, or point OPENLEDGER_CHAIN_URL "
            "at a running EVM JSON-RPC endpoint.",
        ) from exc
    if not isinstance(doc, dict) or "error" in doc or "result" not in doc:
        error = doc.get("error") if isinstance(doc, dict) else doc
        raise ChainUnreachableError(
            f"The endpoint {url} answered {method} with an error: {error}.",
            field="OPENLEDGER_CHAIN_URL",
            value=url,
            fix="point OPENLEDGER_CHAIN_URL at an EVM JSON-RPC endpoint (a chain node).",
        )
    return doc["result"]


def confirmed_head(url: str, depth: int | str, *, timeout: float = 10.0) -> int:
    """The newest block the sync may read: ``head - depth`` or the block the tag names
    (-1 when a chain has no such block yet, e.g. nothing finalized)."""
    if isinstance(depth, str):
        block = rpc(url, "eth_getBlockByNumber", [depth, False], timeout=timeout)
        return -1 if not block else int(block["number"], 16)
    return int(rpc(url, "eth_blockNumber", timeout=timeout), 16) - depth
