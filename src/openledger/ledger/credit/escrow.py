"""Inference credit on chain: deposit into the InferenceEscrow, withdraw after the delay.

Each write is a plan (``chain.calls``): ``plan_<verb>`` checks what the contract would refuse
first (minimum deposit, token balance, withdrawal delay), so the user reads the rule and the
numbers instead of a bare revert, and builds the calls; ``finish_<verb>`` syncs the event
once they are mined, so the credit is usable at once, and answers with the credit. The node
runs a plan with a key it holds (``deposit``, ``request_withdrawal``, ``withdraw``) or a
wallet sends it (``auth.prepared``); both end in the same finish.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from eth_account.signers.local import LocalAccount

from openledger.chain.addr import to_checksum_address
from openledger.chain.calls import Plan, approval, build, resumable
from openledger.chain.deploy import Contracts
from openledger.chain.tx import TxResult
from openledger.errors import ConflictError, ValidationError
from openledger.ledger.pricing.params import ParamsCache
from openledger.units import fmt_open


def _when(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


class EscrowService:
    def __init__(
        self,
        contracts: Callable[[], Contracts],
        params: ParamsCache,
        sync: Callable[[], int],
        credit: Callable[[str], dict[str, Any]],
    ) -> None:
        self._contracts = contracts
        self.params = params
        self._sync = sync
        self._credit = credit

    # -- with a key the node holds ----------------------------------------------------------
    def deposit(self, signer: LocalAccount, amount: int) -> dict[str, Any]:
        return self.plan_deposit(signer.address, amount).run(signer)

    def request_withdrawal(self, signer: LocalAccount, amount: int) -> dict[str, Any]:
        return self.plan_request_withdrawal(signer.address, amount).run(signer)

    def withdraw(self, signer: LocalAccount) -> dict[str, Any]:
        return self.plan_withdraw(signer.address).run(signer)

    # -- plans ------------------------------------------------------------------------------
    def plan_deposit(self, account: str, amount: int) -> Plan:
        """``approve`` (when the allowance is short), then ``deposit(amount)``: refused before
        anything is sent below the minimum deposit or beyond the account's OPEN."""
        account = to_checksum_address(account)
        c = self._contracts()
        minimum = self.params.current().min_deposit
        if amount < max(minimum, 1):
            raise ValidationError(
                f"a deposit of {fmt_open(amount)} OPEN is below the minimum of "
                f"{fmt_open(minimum)} OPEN (ProtocolParams.min_deposit).",
                field="amount",
                value=fmt_open(amount),
                fix=f"deposit at least {fmt_open(max(minimum, 1))} OPEN.",
            )
        balance = c.token.balance_of(account)
        if balance < amount:
            raise ValidationError(
                f"{account} holds {fmt_open(balance)} OPEN, less than the "
                f"{fmt_open(amount)} OPEN to deposit.",
                field="amount",
                value=fmt_open(amount),
                fix="deposit at most the account's OPEN balance.",
            )
        calls = approval(c.token, account, c.escrow.address, amount)
        calls.append(build(c.escrow, "deposit", amount))
        finish, resume = resumable(
            "escrow.finish_deposit", self.finish_deposit, {"account": account, "amount": amount}
        )
        return Plan(
            c.client,
            account,
            calls,
            finish,
            what=f"deposit {fmt_open(amount)} OPEN as inference credit",
            resume=resume,
        )

    def plan_request_withdrawal(self, account: str, amount: int) -> Plan:
        """``requestWithdrawal(amount)``: a positive amount up to the escrow balance."""
        account = to_checksum_address(account)
        c = self._contracts()
        on_chain = c.escrow.balance_of(account)
        if amount <= 0 or amount > on_chain:
            raise ValidationError(
                f"cannot withdraw {fmt_open(amount)} OPEN: {account} has "
                f"{fmt_open(on_chain)} OPEN in the escrow.",
                field="amount",
                value=fmt_open(amount),
                fix="ask for a positive amount up to the escrow balance (fees of served "
                "requests are collected at the next epoch and are not withdrawable).",
            )
        finish, resume = resumable(
            "escrow.finish_request_withdrawal",
            self.finish_request_withdrawal,
            {"account": account, "amount": amount},
        )
        return Plan(
            c.client,
            account,
            [build(c.escrow, "requestWithdrawal", amount)],
            finish,
            what=f"ask for {fmt_open(amount)} OPEN of credit back",
            resume=resume,
        )

    def plan_withdraw(self, account: str) -> Plan:
        """``withdraw()``: once a request exists and its delay has passed."""
        account = to_checksum_address(account)
        c = self._contracts()
        amount, ready_at = c.escrow.pending_withdrawal(account)
        if ready_at == 0:
            raise ValidationError(
                f"{account} has no withdrawal request.",
                field="withdrawal",
                value=account,
                fix="request a withdrawal of an amount first; it can be completed after "
                "the withdrawal delay.",
            )
        now = c.client.timestamp()
        if now < ready_at:
            raise ConflictError(
                f"the withdrawal of {fmt_open(amount)} OPEN is in its delay until "
                f"{_when(ready_at)} ({ready_at - now} s from now; "
                "ProtocolParams.escrow_withdraw_delay).",
                field="withdrawal",
                value=fmt_open(amount),
                fix="complete the withdrawal after that time; the credit stays reserved meanwhile.",
            )
        finish, resume = resumable(
            "escrow.finish_withdraw", self.finish_withdraw, {"account": account}
        )
        return Plan(
            c.client,
            account,
            [build(c.escrow, "withdraw")],
            finish,
            what="complete the credit withdrawal",
            resume=resume,
        )

    # -- the off-chain side, once the calls are mined (``Resume`` finishers) ------------------
    def finish_deposit(
        self,
        args: dict[str, Any],
        _payload: bytes | None,
        results: list[TxResult],
        _sig: str | None,
    ) -> dict[str, Any]:
        self._sync()  # the Deposited event: the credit is usable at once
        return {
            "tx_hash": results[-1].tx_hash,
            "amount": str(args["amount"]),
            **self._credit(args["account"]),
        }

    def finish_request_withdrawal(
        self,
        args: dict[str, Any],
        _payload: bytes | None,
        results: list[TxResult],
        _sig: str | None,
    ) -> dict[str, Any]:
        self._sync()
        _, ready_at = self._contracts().escrow.pending_withdrawal(args["account"])
        return {
            "tx_hash": results[-1].tx_hash,
            "amount": str(args["amount"]),
            "ready_at": ready_at,
            **self._credit(args["account"]),
        }

    def finish_withdraw(
        self,
        args: dict[str, Any],
        _payload: bytes | None,
        results: list[TxResult],
        _sig: str | None,
    ) -> dict[str, Any]:
        paid = self._contracts().escrow.events(results[-1], "Withdrawn")
        self._sync()
        return {
            "tx_hash": results[-1].tx_hash,
            "paid": str(int(paid[0]["amount"]) if paid else 0),
            **self._credit(args["account"]),
        }
