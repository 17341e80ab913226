"""A receipt's attribution checked from public artefacts only: `verify receipt` (from the node
home and over HTTP), `audit --attribution` catching an operator who signs other weights than
the artefacts give, and the bad inputs (an unknown receipt, an artefact that is not the one
on chain, an index built with other parameters) — with nothing written by either command."""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from openledger.app import create_app
from openledger.cli.main import main
from openledger.factory.runner import run_job
from openledger.ledger.verification.proofs import LocalSource, audit_attribution
from openledger.ledger.verification.remote_source import RemoteSource
from openledger.ledger.verification.verify import verify_receipt
from openledger.node import Node
from openledger.units import OPEN
from tests.cli.test_train import cli_world  # noqa: F401
from tests.conftest import World, operator_headers
from tests.ledger.settlement.test_epochs import fast_forward
from tests.market import deposit, make_operator

pytestmark = pytest.mark.anvil

TRAIN = {
    "epochs": 30,
    "batch_size": 4,
    "max_seq_len": 64,
    "rank": 8,
    "alpha": 16,
    "lr": 1e-2,
    "target_modules": "all-linear",
    "eval_split": 0.2,
    "checkpoint_every": 500,
    "seed": 0,
}


def _word(rng: random.Random) -> str:
    return "".join(rng.choice("bcdfghklmnprstvz") + rng.choice("aeiou") for _ in range(3))


def _contribute(world: World, who: str, name: str, topic: str, seed: int) -> list[dict]:
    rng = random.Random(seed)
    rows = [
        {
            "prompt": f"What is the {topic} of {_word(rng).title()}?",
            "completion": f"The {topic} is {_word(rng).title()} {_word(rng)}.",
        }
        for _ in range(12)
    ]
    acc = world.node.accounts
    c = world.node.contributions.contribute(
        world.datanet,
        [world.write(name, "\n".join(map(json.dumps, rows)) + "\n")],
        stake=10 * OPEN,
        signer=acc.signer(who),
    )
    for v in ("bob", "carol"):
        world.node.reviews.review(c.contribution_id, signer=acc.signer(v), approve=True)
    return rows


def _published(world: World, chain: Node, base: Path) -> tuple[Node, list[dict]]:
    node = world.node
    make_operator(chain, node)
    rows = _contribute(world, "alice", "capitals.jsonl", "capital", 1)
    rows += _contribute(world, "erin", "rivers.jsonl", "river", 2)
    node.snapshots.snapshot(world.datanet, signer=node.accounts.signer("dave"))
    job = node.jobs.submit_train(f"{world.datanet}@1", str(base), TRAIN)
    run_job(node.jobs, node.snapshots, job["id"], progress=False)
    node.models.publish(
        job["id"],
        name="facts-lora",
        price_in=OPEN // 1000,
        price_out=OPEN // 1000,
        signer=node.accounts.signer("dave"),
    )
    assert node.models.get("facts-lora")["attribution_policy"] == {"provenance": 1.0}
    node.attribution.build("facts-lora", progress=False)
    node.attribution.register("facts-lora", node.accounts.signer("dave"))
    deposit(node, "grace", 20 * OPEN)
    return node, rows


def _pay(node: Node, rows: list[dict], n: int) -> list[str]:
    grace = node.accounts.address("grace")
    out = []
    for r in rows[:n]:
        done = node.paid.complete(grace, "facts-lora", r["prompt"], max_tokens=12)
        assert done.attribution is not None and done.attribution.query_hash
        out.append(node.ledger.public_id(done.receipt.seq))
    return out


def _home_state(node: Node) -> tuple[list[tuple[str, int]], dict[str, int]]:
    from sqlalchemy import func, select

    from openledger.store.ledger_tables import ReceiptQueryRow, ReceiptRow

    home = node.settings.home
    files = sorted(
        (str(p.relative_to(home)), p.stat().st_size)
        for p in home.rglob("*")
        if p.is_file() and ".db" not in p.name and "logs" not in p.parts
    )
    with node.db.session() as s:
        rows = {
            t.__tablename__: s.scalar(select(func.count()).select_from(t))
            for t in (ReceiptRow, ReceiptQueryRow)
        }
    return files, rows


