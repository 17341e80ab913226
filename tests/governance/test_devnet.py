"""The devnet-only governance shortcuts refuse any other chain before sending anything."""

from __future__ import annotations

import pytest

from openledger.chain.client import ChainClient
from openledger.errors import ConflictError
from openledger.governance.devnet import advance_devnet_clock, require_devnet


def test_a_chain_that_is_not_the_devnet_is_refused_before_any_request() -> None:
    # nothing listens on port 9: a request would fail with ChainUnreachableError instead
    client = ChainClient("http://127.0.0.1:9", chain_id=1)
    with pytest.raises(ConflictError, match="works only on the embedded devnet") as exc:
        advance_devnet_clock(client, 60)
    assert exc.value.fix and "gov propose" in exc.value.fix
    with pytest.raises(ConflictError, match="Acting as the Timelock works only"):
        require_devnet(client, "Acting as the Timelock")
    require_devnet(ChainClient("http://127.0.0.1:9", chain_id=31337), "anything")  # no request
