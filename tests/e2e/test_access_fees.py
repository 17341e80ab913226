"""Data access fees end to end, over HTTP against a node served by uvicorn on the devnet:
the datanet's owner prices it, a program with its own key (and an API key) is refused until
it pays, pays the training fee through prepare → sign → submit, queues a job that spends the
payment; the epoch settles the fee to the snapshot's contributors and stakers, they claim
exactly their share on chain, and the audit recomputes it all."""

from __future__ import annotations

from pathlib import Path

import pytest

from openledger.node import Node
from openledger.units import OPEN
from tests.conftest import operator_headers
from tests.e2e.test_script_wallet import KEY, Script, serving
from tests.ledger.settlement.test_epochs import fast_forward
from tests.ledger.test_access import _expected_leaves
from tests.market import Market
from tests.web.injected import TestWallet

pytestmark = pytest.mark.anvil
TRAIN = 9 * OPEN + 1  # odd wei: the split's remainders must still add up


def test_a_program_pays_to_train_and_the_epoch_pays_the_contributors(
    market: Market, chain: Node, tmp_path: Path
) -> None:
    node, c = market.node, market.node.contracts
    TestWallet(node, KEY).fund(chain, open_=50 * OPEN)
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text("{}")
    job = {"datanet": "facts@1", "base": str(base), "config": {"rank": 4}}
    with serving(node) as url:
        me = Script(url, node.settings.rpc_url, node.settings.chain_id)  # holds KEY
        me.api_key()
        owner = me.http.put(
            "/datanets/facts/access",
            headers=operator_headers(node),
            json={"train": "9.000000000000000001", "as": "dave"},
        )
        assert owner.status_code == 200, owner.text
        assert c.datanets.access_prices(1) == (0, TRAIN)

        quote = me.http.get(
            "/datanets/facts/access", params={"version": 1, "kind": "train"}
        ).json()["quote"]
        assert quote["due"] and quote["price"] == str(TRAIN) and quote["account"] == me.address
        balance = c.token.balance_of(me.address)
        refused = me.http.post("/jobs", json=job)
        assert refused.status_code == 402 and refused.json()["field"] == "access"
        assert node.jobs.list()["items"] == [] and c.token.balance_of(me.address) == balance

        paid = me.write(
            "POST",
            "/datanets/facts/access",
            ["approve", "payAccess"],
            json={"version": 1, "kind": "train", "base": job["base"], "config": job["config"]},
        )
        assert (paid["payer"], paid["amount"], paid["used_by"]) == (me.address, str(TRAIN), None)
        assert c.token.balance_of(me.address) == balance - TRAIN
        queued = me.http.post("/jobs", json={**job, "access": paid["access"]})
        assert queued.status_code == 201, queued.text
        assert queued.json()["owner"] == me.address
        assert node.access.get(paid["access"])["used_by"] == f"job:{queued.json()['id']}"
        assert me.http.post("/jobs", json=job).status_code == 402  # spent by that job

        # the epoch timer's work: sealed, posted, the fee paid out through the root
        doc = node.epochs.close()
        assert (doc["status"], doc["receipts"], doc["accesses"]) == ("settled", 0, 1)
        assert int(doc["total"]) == TRAIN
        report = node.auditor.audit(doc["epoch"])
        assert report.ok, report.problems
        fast_forward(node)  # the root's activation delay
        # each claims exactly its leaf: the fee split 10/20/20/50 (platform, owner, stakers,
        # contributors), the stakers' part by stake (alice 10, erin 30, frank 20 OPEN), the
        # contributors' by approved records (one each)
        expected = _expected_leaves(market, [TRAIN])
        assert sum(expected.values()) == TRAIN
        for name in ("alice", "erin", "frank", "dave"):
            addr = market.addr(name)
            rewards = me.http.get(f"/rewards/{addr}").json()
            claimable = int(rewards["claimable"]["claimable"])
            assert claimable == expected[addr] > 0
            assert rewards["earnings"]["by_source"] == {"access": str(claimable)}
            before = c.token.balance_of(addr)
            r = me.http.post("/rewards/claim", headers=operator_headers(node), json={"as": name})
            assert r.status_code == 200, r.text
            assert c.token.balance_of(addr) - before == claimable
        # the program's writes were its own transactions: the node sent none for it
        assert node.prepared.waiting(me.address) == []
