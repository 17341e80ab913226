"""deposit / withdraw / credit / epoch / rewards / claim / audit / receipts through the CLI."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import update

from openledger.cli.main import main
from openledger.ledger.receipts.canonical import check_served
from openledger.store.ledger_tables import ReceiptRow
from tests.conftest import PASSWORD
from tests.ledger.settlement.test_epochs import fast_forward, paid
from tests.market import Market

pytestmark = pytest.mark.anvil


@pytest.fixture
def cli(market: Market, monkeypatch: pytest.MonkeyPatch) -> Market:
    s = market.node.settings
    for key, value in {
        "OPENLEDGER_HOME": str(s.home),
        "OPENLEDGER_DB_URL": s.db_url,
        "OPENLEDGER_CHAIN_PORT": str(s.chain_port),
        "OPENLEDGER_PASSWORD": PASSWORD,
        "OPENLEDGER_ADDRESSES": str(s.addresses_path),
    }.items():
        monkeypatch.setenv(key, value)
    return market


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_deposit_and_withdraw_rules(cli: Market, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["deposit", "0.5", "--as", "heidi"]) == 1
    err = capsys.readouterr().err
    assert "below the minimum of 1 OPEN" in err and "ProtocolParams.min_deposit" in err
    assert main(["deposit", "2000000", "--as", "heidi"]) != 0
    assert "less than the 2000000 OPEN" in capsys.readouterr().err
    doc = _json(capsys, ["deposit", "5", "--as", "heidi"])
    assert doc["available"] == str(5 * 10**18)  # credited at once: the event was synced
    doc = _json(capsys, ["withdraw", "2", "--as", "heidi"])
    assert doc["pending_withdrawal"] == str(2 * 10**18) and doc["available"] == str(3 * 10**18)
    assert main(["withdraw", "--as", "heidi"]) != 0
    err = capsys.readouterr().err
    assert "is in its delay until" in err and "escrow_withdraw_delay" in err
    fast_forward(cli.node, cli.node.params.current().escrow_withdraw_delay + 1)
    doc = _json(capsys, ["withdraw", "--as", "heidi"])
    assert doc["paid"] == str(2 * 10**18) and doc["withdrawn"] == str(2 * 10**18)
    assert _json(capsys, ["credit", "heidi"])["available"] == str(3 * 10**18)


def test_settle_reward_claim_audit(cli: Market, capsys: pytest.CaptureFixture[str]) -> None:
    paid(cli, 3)
    assert main(["receipts", "list"]) == 0 and "grace" in capsys.readouterr().out
    shown = _json(capsys, ["receipts", "show", "2"])
    assert shown["seq"] == 2 and shown == cli.node.ledger.receipt(2)
    assert check_served(shown, cli.node.accounts.operator_address()) == ""
    assert main(["epoch", "close"]) == 0
    assert "epoch 1 settled: 3 receipts" in capsys.readouterr().out
    assert main(["epoch", "close"]) == 0
    assert "nothing to settle" in capsys.readouterr().out
    assert main(["epoch", "list"]) == 0 and "settled" in capsys.readouterr().out
    fast_forward(cli.node)
    rewards = _json(capsys, ["rewards", "erin"])
    assert rewards["claim"]["claimable"] == rewards["earned"] != "0"
    assert main(["claim", "--as", "erin"]) == 0
    assert "erin claimed" in capsys.readouterr().out
    assert main(["claim", "--as", "erin"]) == 0
    assert "nothing to claim" in capsys.readouterr().out
    assert main(["audit", "--epoch", "1"]) == 0
    assert "every receipt, signature and the root match" in capsys.readouterr().out
    with cli.node.db.session() as s:
        s.execute(update(ReceiptRow).where(ReceiptRow.seq == 2).values(prev_hash="0x00"))
        body = s.get(ReceiptRow, 3).body.replace('"completion":12', '"completion":99')
        s.execute(update(ReceiptRow).where(ReceiptRow.seq == 3).values(body=body))
    assert main(["audit", "--epoch", "1"]) == 1
    captured = capsys.readouterr()
    assert "receipt 3: its body hashes to" in captured.out + captured.err
    assert "the audit of epoch 1 failed" in captured.err
