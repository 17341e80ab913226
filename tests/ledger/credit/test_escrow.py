"""The escrow's writes as plans: the checks refuse before any call is built, the calls are
the contract's, and the finish (the node's run, or a wallet's Resume) syncs and answers with
the credit."""

from __future__ import annotations

import pytest

from openledger.chain.calls import Plan
from openledger.cli.fields import cli_fix
from openledger.errors import ConflictError, ValidationError
from openledger.node import Node
from openledger.units import OPEN
from tests.ledger.settlement.test_epochs import fast_forward

pytestmark = pytest.mark.anvil


def _labels(plan: Plan) -> list[tuple[str, str]]:
    return [(c.contract, c.label) for c in plan.calls]


def _resumed(node: Node, plan: Plan, who: str) -> dict:
    """Send the plan's calls, then finish it as a wallet's report would: by its Resume."""
    signer = node.accounts.signer(who)
    results = [node.client.send_call(c, signer) for c in plan.calls]
    assert plan.resume is not None
    return node.finisher(plan.resume.kind)(plan.resume.args, plan.resume.payload, results, None)


def _nonce(node: Node, who: str) -> int:
    return node.client.w3.eth.get_transaction_count(node.accounts.address(who))


def test_plan_deposit(dnode: Node) -> None:
    escrow, heidi = dnode.escrow, dnode.accounts.address("heidi")
    before = _nonce(dnode, "heidi")
    with pytest.raises(ValidationError, match="below the minimum of 1 OPEN") as exc:
        escrow.plan_deposit(heidi, OPEN // 2)
    assert exc.value.field == "amount"
    with pytest.raises(ValidationError, match="less than the") as exc:
        escrow.plan_deposit(heidi, 10**9 * OPEN)
    assert exc.value.field == "amount"
    assert _nonce(dnode, "heidi") == before  # nothing was sent

    plan = escrow.plan_deposit(heidi.lower(), 5 * OPEN)
    assert plan.sender == heidi and plan.message is None
    assert _labels(plan) == [("OpenToken", "approve"), ("InferenceEscrow", "deposit")]
    assert plan.resume is not None and plan.resume.kind == "escrow.finish_deposit"
    assert plan.resume.args == {"account": heidi, "amount": 5 * OPEN}
    assert _nonce(dnode, "heidi") == before  # a plan sends nothing
    doc = _resumed(dnode, plan, "heidi")
    assert (doc["amount"], doc["available"]) == (str(5 * OPEN), str(5 * OPEN))  # synced
    assert doc["tx_hash"].startswith("0x")

    # an allowance that covers the amount: no approve
    c = dnode.contracts
    c.token.approve(dnode.accounts.signer("heidi"), c.escrow.address, 3 * OPEN)
    plan = escrow.plan_deposit(heidi, 3 * OPEN)
    assert _labels(plan) == [("InferenceEscrow", "deposit")]
    doc = escrow.deposit(dnode.accounts.signer("heidi"), 3 * OPEN)  # the node's key: plan.run
    assert doc["available"] == str(8 * OPEN) == str(c.escrow.balance_of(heidi))


def test_plan_request_withdrawal_and_withdraw(dnode: Node) -> None:
    escrow, heidi = dnode.escrow, dnode.accounts.address("heidi")
    signer = dnode.accounts.signer("heidi")
    with pytest.raises(ValidationError, match="has no withdrawal request") as exc:
        escrow.plan_withdraw(heidi)
    assert exc.value.field == "withdrawal" and "openledger" not in (exc.value.fix or "")
    assert "(`openledger withdraw AMOUNT --as ACCOUNT`)" in (cli_fix(exc.value) or "")  # the CLI's
    escrow.deposit(signer, 5 * OPEN)
    for wrong in (0, 6 * OPEN):
        with pytest.raises(ValidationError, match="OPEN in the escrow") as exc:
            escrow.plan_request_withdrawal(heidi, wrong)
        assert exc.value.field == "amount"

    plan = escrow.plan_request_withdrawal(heidi, 2 * OPEN)
    assert _labels(plan) == [("InferenceEscrow", "requestWithdrawal")]
    assert plan.resume is not None and plan.resume.kind == "escrow.finish_request_withdrawal"
    doc = _resumed(dnode, plan, "heidi")
    _, ready_at = dnode.contracts.escrow.pending_withdrawal(heidi)
    assert doc["ready_at"] == ready_at > 0
    assert (doc["pending_withdrawal"], doc["available"]) == (str(2 * OPEN), str(3 * OPEN))

    with pytest.raises(ConflictError, match="is in its delay until") as exc:
        escrow.plan_withdraw(heidi)
    assert exc.value.field == "withdrawal" and "openledger" not in (exc.value.fix or "")
    assert "(`openledger withdraw --as ACCOUNT`)" in (cli_fix(exc.value) or "")
    fast_forward(dnode, dnode.params.current().escrow_withdraw_delay + 1)
    plan = escrow.plan_withdraw(heidi)
    assert _labels(plan) == [("InferenceEscrow", "withdraw")]
    assert plan.resume is not None and plan.resume.kind == "escrow.finish_withdraw"
    assert plan.resume.args == {"account": heidi}
    doc = escrow.withdraw(signer)
    assert (doc["paid"], doc["withdrawn"]) == (str(2 * OPEN), str(2 * OPEN))
    assert dnode.contracts.escrow.balance_of(heidi) == 3 * OPEN