def test_receipts_verify_from_public_artefacts_and_a_lying_operator_is_caught(
    cli_world: World,  # noqa: F811 - the fixture imported above
    chain: Node,
    tiny_base_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    node, rows = _published(cli_world, chain, tiny_base_dir)
    receipts = _pay(node, rows, 3)
    assert node.epochs.close()["status"] == "settled"

    before = _home_state(node)
    v = verify_receipt(LocalSource(node), receipts[0])
    assert v.ok, [c for c in v.checks if not c.ok]
    assert {c.name for c in v.checks} >= {
        "receipt",
        "adapter",
        "card",
        "snapshot",
        "examples",
        "index",
        "query",
        "weights",
    }
    assert v.weights and all(a == b for a, b in v.weights.values())
    assert main(["verify", "receipt", receipts[1], "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] and doc["mismatches"] == []
    assert main(["audit", "--epoch", "1", "--attribution"]) == 0
    assert "every attribution recomputes" in capsys.readouterr().out

    # over HTTP: the payer's proof carries the tokens; someone holding only the id gets the
    # artefacts but cannot recompute the weights
    app = create_app(node)
    with TestClient(app, headers=operator_headers(node)) as client:
        remote = RemoteSource("http://node", token=None, rpc_url=node.settings.rpc_url)
        remote.client = client
        assert verify_receipt(remote, receipts[2]).ok
    with TestClient(app) as anonymous:
        proof = anonymous.get(f"/receipts/{receipts[2]}/attribution-proof").json()
        assert proof["query"] is None and proof["files"]["adapter"]
        remote = RemoteSource("http://node", token=None, rpc_url=node.settings.rpc_url)
        remote.client = anonymous
        v = verify_receipt(remote, receipts[2])
        assert not v.ok and [c.name for c in v.checks if not c.ok] == ["query"]
        assert anonymous.get("/models/facts-lora/files/../secret").status_code == 404
        assert anonymous.get("/models/facts-lora/base/../../etc/passwd").status_code == 404
    assert _home_state(node) == before  # verify and audit write nothing

    # an operator that signs other weights than the artefacts give (before signing)
    real = node.attribution.attribute_ids

    def lying(*args, **kwargs):
        a = real(*args, **kwargs)
        top = a.shares[0]
        return dataclasses.replace(
            a, shares=(dataclasses.replace(top, weight=top.weight * 0.5), *a.shares[1:])
        )

    with monkeypatch.context() as patched:
        patched.setattr(node.attribution, "attribute_ids", lying)
        lied = _pay(node, rows, 1)[0]
    fast_forward(node)  # past epoch 1's activation delay
    assert node.epochs.close()["status"] == "settled"
    assert node.auditor.audit(2).ok  # the signature chain is intact: only the weights lie
    report = audit_attribution(node, 2)
    assert not report["ok"] and report["failed"][0]["receipt"] == lied
    assert report["failed"][0]["checks"][0]["name"] == "weights"
    assert main(["audit", "--epoch", "2", "--attribution"]) != 0
    err = capsys.readouterr().err
    assert lied in err and "ppb" in err and "Traceback" not in err
    v = verify_receipt(LocalSource(node), lied)
    (c, claimed, recomputed), *_ = v.mismatches
    assert claimed * 2 == pytest.approx(recomputed, abs=2)

    # bad input: an unknown receipt, an artefact not the one on chain, another index
    assert main(["verify", "receipt", "rc_AAAAAAAAAAAAAAAAAAAAAA"]) != 0
    assert "Traceback" not in capsys.readouterr().err
    card = Path(node.models.get("facts-lora")["adapter_dir"]) / "openledger-card.json"
    original = card.read_text()
    card.write_text(original.replace('"eval_split": 0.2', '"eval_split": 0.3'))
    v = verify_receipt(LocalSource(node), receipts[0])
    assert [c.name for c in v.checks if not c.ok] == ["card"]
    assert "ModelRegistry" in next(c.detail for c in v.checks if c.name == "card")
    card.write_text(original)
    from openledger.attribution.provenance import ProvenanceParams, build
    from openledger.attribution.snapshot_indexes import tokenizer_id
    from openledger.factory.base import load_tokenizer

    folder = node.attribution.index_dir("facts-lora", "provenance")
    meta = json.loads((folder / "meta.json").read_text())
    tok = load_tokenizer(str(tiny_base_dir))
    examples = node.attribution.provenance_index("facts-lora")[1].meta["records"]
    assert examples
    from openledger.attribution.gradient.for_model import training_examples

    train = training_examples(node.models.get("facts-lora"), node.jobs, node.snapshots, tok)
    build(
        train,
        folder,
        vocab_size=len(tok),
        tokenizer_id=tokenizer_id(tok),
        identity=meta["identity"],
        params=ProvenanceParams(max_docs=3),
    )
    assert main(["verify", "receipt", receipts[0]]) != 0
    err = capsys.readouterr().err
    assert "index" in err and "other parameters" in err
