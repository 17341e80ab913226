"""Writes from a browser wallet over HTTP (web/wallet.py): the node prepares unsigned
transactions, the wallet sends them, the node checks the reported hashes (mined, succeeded,
from the signed-in account, to the prepared contract with the prepared calldata) and only
then records the off-chain side. A reverted transaction, one from another account and one to
another contract are each refused with a message, and nothing is recorded. The writes
sent this way: contribute, deposit, delegate, create a datanet, review (approve and reject),
freeze a snapshot, publish a model, vote and claim."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account.messages import encode_defunct
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from openledger.app import create_app
from openledger.datanets.manifest import verify_manifest
from openledger.node import Node
from openledger.store.datanet_tables import ContributionRow
from openledger.store.factory_tables import JobRow
from openledger.units import OPEN
from tests import tiny
from tests.conftest import World
from tests.ledger.settlement.test_epochs import fast_forward, paid
from tests.market import Market
from tests.web.injected import TestWallet

pytestmark = pytest.mark.anvil
WEB = {"X-OpenLedger-Web": "1"}
TEXT = "Wasps can recognise the faces of other wasps."


@pytest.fixture
def wallet(world: World, chain: Node) -> TestWallet:
    w = TestWallet(world.node)
    w.fund(chain)
    return w


@pytest.fixture
def client(world: World, wallet: TestWallet) -> Iterator[TestClient]:
    with TestClient(create_app(world.node), base_url="http://127.0.0.1:8000") as c:
        text = c.post("/web/auth/message", json={"address": wallet.address}, headers=WEB).json()[
            "message"
        ]
        sig = wallet.account.sign_message(encode_defunct(text=text)).signature.hex()
        r = c.post("/web/auth/verify", json={"message": text, "signature": sig}, headers=WEB)
        assert r.status_code == 200 and r.json()["session"]["dev"] is None
        yield c


def _rows(world: World) -> int:
    with world.node.db.session() as s:
        return int(s.scalar(select(func.count()).select_from(ContributionRow)) or 0)


def _prepare_contribution(client: TestClient, world: World) -> dict[str, Any]:
    r = client.post(
        "/web/api/datanets/facts/contributions",
        headers=WEB,
        files={"files": ("wasps.txt", TEXT.encode())},
        data={"stake": "12"},
    )
    assert r.status_code == 201, r.text
    return r.json()["wallet"]


def _submit(client: TestClient, w: dict[str, Any], hashes: list[str], signature: Any = None) -> Any:
    return client.post(
        "/web/api/wallet/submit",
        headers=WEB,
        json={"pending": w["pending"], "hashes": hashes, "signature": signature},
    )


def test_contribute_from_the_wallet(client: TestClient, world: World, wallet: TestWallet) -> None:
    before = _rows(world)
    w = _prepare_contribution(client, world)
    assert [t["label"] for t in w["txs"]] == ["approve", "contribute"]  # the stake's approve
    assert {t["from"] for t in w["txs"]} == {wallet.address}
    assert w["txs"][1]["to"] == world.node.contracts.datanets.address
    assert _rows(world) == before  # nothing recorded before the transactions are mined
    signature = wallet.personal_sign(w["sign"])
    hashes = [wallet.send(t) for t in w["txs"]]
    r = _submit(client, w, hashes, signature)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["contributor"] == wallet.address and out["tx_hash"] == hashes[1]
    on_chain = world.node.contracts.datanets.contribution(out["contribution_id"])
    assert (on_chain.contributor, on_chain.stake) == (wallet.address, 12 * OPEN)
    with world.node.db.session() as s:
        row = s.scalar(
            select(ContributionRow).where(ContributionRow.chain_id == out["contribution_id"])
        )
        assert (row.contributor, row.stake, row.tx_hash) == (wallet.address, 12 * OPEN, hashes[1])
        envelope = json.loads(world.node.blobs.get(row.manifest_sha))
    assert envelope["signature"] == signature  # the manifest, signed by the wallet
    assert verify_manifest(envelope["manifest"], envelope["signature"])
    # the write is done: reporting again finds nothing waiting
    again = _submit(client, w, hashes, signature)
    assert again.status_code == 404 and "No prepared write" in again.json()["message"]


def test_a_reverted_transaction_is_refused(
    client: TestClient, world: World, wallet: TestWallet
) -> None:
    before = _rows(world)
    w = _prepare_contribution(client, world)
    signature = wallet.personal_sign(w["sign"])
    approve = wallet.send(w["txs"][0])
    registry = world.node.contracts.datanets.address
    token = world.node.contracts.token
    # the allowance taken back before the contribute is mined: it reverts on chain
    wallet.send(
        {"to": token.address, "data": token.contract.encode_abi("approve", args=[registry, 0])}
    )
    reverted = wallet.send(w["txs"][1], gas=400_000)
    r = _submit(client, w, [approve, reverted], signature)
    assert r.status_code == 409, r.text
    assert r.json()["message"] == (
        f"The contribute transaction {reverted} reverted on chain; nothing was recorded."
    )
    assert _rows(world) == before
    # the write still waits: sent again, properly, it is recorded
    hashes = [wallet.send(t) for t in w["txs"]]
    assert _submit(client, w, hashes, signature).status_code == 200
    assert _rows(world) == before + 1


def test_a_transaction_from_another_account_is_refused(
    client: TestClient, world: World, wallet: TestWallet
) -> None:
    before = _rows(world)
    w = _prepare_contribution(client, world)
    approve = wallet.send(w["txs"][0])
    bob = world.node.accounts.signer("bob")
    theirs = wallet.send(w["txs"][1], gas=400_000, signer=bob)  # the same call, bob's key
    r = _submit(client, w, [approve, theirs], wallet.personal_sign(w["sign"]))
    assert r.status_code == 401, r.text
    assert r.json()["message"] == (
        f"The contribute transaction {theirs} was sent by "
        f"{bob.address}, not by the signed-in account "
        f"{wallet.address}."
    )
    assert _rows(world) == before


def test_a_transaction_to_another_contract_is_refused(
    client: TestClient, world: World, wallet: TestWallet
) -> None:
    before = _rows(world)
    w = _prepare_contribution(client, world)
    approve = wallet.send(w["txs"][0])
    escrow = world.node.contracts.escrow.address
    elsewhere = wallet.send({**w["txs"][1], "to": escrow}, gas=400_000)
    r = _submit(client, w, [approve, elsewhere], wallet.personal_sign(w["sign"]))
    assert r.status_code == 422, r.text
    msg = r.json()["message"]
    assert msg.startswith(
        f"The contribute transaction {elsewhere} was sent to {escrow}, not "
        "the prepared contribute call to the DatanetRegistry"
    )
    assert _rows(world) == before
    # a manifest signed by another key is refused too
    bob = world.node.accounts.signer("bob")
    forged = "0x" + bob.sign_message(encode_defunct(hexstr=w["sign"])).signature.hex()
    contribute = wallet.send(w["txs"][1])
    r = _submit(client, w, [approve, contribute], forged)
    assert r.status_code == 401 and f"is {bob.address}'s" in r.json()["message"]
    assert _rows(world) == before


def test_deposit_and_delegate_from_the_wallet(
    client: TestClient, world: World, wallet: TestWallet
) -> None:
    node = world.node
    r = client.post("/web/api/deposit", json={"amount": "5"}, headers=WEB)
    w = r.json()["wallet"]
    assert [t["label"] for t in w["txs"]] == ["approve", "deposit"] and w["sign"] is None
    assert [t["contract"] for t in w["txs"]] == ["OpenToken", "InferenceEscrow"]  # named
    assert node.ledger.credit(wallet.address)["available"] == "0"
    r = _submit(client, w, [wallet.send(t) for t in w["txs"]])
    assert r.status_code == 200, r.text
    assert r.json()["available"] == str(5 * OPEN)  # synced: usable at once
    assert node.contracts.escrow.balance_of(wallet.address) == 5 * OPEN
    # a check the service makes before sending is said at once, with nothing to send
    r = client.post("/web/api/deposit", json={"amount": "100000"}, headers=WEB)
    assert r.status_code == 422 and "less than the" in r.json()["message"]

    w = client.post("/web/api/governance/delegate", json={"delegatee": ""}, headers=WEB).json()[
        "wallet"
    ]
    assert [t["label"] for t in w["txs"]] == ["delegate"]
    r = _submit(client, w, [wallet.send(t) for t in w["txs"]])
    assert r.status_code == 200, r.text
    assert r.json()["delegatee"] == wallet.address
    assert node.contracts.token.get_votes(wallet.address) == node.contracts.token.balance_of(
        wallet.address
    )


def _send_all(
    client: TestClient, wallet: TestWallet, r: Any, labels: list[str]
) -> tuple[dict[str, Any], list[str], dict[str, Any]]:
    """A prepared write (the route's answer ``r``) sent by the wallet and reported: the
    offer, the hashes and what the node answered."""
    assert r.status_code in (200, 201), r.text
    w = r.json()["wallet"]
    assert [t["label"] for t in w["txs"]] == labels
    assert {t["from"] for t in w["txs"]} == {wallet.address}
    signature = wallet.personal_sign(w["sign"]) if w["sign"] else None
    hashes = [wallet.send(t) for t in w["txs"]]
    out = _submit(client, w, hashes, signature)
    assert out.status_code == 200, out.text
    return w, hashes, out.json()


def _own_datanet(client: TestClient, wallet: TestWallet) -> dict[str, Any]:
    """Datanet 'bees', created by the wallet: it owns it and is its only validator."""
    r = client.post(
        "/web/api/datanets",
        headers=WEB,
        json={
            "name": "bees",
            "description": "facts about bees",
            "validators": [wallet.address],
            "quorum": 1,
            "min_stake": "10",
        },
    )
    _, _, out = _send_all(client, wallet, r, ["createDatanet"])
    assert out["owner"] == wallet.address and out["validators"] == [wallet.address]
    return out


def _contribute(world: World, who: str, name: str, text: str) -> int:
    acc = world.node.accounts
    return world.node.contributions.contribute(
        "bees", [world.write(name, text)], stake=10 * OPEN, signer=acc.signer(who)
    ).contribution_id


def test_review_from_the_wallet(client: TestClient, world: World, wallet: TestWallet) -> None:
    """The wallet account validates a datanet the node holds no key for: it approves one
    contribution and rejects another (a reason required first), each decided on chain by
    the wallet's transaction and mirrored in the node only once mined."""
    node = world.node
    _own_datanet(client, wallet)
    good = _contribute(world, "alice", "bees.txt", "Bees can recognise human faces.")
    bad = _contribute(world, "erin", "ads.txt", "buy cheap watches now")
    queue = client.get("/web/api/review-queue").json()
    assert queue["validates"] == ["bees"]
    assert {i["id"] for i in queue["items"]} == {good, bad}

    r = client.post(f"/web/api/contributions/{good}/review", json={"approve": True}, headers=WEB)
    w = r.json()["wallet"]
    assert w["txs"][0]["to"] == node.contracts.datanets.address
    assert node.reviews.detail(good)["reviews"] == []  # nothing recorded before it is mined
    _, hashes, out = _send_all(client, wallet, r, ["review"])
    assert out["status"] == "approved"
    assert node.contracts.datanets.contribution(good).status == node.contracts.datanets.APPROVED
    detail = node.reviews.detail(good)
    assert detail["status"] == "approved"
    assert [(v["validator"], v["approve"], v["tx_hash"]) for v in detail["reviews"]] == [
        (wallet.address, True, hashes[0])
    ]
    # a second review by the same validator is refused before anything is prepared
    r = client.post(
        f"/web/api/contributions/{good}/review",
        json={"approve": False, "reason": "changed my mind"},
        headers=WEB,
    )
    assert r.status_code == 409 and "already approved" in r.json()["message"]

    # a rejection needs a reason: refused at once, nothing to send
    r = client.post(f"/web/api/contributions/{bad}/review", json={"approve": False}, headers=WEB)
    assert r.status_code == 422 and "needs a reason" in r.json()["message"]
    r = client.post(
        f"/web/api/contributions/{bad}/review",
        json={"approve": False, "reason": "spam"},
        headers=WEB,
    )
    _, hashes, out = _send_all(client, wallet, r, ["review"])
    assert out["status"] == "rejected"
    on_chain = node.contracts.datanets.contribution(bad)
    assert on_chain.status == node.contracts.datanets.REJECTED and on_chain.slashed > 0
    detail = node.reviews.detail(bad)
    assert detail["status"] == "rejected" and int(detail["slashed"]) == on_chain.slashed
    assert [(v["validator"], v["approve"], v["reason"]) for v in detail["reviews"]] == [
        (wallet.address, False, "spam")
    ]
    assert client.get("/web/api/review-queue").json()["items"] == []


def _finished_job(world: World, tmp_path: Path, snap: dict[str, Any], base: Path) -> int:
    """A training job on ``snap`` as the worker leaves it when it succeeds: a real (random)
    adapter of the tiny base stands in for a trained one, since publishing checks that the
    engine could serve it, then hashes and copies it (tests/factory/test_jobs.py trains and
    publishes for real)."""
    adapter = tiny.make_adapter(
        base, tmp_path / "job" / "adapter", rank=2, modules=("q_proj", "v_proj"), seed=7
    )
    lineage = tmp_path / "job" / "training_examples.json"
    lineage.write_text('{"train": [], "eval": []}')
    with world.node.db.session() as s:
        job = JobRow(
            kind="train",
            status="succeeded",
            work_dir=str(tmp_path / "job"),
            params={
                "datanet": "bees",
                "version": snap["version"],
                "snapshot_root": snap["root"],
                "base": str(base),
                "config": {"method": "lora", "rank": 2},
            },
            result={
                "adapter_dir": str(adapter),
                "lineage_path": str(lineage),
                "base_fingerprint": "tiny",
                "base_eval_ppl": 9.0,
                "adapter_eval_ppl": 7.0,
            },
        )
        s.add(job)
        s.flush()
        return job.id


def test_snapshot_and_publish_from_the_wallet(
    client: TestClient, world: World, wallet: TestWallet, tmp_path: Path, tiny_base_dir: Path
) -> None:
    """The wallet, owner of a datanet, freezes its snapshot (the row and blobs written once
    commitSnapshot is mined), then publishes a model trained on it (registerModel)."""
    node = world.node
    dn = _own_datanet(client, wallet)
    cid = _contribute(world, "alice", "bees.txt", "Bees can recognise human faces.")
    r = client.post(f"/web/api/contributions/{cid}/review", json={"approve": True}, headers=WEB)
    _send_all(client, wallet, r, ["review"])

    r = client.post("/web/api/datanets/bees/snapshots", headers=WEB)
    assert r.status_code == 201, r.text
    assert node.snapshots.list("bees") == []  # nothing recorded before it is mined
    _, hashes, snap = _send_all(client, wallet, r, ["commitSnapshot"])
    assert (snap["version"], snap["record_count"], snap["contributions"], snap["tx_hash"]) == (
        1,
        1,
        [cid],
        hashes[0],
    )
    root, count, uri, _ = node.contracts.datanets.snapshot(dn["id"], 1)
    assert ("0x" + root.hex(), count) == (snap["root"], 1)
    assert [s["version"] for s in node.snapshots.list("bees")] == [1]
    assert node.snapshots.table("bees", 1).column("contribution").to_pylist() == [cid]
    assert uri == f"blob:{snap['manifest_sha']}" and node.blobs.get(snap["manifest_sha"])
    # nothing new since: refused before anything is prepared
    r = client.post("/web/api/datanets/bees/snapshots", headers=WEB)
    assert r.status_code == 409 and "Nothing new since snapshot bees@1" in r.json()["message"]

    job = _finished_job(world, tmp_path, snap, tiny_base_dir)
    r = client.post(
        "/web/api/models",
        headers=WEB,
        json={
            "job": job,
            "name": "bees-tiny",
            "price_in": "0.004",
            "price_out": "0.008",
            "attribution": "gradient",
        },
    )
    assert r.status_code == 201, r.text
    assert node.models.list()["total"] == 0  # nothing recorded before it is mined
    _, hashes, model = _send_all(client, wallet, r, ["registerModel"])
    assert (model["name"], model["owner"], model["job"], model["tx_hash"]) == (
        "bees-tiny",
        wallet.address,
        job,
        hashes[0],
    )
    on_chain = node.contracts.models.model(model["id"])
    assert (on_chain.owner, on_chain.adapter_hash.hex(), on_chain.price_in) == (
        wallet.address,
        model["adapter_sha256"],
        4 * OPEN // 1000,
    )
    assert node.contracts.models.snapshot_roots(model["id"]) == [root]
    assert (Path(model["adapter_dir"]) / "README.md").exists()
    assert node.models.get("bees-tiny")["owner"] == wallet.address
    r = client.post("/web/api/models", headers=WEB, json={"job": job, "name": "bees-tiny"})
    assert r.status_code == 409 and "already published" in r.json()["message"]


def test_vote_from_the_wallet(client: TestClient, world: World, wallet: TestWallet) -> None:
    """The wallet delegates to itself, then votes on alice's proposal: the tally on chain
    gains exactly its votes at the snapshot; a second vote is refused with nothing to send."""
    node, alice = world.node, world.node.accounts.signer("alice")
    r = client.post("/web/api/governance/delegate", json={"delegatee": ""}, headers=WEB)
    _send_all(client, wallet, r, ["delegate"])
    node.governance.delegate(alice, alice.address)
    fast_forward(node, 2)  # votes count from the next second
    proposal = node.governance.propose(alice, {"slash_bps": "4000"}, "Slash 40 % instead of 50 %")
    pid = proposal["id"]
    r = client.post(
        f"/web/api/governance/proposals/{pid}/votes", json={"support": "against"}, headers=WEB
    )
    assert r.status_code == 409 and "opens after its snapshot" in r.json()["message"]
    fast_forward(node, 61)  # past the devnet's voting delay: voting is open
    r = client.post(
        f"/web/api/governance/proposals/{pid}/votes", json={"support": "against"}, headers=WEB
    )
    assert r.json()["wallet"]["txs"][0]["to"] == node.contracts.governor.address
    assert not node.contracts.governor.has_voted(pid, wallet.address)
    _, hashes, out = _send_all(client, wallet, r, ["castVote"])
    weight = node.contracts.token.get_past_votes(wallet.address, proposal["snapshot"])
    assert weight == 1_000 * OPEN  # all it holds, delegated to itself
    assert (out["voted"], out["weight"], out["tx_hash"]) == ("against", str(weight), hashes[0])
    assert int(node.governance.show(pid)["votes"]["against"]) == weight
    assert node.contracts.governor.has_voted(pid, wallet.address)
    r = client.post(
        f"/web/api/governance/proposals/{pid}/votes", json={"support": "for"}, headers=WEB
    )
    assert r.status_code == 409 and "already voted" in r.json()["message"]


def test_claim_from_the_wallet(client: TestClient, market: Market, wallet: TestWallet) -> None:
    """The wallet account owns the paid model, so it earns the owner's part of each fee; once
    the epoch is settled and its root in force, it claims: the claim transaction is the
    wallet's, and its OPEN rises by exactly what was claimable."""
    node = market.node
    market.model = {**market.model, "owner": wallet.address}
    paid(market, 3)
    node.epochs.close()
    fast_forward(node)  # the root's activation delay
    claimable = int(node.rewards.claimable(wallet.address)["claimable"])
    assert claimable > 0
    shown = client.get("/web/api/rewards").json()
    assert int(shown["claimable"]["claimable"]) == claimable
    before = node.contracts.token.balance_of(wallet.address)
    r = client.post("/web/api/claim", headers=WEB)
    assert r.json()["wallet"]["txs"][0]["to"] == node.contracts.rewards.address
    assert node.contracts.token.balance_of(wallet.address) == before  # nothing sent yet
    _, hashes, out = _send_all(client, wallet, r, ["claim"])
    after = node.contracts.token.balance_of(wallet.address)
    assert after - before == claimable == int(out["paid"])
    assert (out["balance"], out["tx_hash"], out["claimable"]) == (str(after), hashes[0], "0")
    assert node.rewards.claimable(wallet.address)["claimable"] == "0"
    assert node.contracts.rewards.claimed(wallet.address) == claimable
    # nothing left: the node says so and nothing is prepared
    r = client.post("/web/api/claim", headers=WEB)
    assert r.status_code == 200 and "wallet" not in r.json() and r.json()["paid"] == "0"
