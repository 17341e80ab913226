"""A proposal's cancellation and a grant's release and cancellation as plans: who sends what
(the proposer or the guardian; the committee directly, anyone else by a proposal), the checks
before any call, and the finish by the same Resume a wallet's report takes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from openledger.chain.calls import Plan
from openledger.chain.deploy import DEVNET_GOVERNANCE as CFG
from openledger.errors import ConflictError, ForbiddenError, NotFoundError
from openledger.governance.devnet import advance_devnet_clock, as_timelock
from openledger.node import Node
from openledger.units import OPEN

pytestmark = pytest.mark.anvil


@pytest.fixture
def gov(chain: Node) -> Iterator[Node]:
    chain.gov_handover("operator", fund=100_000 * OPEN)  # funds the treasury (the Timelock)
    yield chain


def _labels(plan: Plan) -> list[tuple[str, str]]:
    return [(c.contract, c.label) for c in plan.calls]


def _kind(plan: Plan) -> str:
    assert plan.resume is not None
    return plan.resume.kind


def _resumed(node: Node, plan: Plan, who: str) -> dict:
    """Send the plan's calls, then finish it as a wallet's report would: by its Resume."""
    signer = node.accounts.signer(who)
    results = [node.client.send_call(c, signer) for c in plan.calls]
    assert plan.resume is not None
    return node.finisher(plan.resume.kind)(plan.resume.args, plan.resume.payload, results, None)


def test_plan_cancel(gov: Node) -> None:
    service, c = gov.governance, gov.contracts
    op, erin = gov.accounts.signer("operator"), gov.accounts.signer("erin")
    with pytest.raises(NotFoundError, match="No proposal 1"):
        service.plan_cancel(op.address, 1)
    service.delegate(op, op.address)
    advance_devnet_clock(gov.client, 1)
    pid = service.propose(op, {"slash_bps": "20%"}, "milder")["id"]
    with pytest.raises(ForbiddenError, match="only its proposer while it is pending") as exc:
        service.plan_cancel(erin.address, pid)  # no guardian on the devnet
    assert exc.value.field == "account" and exc.value.value == erin.address

    plan = service.plan_cancel(op.address, pid)
    assert _labels(plan) == [("Governor", "cancel")]
    assert _kind(plan) == "governance.finish_proposal" and plan.resume.args == {"pid": pid}
    doc = _resumed(gov, plan, "operator")
    assert doc["state"] == "canceled" and doc["tx_hash"].startswith("0x")
    with pytest.raises(ConflictError, match="is canceled already"):
        service.plan_cancel(op.address, pid)

    # once voting is open only the guardian may cancel
    pid = service.propose(op, {"slash_bps": "20%"}, "milder again")["id"]
    advance_devnet_clock(gov.client, CFG.voting_delay + 1)
    with pytest.raises(ForbiddenError, match=r"\(active\)"):
        service.plan_cancel(op.address, pid)
    as_timelock(c, c.governor.contract.functions.setGuardian(erin.address))
    assert service.cancel(erin, pid)["state"] == "canceled"


def test_grant_release_and_cancel_plans(gov: Node) -> None:
    grants, c = gov.grants, gov.contracts
    op, erin, carol = (gov.accounts.signer(n) for n in ("operator", "erin", "carol"))
    gid = grants.apply(erin, "exploration", 30_000 * OPEN, [10_000 * OPEN, 20_000 * OPEN], "")["id"]
    with pytest.raises(ConflictError, match="not approved"):
        grants.plan_release(op.address, gid)
    with pytest.raises(NotFoundError) as exc:
        grants.plan_release(op.address, 99)
    assert "openledger" not in (exc.value.fix or "")

    # the applicant withdraws a pending application directly
    other = grants.apply(erin, "exploration", 30_000 * OPEN, [30_000 * OPEN], "")["id"]
    plan = grants.plan_cancel_grant(erin.address, other)
    assert _labels(plan) == [("Grants", "cancel")]
    assert _kind(plan) == "grants.finish_grant" and plan.resume.args == {"gid": other}
    assert _resumed(gov, plan, "erin")["status"] == "cancelled"
    with pytest.raises(ConflictError, match="is cancelled"):
        grants.plan_cancel_grant(erin.address, other)

    # approved as an executed proposal would (the Timelock approves Grants, then the grant)
    as_timelock(c, c.token.contract.functions.approve(c.grants.address, 30_000 * OPEN))
    as_timelock(c, c.grants.contract.functions.approve(gid))
    assert grants.grant(gid)["status"] == "approved"

    # erin is not the committee: her release is a proposal of it
    gov.governance.delegate(erin, erin.address)
    advance_devnet_clock(gov.client, 1)
    plan = grants.plan_release(erin.address, gid)
    assert _labels(plan) == [("Governor", "propose")]
    assert _kind(plan) == "grants.finish_proposal"
    out = _resumed(gov, plan, "erin")
    assert out["proposal"]["calls"] == [f"Grants.release({gid})"]
    assert out["proposal"]["proposer"] == erin.address
    assert grants.grant(gid)["released"] == "0"
    # the same for her cancellation of an approved grant
    plan = grants.plan_cancel_grant(erin.address, gid)
    assert _labels(plan) == [("Governor", "propose")]
    assert _kind(plan) == "grants.finish_proposal"

    # the committee releases and cancels directly
    as_timelock(c, c.grants.contract.functions.setCommittee(carol.address))
    plan = grants.plan_release(carol.address, gid)
    assert _labels(plan) == [("Grants", "release")]
    assert _kind(plan) == "grants.finish_grant"
    before = c.token.balance_of(erin.address)
    doc = grants.release(carol, gid)
    assert doc["released"] == str(10_000 * OPEN) and doc["next_milestone"] == 1
    assert c.token.balance_of(erin.address) == before + 10_000 * OPEN
    plan = grants.plan_cancel_grant(carol.address, gid)
    assert _labels(plan) == [("Grants", "cancel")]
    assert grants.cancel_grant(carol, gid)["status"] == "cancelled"
