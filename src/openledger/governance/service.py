"""Governance over the chain: propose, vote, queue, execute, delegate, hand over, grants.

Every precondition a person can get wrong (an unknown key, an out-of-range value, no
delegated votes, voting outside the period, queueing a proposal that did not pass,
executing before the delay) is checked here first and refused with what to do, before a
transaction is sent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3

from openledger.chain import bindings as b
from openledger.chain.calls import Plan, build, resumable
from openledger.chain.deploy import Contracts
from openledger.errors import (
    ConflictError,
    ContractNotDeployedError,
    NotFoundError,
    ValidationError,
)
from openledger.governance.devnet import advance_devnet_clock
from openledger.governance.keys import FEE_SPLIT_KEYS, KEYS, Change, plan_changes, show_value
from openledger.units import fmt_open

GRANT_TIERS = b.GRANT_TIERS
GRANT_STATUS = b.GRANT_STATUS
STATES = b.PROPOSAL_STATES

__all__ = ["GovernanceService", "advance_devnet_clock"]


def _tx(result: Any) -> str:
    return str(result.tx_hash)


class GovernanceService:
    """Thin over the Governor, Timelock and Grants bindings; returns JSON-ready dicts."""

    def __init__(
        self, contracts: Callable[[], Contracts], on_executed: Callable[[], None] | None = None
    ) -> None:
        self._contracts = contracts
        # called after this node executed a proposal, so that cached parameters are re-read
        # before the very next request (other nodes see the change through the event sync)
        self._on_executed = on_executed or (lambda: None)

    # -- plumbing ---------------------------------------------------------------------------
    def _c(self) -> Contracts:
        c = self._contracts()
        if c.governor is None or c.timelock is None or c.grants is None:
            raise ContractNotDeployedError(
                "This deployment has no Governor, Timelock and Grants.",
                field="addresses",
                fix="run `openledger gov handover --as operator` to deploy them and hand the "
                "protocol to governance.",
            )
        return c

    def _now(self) -> int:
        return self._c().client.timestamp()

    def _binding(self, name: str) -> b._Binding:
        c = self._c()
        return {
            "ProtocolParams": c.params,
            "Governor": c.governor,
            "Timelock": c.timelock,
            "Grants": c.grants,
            "OpenToken": c.token,
        }[name]

    def _encode(self, change: Change) -> tuple[str, bytes]:
        binding = self._binding(change.contract)
        data = binding.contract.encode_abi(change.fn, args=list(change.args))
        return binding.address, bytes.fromhex(data.removeprefix("0x"))

    def settings(self) -> dict[str, Any]:
        """The governance settings and every governable key's current value."""
        c = self._c()
        p = c.params.snapshot()
        gov = c.governor
        values: dict[str, Any] = {
            k: getattr(p, k)
            for k in (*FEE_SPLIT_KEYS,)
            + tuple(k for k in KEYS if KEYS[k].contract == "ProtocolParams" and hasattr(p, k))
        }
        for k in ("voting_delay", "voting_period", "proposal_threshold", "quorum_bps"):
            values[k] = gov.setting(k)
        values["guardian"] = gov.guardian()
        values["timelock_delay"] = c.timelock.min_delay()
        values["grants_reference_price"] = c.grants.reference_price()
        values["grants_committee"] = c.grants.committee()
        return {
            "governor": gov.address,
            "timelock": c.timelock.address,
            "grants": c.grants.address,
            "treasury": p.treasury,
            "treasury_balance": str(c.token.balance_of(p.treasury)),
            "params_owner": c.params.owner(),
            "handed_over": c.params.owner() == c.timelock.address,
            "keys": {
                k: {"value": str(v), "shown": show_value(KEYS[k], v), "help": KEYS[k].help}
                for k, v in values.items()
            },
        }

    # -- proposals ----------------------------------------------------------------------------
    def plan(self, sets: dict[str, str]) -> list[Change]:
        """Validate ``KEY=VALUE`` changes against the table of keys (nothing is sent)."""
        params = self._c().params
        return plan_changes(sets, lambda: {
            **{k: params.get(k) for k in FEE_SPLIT_KEYS},
            "compute_share_bps": params.snapshot().compute_share_bps,
        })  # fmt: skip

    def _check_can_propose(self, proposer: str) -> None:
        c = self._c()
        threshold = c.governor.setting("proposal_threshold")
        votes = c.token.get_past_votes(proposer, self._now() - 1)
        if votes < threshold:
            raise ValidationError(
                f"{proposer} has {fmt_open(votes)} OPEN of delegated votes; proposing needs "
                f"{fmt_open(threshold)} (proposal_threshold).",
                field="--as",
                value=proposer,
                fix="delegate enough OPEN to this account first (`openledger delegate ADDRESS "
                "--as HOLDER`; votes count from the next second).",
            )

    def propose(self, signer: LocalAccount, sets: dict[str, str], description: str) -> dict:
        """Propose the parameter changes in ``sets`` (validated before sending)."""
        return self.plan_propose(signer.address, sets, description).run(signer)

    def plan_propose(self, proposer: str, sets: dict[str, str], description: str) -> Plan:
        changes = self.plan(sets)
        summary = "; ".join(ch.summary for ch in changes)
        return self._propose(proposer, changes, description or f"set {summary}")

    def _propose(self, proposer: str, changes: list[Change], description: str) -> Plan:
        if len(description) > 512:
            raise ValidationError(
                f"The description has {len(description)} characters; at most 512 fit.",
                field="--description",
                value=len(description),
                fix="shorten it.",
            )
        self._check_can_propose(proposer)
        calls = [self._encode(ch) for ch in changes]
        gov = self._c().governor
        call = build(gov, "propose", [Web3.to_checksum_address(t) for t, _ in calls],
                     [0] * len(calls), [d for _, d in calls], description)  # fmt: skip

        finish, resume = resumable("governance.finish_propose", self.finish_propose, {})
        return Plan(gov.client, proposer, [call], finish, what=f"propose: {description}",
                    resume=resume)  # fmt: skip

    def finish_propose(self, _args: dict[str, Any], _payload: bytes | None, results: list[Any],
                       _sig: str | None) -> dict:  # fmt: skip
        pid = int(self._c().governor.events(results[-1], "ProposalCreated")[0]["proposal_id"])
        return {**self.show(pid), "tx_hash": _tx(results[-1])}

    def _proposal(self, pid: int) -> b.Proposal:
        gov = self._c().governor
        if pid < 1 or pid > gov.proposal_count():
            raise NotFoundError(
                f"No proposal {pid}.",
                field="id",
                value=pid,
                fix="list them with `openledger gov list`.",
            )
        return gov.proposal(pid)

    def _describe_call(self, target: str, data: bytes) -> str:
        c = self._c()
        for binding in c.all():
            if binding.address == Web3.to_checksum_address(target):
                try:
                    fn, args = binding.contract.decode_function_input(data)
                except ValueError:
                    break
                shown = ", ".join(str(v) for v in args.values())
                return f"{binding.name}.{fn.fn_name}({shown})"
        return f"{target} call 0x{data.hex()[:16]}…"

    def show(self, pid: int) -> dict[str, Any]:
        """One proposal: state, tallies, quorum, times and its calls in words."""
        p = self._proposal(pid)
        c = self._c()
        now = self._now()
        # the supply is constant (OpenToken mints once), so the quorum is known in advance
        quorum = c.token.total_supply() * p.quorum_bps // 10_000
        return {
            "id": pid,
            "proposer": p.proposer,
            "state": STATES[p.state],
            "description": p.description,
            "snapshot": p.snapshot,
            "deadline": p.deadline,
            "eta": p.eta or None,
            "quorum_bps": p.quorum_bps,
            "quorum": str(quorum),
            "votes": {
                "for": str(p.for_votes),
                "against": str(p.against_votes),
                "abstain": str(p.abstain_votes),
            },
            "calls": [
                self._describe_call(t, d) for t, d in zip(p.targets, p.calldatas, strict=True)
            ],
            "now": now,
        }

    def list(self) -> list[dict[str, Any]]:
        gov = self._c().governor
        return [self.show(pid) for pid in range(gov.proposal_count(), 0, -1)]

    def vote(self, signer: LocalAccount, pid: int, support: str) -> dict:
        """Vote ``for``, ``against`` or ``abstain`` with the votes held at the snapshot."""
        return self.plan_vote(signer.address, pid, support).run(signer)

    def plan_vote(self, voter: str, pid: int, support: str) -> Plan:
        if support not in b.VOTE_SUPPORT:
            raise ValidationError(
                f"{support!r} is not a vote.",
                field="support",
                value=support,
                fix="vote for, against or abstain.",
            )
        p = self._proposal(pid)
        c = self._c()
        now = self._now()
        state = STATES[p.state]
        if state == "pending":
            raise ConflictError(
                f"Voting on proposal {pid} opens after its snapshot at {p.snapshot} "
                f"({p.snapshot - now + 1} s from now).",
                field="id",
                value=pid,
                fix="vote once the voting period has started.",
            )
        if state != "active":
            raise ConflictError(
                f"Proposal {pid} is {state}: its voting period ended at {p.deadline}.",
                field="id",
                value=pid,
                fix="votes are taken only between snapshot and deadline.",
            )
        if c.governor.has_voted(pid, voter):
            raise ConflictError(
                f"{voter} already voted on proposal {pid}.",
                field="--as",
                value=voter,
                fix="each account votes once.",
            )
        weight = c.token.get_past_votes(voter, p.snapshot)
        if weight == 0:
            raise ValidationError(
                f"{voter} had no delegated votes at proposal {pid}'s snapshot ({p.snapshot}).",
                field="--as",
                value=voter,
                fix="votes count only if delegated before the snapshot; delegate now "
                "(`openledger delegate ADDRESS --as ACCOUNT`) to vote on later proposals.",
            )
        call = build(c.governor, "castVote", pid, b.VOTE_SUPPORT[support])

        finish, resume = resumable("governance.finish_vote", self.finish_vote,
                                   {"pid": pid, "support": support, "weight": weight})  # fmt: skip
        return Plan(c.client, voter, [call], finish, what=f"vote {support} on proposal {pid}",
                    resume=resume)  # fmt: skip

    def finish_vote(self, args: dict[str, Any], _payload: bytes | None, results: list[Any],
                    _sig: str | None) -> dict:  # fmt: skip
        return {**self.show(args["pid"]), "voted": args["support"],
                "weight": str(args["weight"]), "tx_hash": _tx(results[-1])}  # fmt: skip

    def queue(self, signer: LocalAccount, pid: int) -> dict:
        return self.plan_queue(signer.address, pid).run(signer)

    def plan_queue(self, sender: str, pid: int) -> Plan:
        p = self._proposal(pid)
        state = STATES[p.state]
        if state != "succeeded":
            doc = self.show(pid)
            raise ConflictError(
                f"Proposal {pid} is {state}, not succeeded (for {doc['votes']['for']}, against "
                f"{doc['votes']['against']}, abstain {doc['votes']['abstain']}, quorum "
                f"{doc['quorum']}).",
                field="id",
                value=pid,
                fix="only a proposal whose vote ended with quorum and more for than against "
                "can be queued.",
            )
        return self._plan_simple(sender, "queue", pid)

    def execute(self, signer: LocalAccount, pid: int) -> dict:
        return self.plan_execute(signer.address, pid).run(signer)

    def plan_execute(self, sender: str, pid: int) -> Plan:
        p = self._proposal(pid)
        state = STATES[p.state]
        if state != "queued":
            raise ConflictError(
                f"Proposal {pid} is {state}, not queued.",
                field="id",
                value=pid,
                fix="queue it first (`openledger gov queue ID`).",
            )
        now = self._now()
        if now < p.eta:
            raise ConflictError(
                f"Proposal {pid} can be executed from {p.eta} ({p.eta - now} s from now).",
                field="id",
                value=pid,
                fix="wait for the Timelock's delay to pass.",
            )
        return self._plan_simple(sender, "execute", pid)

    def _plan_simple(self, sender: str, fn: str, pid: int) -> Plan:
        gov = self._c().governor

        finish, resume = resumable("governance.finish_simple", self.finish_simple,
                                   {"fn": fn, "pid": pid})  # fmt: skip
        return Plan(gov.client, sender, [build(gov, fn, pid)], finish,
                    what=f"{fn} proposal {pid}", resume=resume)  # fmt: skip

    def finish_simple(self, args: dict[str, Any], _payload: bytes | None, results: list[Any],
                      _sig: str | None) -> dict:  # fmt: skip
        if args["fn"] == "execute":
            self._on_executed()
        return {**self.show(args["pid"]), "tx_hash": _tx(results[-1])}

    def finish_proposal(self, args: dict[str, Any], _payload: bytes | None,
                        results: list[Any], _sig: str | None) -> dict:  # fmt: skip
        """A proposal as it is after a wallet's call to it (cancel)."""
        return {**self.show(args["pid"]), "tx_hash": _tx(results[-1])}

    def finish_grant(self, args: dict[str, Any], _payload: bytes | None, results: list[Any],
                     _sig: str | None) -> dict:  # fmt: skip
        """A grant as it is after a wallet's call to it (release, cancel)."""
        return {**self.grant(args["gid"]), "tx_hash": _tx(results[-1])}

    def cancel(self, signer: LocalAccount, pid: int) -> dict:
        self._proposal(pid)
        result = self._c().governor.cancel(signer, pid)
        return {**self.show(pid), "tx_hash": _tx(result)}

    def delegate(self, signer: LocalAccount, delegatee: str) -> dict:
        return self.plan_delegate(signer.address, delegatee).run(signer)

    def plan_delegate(self, delegator: str, delegatee: str) -> Plan:
        c = self._contracts()
        to = Web3.to_checksum_address(delegatee)

        finish, resume = resumable("governance.finish_delegate", self.finish_delegate,
                                   {"delegator": delegator, "delegatee": to})  # fmt: skip
        return Plan(c.client, delegator, [build(c.token, "delegate", to)], finish,
                    what=f"delegate your votes to {to}", resume=resume)  # fmt: skip

    def finish_delegate(self, args: dict[str, Any], _payload: bytes | None, results: list[Any],
                        _sig: str | None) -> dict:  # fmt: skip
        token = self._contracts().token
        return {
            "delegator": args["delegator"],
            "delegatee": args["delegatee"],
            "balance": str(token.balance_of(args["delegator"])),
            "votes": str(token.get_votes(args["delegatee"])),
            "tx_hash": _tx(results[-1]),
        }

    # -- grants ----------------------------------------------------------------------------
    def _grants(self) -> b.Grants:
        return self._c().grants  # type: ignore[return-value]

    def tiers(self) -> list[dict[str, Any]]:
        g = self._grants()
        return [
            {"tier": i, "name": name, "min": str(lo), "max": str(hi)}
            for i, name in enumerate(GRANT_TIERS)
            for lo, hi in [g.tier_bounds(i)]
        ]

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

        finish, resume = resumable("governance.finish_apply", self.finish_apply, {})
        return Plan(g.client, applicant, [build(g, "apply", index, amount, milestones, uri)],
                    finish, what=f"apply for a {t} grant", resume=resume)  # fmt: skip

    def finish_apply(self, _args: dict[str, Any], _payload: bytes | None, results: list[Any],
                     _sig: str | None) -> dict:  # fmt: skip
        gid = int(self._grants().events(results[-1], "GrantApplied")[0]["grant_id"])
        return {**self.grant(gid), "tx_hash": _tx(results[-1])}

    def grant(self, gid: int) -> dict[str, Any]:
        g = self._grants()
        if gid < 1 or gid > g.grant_count():
            raise NotFoundError(
                f"No grant {gid}.",
                field="id",
                value=gid,
                fix="list them with `openledger grants list`.",
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
        c = self._c()
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
        return self._propose(proposer, changes, text)

    def _by_committee_or_proposal(self, signer: LocalAccount, gid: int, fn: str, text: str) -> dict:
        c = self._c()
        if c.grants.committee() == signer.address or c.grants.owner() == signer.address:
            result = (
                c.grants.release(signer, gid) if fn == "release" else c.grants.cancel(signer, gid)
            )
            return {**self.grant(gid), "tx_hash": _tx(result)}
        plan = self._propose(signer.address, [Change("Grants", fn, (gid,), text)], text)
        return {"proposal": plan.run(signer)}

    def release(self, signer: LocalAccount, gid: int) -> dict:
        """Release the next milestone: directly as the committee, else by a proposal."""
        g = self.grant(gid)
        if g["status"] != "approved":
            raise ConflictError(
                f"Grant {gid} is {g['status']}, not approved.",
                field="id",
                value=gid,
                fix="only an approved grant pays milestones.",
            )
        n = g["next_milestone"]
        return self._by_committee_or_proposal(
            signer,
            gid,
            "release",
            f"OpenCircle: release milestone {n + 1} of grant {gid} "
            f"({fmt_open(int(g['milestones'][n]))} OPEN)",
        )

    def cancel_grant(self, signer: LocalAccount, gid: int) -> dict:
        """Cancel: the applicant withdraws a pending application; the committee cancels
        directly; anyone else proposes it. Unreleased funds go back to the treasury."""
        g = self.grant(gid)
        if g["status"] not in ("pending", "approved"):
            raise ConflictError(
                f"Grant {gid} is {g['status']}.",
                field="id",
                value=gid,
                fix="only a pending or approved grant can be cancelled.",
            )
        if g["status"] == "pending" and g["applicant"] == signer.address:
            result = self._grants().cancel(signer, gid)
            return {**self.grant(gid), "tx_hash": _tx(result)}
        rest = int(g["amount"]) - int(g["released"])
        return self._by_committee_or_proposal(
            signer,
            gid,
            "cancel",
            f"OpenCircle: cancel grant {gid} ({fmt_open(rest)} OPEN back to the treasury)",
        )
