"""Governance over the chain: propose, vote, queue, execute, delegate.

OpenCircle grants are their own service (``grants``), which proposes through this one.

Every precondition a person can get wrong (an unknown key, an out-of-range value, no
delegated votes, voting outside the period, queueing a proposal that did not pass,
executing before the delay) is checked here first and refused with what to do, before a
transaction is sent.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3

from openledger.chain import bindings as b
from openledger.chain.calls import Plan, build, resumable
from openledger.chain.deploy import Contracts
from openledger.errors import (
    ConflictError,
    ContractNotDeployedError,
    ForbiddenError,
    NotFoundError,
    ValidationError,
)
from openledger.governance.grants import GrantsService
from openledger.governance.keys import FEE_SPLIT_KEYS, KEYS, Change, plan_changes, show_value
from openledger.units import fmt_open

STATES = b.PROPOSAL_STATES


def _tx(result: Any) -> str:
    return str(result.tx_hash)


class GovernanceService:
    """Thin over the Governor and Timelock bindings; returns JSON-ready dicts."""

    def __init__(
        self, contracts: Callable[[], Contracts], on_executed: Callable[[], None] | None = None
    ) -> None:
        self._contracts = contracts
        # called after this node executed a proposal, so that cached parameters are re-read
        # before the very next request (other nodes see the change through the event sync)
        self._on_executed = on_executed or (lambda: None)

    # -- plumbing ---------------------------------------------------------------------------
    def contracts(self) -> Contracts:
        """The deployment, which has a Governor, Timelock and Grants (or refused)."""
        c = self._contracts()
        if c.governor is None or c.timelock is None or c.grants is None:
            raise ContractNotDeployedError(
                "This deployment has no Governor, Timelock and Grants.",
                field="addresses",
                fix="the operator deploys them and hands the protocol to governance first.",
            )
        return c

    def _now(self) -> int:
        return self.contracts().client.timestamp()

    def _binding(self, name: str) -> b._Binding:
        c = self.contracts()
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
        c = self.contracts()
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
        params = self.contracts().params
        return plan_changes(
            sets,
            lambda: {
                **{k: params.get(k) for k in FEE_SPLIT_KEYS},
                "compute_share_bps": params.snapshot().compute_share_bps,
            },
        )

    def _check_can_propose(self, proposer: str) -> None:
        c = self.contracts()
        threshold = c.governor.setting("proposal_threshold")
        votes = c.token.get_past_votes(proposer, self._now() - 1)
        if votes < threshold:
            raise ValidationError(
                f"{proposer} has {fmt_open(votes)} OPEN of delegated votes; proposing needs "
                f"{fmt_open(threshold)} (proposal_threshold).",
                field="votes",
                value=fmt_open(votes),
                fix="delegate enough OPEN to this account first; votes count from the next second.",
            )

    def propose(self, signer: LocalAccount, sets: dict[str, str], description: str) -> dict:
        """Propose the parameter changes in ``sets`` (validated before sending)."""
        return self.plan_propose(signer.address, sets, description).run(signer)

    def plan_propose(self, proposer: str, sets: dict[str, str], description: str) -> Plan:
        changes = self.plan(sets)
        summary = "; ".join(ch.summary for ch in changes)
        return self.plan_proposal(proposer, changes, description or f"set {summary}")

    def plan_proposal(self, proposer: str, changes: list[Change], description: str) -> Plan:
        """A proposal of ``changes`` by ``proposer`` (who must hold the proposal threshold)."""
        if len(description) > 512:
            raise ValidationError(
                f"The description has {len(description)} characters; at most 512 fit.",
                field="description",
                value=len(description),
                fix="shorten it.",
            )
        self._check_can_propose(proposer)
        calls = [self._encode(ch) for ch in changes]
        gov = self.contracts().governor
        call = build(
            gov,
            "propose",
            [Web3.to_checksum_address(t) for t, _ in calls],
            [0] * len(calls),
            [d for _, d in calls],
            description,
        )

        finish, resume = resumable("governance.finish_propose", self.finish_propose, {})
        return Plan(
            gov.client, proposer, [call], finish, what=f"propose: {description}", resume=resume
        )

    def finish_propose(
        self, _args: dict[str, Any], _payload: bytes | None, results: list[Any], _sig: str | None
    ) -> dict:
        created = self.contracts().governor.events(results[-1], "ProposalCreated")
        pid = int(created[0]["proposal_id"])
        return {**self.show(pid), "tx_hash": _tx(results[-1])}

    def _proposal(self, pid: int) -> b.Proposal:
        gov = self.contracts().governor
        if pid < 1 or pid > gov.proposal_count():
            raise NotFoundError(
                f"No proposal {pid}.",
                field="id",
                value=pid,
                fix="pick one of the proposals listed.",
            )
        return gov.proposal(pid)

    def _describe_call(self, target: str, data: bytes) -> str:
        c = self.contracts()
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
        c = self.contracts()
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
        gov = self.contracts().governor
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
        c = self.contracts()
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
                field="account",
                value=voter,
                fix="each account votes once.",
            )
        weight = c.token.get_past_votes(voter, p.snapshot)
        if weight == 0:
            raise ValidationError(
                f"{voter} had no delegated votes at proposal {pid}'s snapshot ({p.snapshot}).",
                field="votes",
                value="0",
                fix="votes count only if delegated before the snapshot; delegate now to vote "
                "on later proposals.",
            )
        call = build(c.governor, "castVote", pid, b.VOTE_SUPPORT[support])

        finish, resume = resumable(
            "governance.finish_vote",
            self.finish_vote,
            {"pid": pid, "support": support, "weight": weight},
        )
        return Plan(
            c.client, voter, [call], finish, what=f"vote {support} on proposal {pid}", resume=resume
        )

    def finish_vote(
        self, args: dict[str, Any], _payload: bytes | None, results: list[Any], _sig: str | None
    ) -> dict:
        return {
            **self.show(args["pid"]),
            "voted": args["support"],
            "weight": str(args["weight"]),
            "tx_hash": _tx(results[-1]),
        }

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
                fix="queue it first.",
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
        gov = self.contracts().governor

        finish, resume = resumable(
            "governance.finish_simple", self.finish_simple, {"fn": fn, "pid": pid}
        )
        return Plan(
            gov.client,
            sender,
            [build(gov, fn, pid)],
            finish,
            what=f"{fn} proposal {pid}",
            resume=resume,
        )

    def finish_simple(
        self, args: dict[str, Any], _payload: bytes | None, results: list[Any], _sig: str | None
    ) -> dict:
        if args["fn"] == "execute":
            self._on_executed()
        return {**self.show(args["pid"]), "tx_hash": _tx(results[-1])}

    def finish_proposal(
        self, args: dict[str, Any], _payload: bytes | None, results: list[Any], _sig: str | None
    ) -> dict:
        """A proposal as it is after a wallet's call to it (cancel)."""
        return {**self.show(args["pid"]), "tx_hash": _tx(results[-1])}

    def cancel(self, signer: LocalAccount, pid: int) -> dict:
        return self.plan_cancel(signer.address, pid).run(signer)

    def plan_cancel(self, sender: str, pid: int) -> Plan:
        """``cancel(pid)``: by its proposer while it is pending, by the guardian at any time
        before it is executed (a queued proposal is cancelled in the Timelock too)."""
        p = self._proposal(pid)
        gov = self.contracts().governor
        state = STATES[p.state]
        sender = Web3.to_checksum_address(sender)
        if state in ("canceled", "executed"):
            raise ConflictError(
                f"Proposal {pid} is {state} already.",
                field="id",
                value=pid,
                fix="only a proposal not yet executed or cancelled can be cancelled.",
            )
        if not (sender == p.proposer and state == "pending"):
            guardian = gov.guardian()
            if sender != guardian or int(guardian, 16) == 0:
                who = "its proposer while it is pending, or the guardian"
                raise ForbiddenError(
                    f"{sender} cannot cancel proposal {pid} ({state}): only {who} can.",
                    field="account",
                    value=sender,
                    fix="vote against it instead, or ask the guardian.",
                )

        finish, resume = resumable("governance.finish_proposal", self.finish_proposal, {"pid": pid})
        return Plan(
            gov.client,
            sender,
            [build(gov, "cancel", pid)],
            finish,
            what=f"cancel proposal {pid}",
            resume=resume,
        )

    def delegate(self, signer: LocalAccount, delegatee: str) -> dict:
        return self.plan_delegate(signer.address, delegatee).run(signer)

    def plan_delegate(self, delegator: str, delegatee: str) -> Plan:
        c = self._contracts()
        to = Web3.to_checksum_address(delegatee)

        finish, resume = resumable(
            "governance.finish_delegate",
            self.finish_delegate,
            {"delegator": delegator, "delegatee": to},
        )
        return Plan(
            c.client,
            delegator,
            [build(c.token, "delegate", to)],
            finish,
            what=f"delegate your votes to {to}",
            resume=resume,
        )

    def finish_delegate(
        self, args: dict[str, Any], _payload: bytes | None, results: list[Any], _sig: str | None
    ) -> dict:
        token = self._contracts().token
        return {
            "delegator": args["delegator"],
            "delegatee": args["delegatee"],
            "balance": str(token.balance_of(args["delegator"])),
            "votes": str(token.get_votes(args["delegatee"])),
            "tx_hash": _tx(results[-1]),
        }

    # -- grants: done by GrantsService (node.grants); these four for the callers that reach
    # grants through governance (the on-chain tests)
    @cached_property
    def _grants(self) -> GrantsService:
        return GrantsService(self)

    def grant(self, gid: int) -> dict[str, Any]:
        return self._grants.grant(gid)

    def apply(
        self, signer: LocalAccount, tier: str, amount: int, milestones: list[int], uri: str
    ) -> dict:
        return self._grants.apply(signer, tier, amount, milestones, uri)

    def propose_approval(self, signer: LocalAccount, gid: int, description: str = "") -> dict:
        return self._grants.propose_approval(signer, gid, description)

    def release(self, signer: LocalAccount, gid: int) -> dict:
        return self._grants.release(signer, gid)
