"""What a paid response says about attribution: what its receipt says — every share (past
100 summed up), the attributed and the unattributed part, the tokens' hash."""

from __future__ import annotations

import pytest

from openledger.attribution.types import Attribution, Share
from openledger.ledger.paid.inference import SHOWN_SHARES, attribution_view


def test_the_view_lists_every_share_or_states_the_rest() -> None:
    shares = tuple(Share(c, f"0x{c:040x}", 0.004, 0.004) for c in range(1, 151))
    a = Attribution("provenance", {}, shares, index_hash="0xab", query_hash="0xcd")
    view = attribution_view(a)
    assert len(view["shares"]) == SHOWN_SHARES == 100
    assert view["others"] == {"count": 50, "weight": pytest.approx(0.2)}
    assert view["attributed"] == pytest.approx(0.6) and view["unattributed"] == pytest.approx(0.4)
    listed = sum(s["weight"] for s in view["shares"]) + view["others"]["weight"]
    assert listed + view["unattributed"] == pytest.approx(1.0)
    assert view["query_hash"] == "0xcd" and view["index_hash"] == "0xab"
    few = attribution_view(Attribution("provenance", {}, shares[:3]))
    assert len(few["shares"]) == 3 and few["others"] == {"count": 0, "weight": 0}
    none = attribution_view(None)
    assert none["unattributed"] == 1.0 and none["shares"] == [] and none["attributed"] == 0.0
