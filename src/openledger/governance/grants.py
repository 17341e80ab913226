"""OpenCircle grants: apply, read, propose approval, release milestones, cancel.

An application is checked against its tier's bounds and its milestones before anything is
sent. Approval is always a governance proposal (the Timelock approves Grants for the amount
and Grants pulls it from the treasury when the proposal is executed); a release or a
cancellation is sent directly by the committee (or the owner) and proposed by anyone else,
through ``GovernanceService.plan_proposal``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from eth_account.signers.local import LocalAccount

from openledger.chain import bindings as b
from openledger.chain.addr import to_checksum_address
from openledger.chain.calls import Plan, build, resumable
from openledger.errors import ConflictError, NotFoundError, ValidationError
from openledger.governance.keys import Change
from openledger.units import fmt_open

if TYPE_CHECKING:
    from openledger.governance.service import GovernanceService

GRANT_TIERS = b.GRANT_TIERS
GRANT_STATUS = b.GRANT_STATUS


class GrantsService:
    """Thin over the Grants binding; proposals go through ``governance``."""

    def __init__(self, governance: GovernanceService) -> None:
        self.governance = governance

    def _grants(self) -> b.Grants:
        return self.governance.contracts().grants  # type: ignore[return-value]

    def tiers(self) -> list[dict[str, Any]]:
        g = self._grants()
        return [
            {"tier": i, "name": name, "min": str(lo), "max": str(hi)}
            for i, name in enumerate(GRANT_TIERS)
            for lo, hi in [g.tier_bounds(i)]
        ]

    def grant(self, gid: int) -> dict[str, Any]:
        g = self._grants()
        if gid < 1 or gid > g.grant_count():
            raise NotFoundError(
                f"No grant {gid}.",
                field="id",
                value=gid,
                fix="pick one of the grants listed.",
            )
        x = g.grant(gid)
        return {
            "id": gid,
            "applicant": x.applicant,
            "tier": GRANT_TIERS[x.tier],
            "amount": str(x.amount),
            "released": str(x.released),
            "next_milestone": x.next_milestone,
            "status": GRANT_STATUS[x.status],
            "milestones": [str(m) for m in x.milestones],
            "metadata_uri": x.metadata_uri,
            "applied_at": x.applied_at,
        }

    def grants(self) -> list[dict[str, Any]]:
        return [self.grant(i) for i in range(self._grants().grant_count(), 0, -1)]

    def apply(
        self, signer: LocalAccount, tier: str, amount: int, milestones: list[int], uri: str
    ) -> dict:
        """Apply for a grant; bounds and milestone sums are checked with the numbers."""
        return self.plan_apply(signer.address, tier, amount, milestones, uri).run(signer)

    def plan_apply(
        self, applicant: str, tier: str, amount: int, milestones: list[int], uri: str
    ) -> Plan:
        t = tier.lower()
        if t not in GRANT_TIERS:
            raise ValidationError(
                f"{tier!r} is not a grant tier.",
                field="tier",
                value=tier,
                fix=f"use one of: {', '.join(GRANT_TIERS)}.",
            )
        index = GRANT_TIERS.index(t)
        low, high = self._grants().tier_bounds(index)
        if not low <= amount <= high:
            raise ValidationError(
                f"{fmt_open(amount)} OPEN is outside the {t} tier's bounds "
                f"({fmt_open(low)} to {fmt_open(high)} OPEN).",
                field="amount",
                value=fmt_open(amount),
                fix="ask for an amount within the bounds, or apply for another tier.",
            )
        if not milestones or len(milestones) > 8 or any(m <= 0 for m in milestones):
            raise ValidationError(
                f"{len(milestones)} milestones given; 1 to 8 positive amounts are needed.",
                field="milestones",
                value=len(milestones),
                fix="list 1 to 8 amounts > 0.",
            )
        if sum(milestones) != amount:
            raise ValidationError(
                f"The milestones sum to {fmt_open(sum(milestones))} OPEN, the amount is "
                f"{fmt_open(amount)} OPEN.",
                field="milestones",
                value=fmt_open(sum(milestones)),
                fix="make them sum to the amount (difference "
                f"{fmt_open(abs(amount - sum(milestones)))} OPEN).",
            )
        if len(uri) > 256:
            raise ValidationError(
                "The metadata URI is longer than 256 characters.",
                field="uri",
                value=len(uri),
                fix="shorten it.",
            )
        g = self._grants()

        finish, resume = resumable("grants.finish_apply", self.finish_apply, {})
        return Plan(
            g.client,
            applicant,
            [build(g, "apply", index, amount, milestones, uri)],
            finish,
            what=f"apply for a {t} grant",
            resume=resume,
        )

    def finish_apply(
        self, _args: dict[str, Any], _payload: bytes | None, results: list[Any], _sig: str | None
    ) -> dict:
        gid = int(self._grants().events(results[-1], "GrantApplied")[0]["grant_id"])
        return {**self.grant(gid), "tx_hash": str(results[-1].tx_hash)}

    def finish_grant(
        self, args: dict[str, Any], _payload: bytes | None, results: list[Any], _sig: str | None
    ) -> dict:
        """A grant as it is after a wallet's call to it (release, cancel)."""
        return {**self.grant(args["gid"]), "tx_hash": str(results[-1].tx_hash)}

    def propose_approval(self, signer: LocalAccount, gid: int, description: str = "") -> dict:
        """Propose approving grant ``gid``: the Timelock approves Grants for the amount and
        Grants pulls it from the treasury when the proposal is executed."""
        return self.plan_propose_approval(signer.address, gid, description).run(signer)

    def plan_propose_approval(self, proposer: str, gid: int, description: str = "") -> Plan:
        g = self.grant(gid)
        if g["status"] != "pending":
            raise ConflictError(
                f"Grant {gid} is {g['status']}, not pending.",
                field="id",
                value=gid,
                fix="only a pending application can be approved.",
            )
        c = self.governance.contracts()
        treasury = c.params.snapshot().treasury
        holds = c.token.balance_of(treasury)
        if holds < int(g["amount"]):
            raise ConflictError(
                f"The treasury {treasury} holds {fmt_open(holds)} OPEN; grant {gid} needs "
                f"{fmt_open(int(g['amount']))}.",
                field="id",
                value=gid,
                fix="fund the treasury first.",
            )
        changes = [
            Change("OpenToken", "approve", (c.grants.address, int(g["amount"])), "allowance"),
            Change("Grants", "approve", (gid,), f"approve grant {gid}"),
        ]
        text = (
            description
            or f"OpenCircle: approve grant {gid} ({fmt_open(int(g['amount']))} OPEN, {g['tier']})"
        )
        return self.governance.plan_proposal(proposer, changes, text)

    def finish_proposal(
        self, args: dict[str, Any], payload: bytes | None, results: list[Any], sig: str | None
    ) -> dict:
        """A release or cancellation proposed through governance: the proposal created."""
        return {"proposal": self.governance.finish_propose(args, payload, results, sig)}

    def release(self, signer: LocalAccount, gid: int) -> dict:
        """Release the next milestone: directly as the committee, else by a proposal."""
        return self.plan_release(signer.address, gid).run(signer)

    def plan_release(self, sender: str, gid: int) -> Plan:
        """``release(gid)`` sent by the committee (or the owner); anyone else proposes it
        (the plan is then ``GovernanceService.plan_proposal``'s, answering ``{"proposal"}``)."""
        g = self.grant(gid)
        if g["status"] != "approved":
            raise ConflictError(
                f"Grant {gid} is {g['status']}, not approved.",
                field="id",
                value=gid,
                fix="only an approved grant pays milestones.",
            )
        n = g["next_milestone"]
        return self._plan_by_committee_or_proposal(
            sender,
            gid,
            "release",
            f"OpenCircle: release milestone {n + 1} of grant {gid} "
            f"({fmt_open(int(g['milestones'][n]))} OPEN)",
        )

    def cancel_grant(self, signer: LocalAccount, gid: int) -> dict:
        """Cancel: the applicant withdraws a pending application; the committee cancels
        directly; anyone else proposes it. Unreleased funds go back to the treasury."""
        return self.plan_cancel_grant(signer.address, gid).run(signer)

    def plan_cancel_grant(self, sender: str, gid: int) -> Plan:
        g = self.grant(gid)
        if g["status"] not in ("pending", "approved"):
            raise ConflictError(
                f"Grant {gid} is {g['status']}.",
                field="id",
                value=gid,
                fix="only a pending or approved grant can be cancelled.",
            )
        sender = to_checksum_address(sender)
        if g["status"] == "pending" and g["applicant"] == sender:
            return self._plan_direct(sender, gid, "cancel", f"withdraw your application {gid}")
        rest = int(g["amount"]) - int(g["released"])
        return self._plan_by_committee_or_proposal(
            sender,
            gid,
            "cancel",
            f"OpenCircle: cancel grant {gid} ({fmt_open(rest)} OPEN back to the treasury)",
        )

    def _plan_direct(self, sender: str, gid: int, fn: str, what: str) -> Plan:
        """``fn(gid)`` on Grants, sent by ``sender``; finished with the grant as it is after."""
        g = self._grants()
        finish, resume = resumable("grants.finish_grant", self.finish_grant, {"gid": gid})
        return Plan(g.client, sender, [build(g, fn, gid)], finish, what=what, resume=resume)

    def _plan_by_committee_or_proposal(self, sender: str, gid: int, fn: str, text: str) -> Plan:
        """``fn(gid)`` sent directly by the committee or the owner; a proposal of it by
        anyone else."""
        sender = to_checksum_address(sender)
        g = self._grants()
        if sender in (g.committee(), g.owner()):
            return self._plan_direct(sender, gid, fn, text.removeprefix("OpenCircle: "))
        changes = [Change("Grants", fn, (gid,), text)]
        plan = self.governance.plan_proposal(sender, changes, text)
        finish, resume = resumable("grants.finish_proposal", self.finish_proposal, {})
        return replace(plan, finish=finish, resume=resume)
