"""Inference credit on chain: deposit into the InferenceEscrow, withdraw after the delay.

Each call checks what the contract would refuse first (minimum deposit, token balance,
withdrawal delay), so the user reads the rule and the numbers instead of a bare revert,
then sends the transaction and syncs its event, so the credit is usable at once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from eth_account.signers.local import LocalAccount

from openledger.chain.client import TxResult
from openledger.chain.deploy import Contracts
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

    def deposit(self, signer: LocalAccount, amount: int) -> dict[str, Any]:
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
        balance = c.token.balance_of(signer.address)
        if balance < amount:
            raise ValidationError(
                f"{signer.address} holds {fmt_open(balance)} OPEN, less than the "
                f"{fmt_open(amount)} OPEN to deposit.",
                field="amount",
                value=fmt_open(amount),
                fix="deposit at most the account's OPEN balance.",
            )
        c.token.ensure_allowance(signer, c.escrow.address, amount)
        tx = c.escrow.deposit(signer, amount)
        self._sync()
        return {"tx_hash": tx.tx_hash, "amount": str(amount), **self._credit(signer.address)}

    def request_withdrawal(self, signer: LocalAccount, amount: int) -> dict[str, Any]:
        c = self._contracts()
        on_chain = c.escrow.balance_of(signer.address)
        if amount <= 0 or amount > on_chain:
            raise ValidationError(
                f"cannot withdraw {fmt_open(amount)} OPEN: {signer.address} has "
                f"{fmt_open(on_chain)} OPEN in the escrow.",
                field="amount",
                value=fmt_open(amount),
                fix="ask for a positive amount up to the escrow balance (fees of served "
                "requests are collected at the next epoch and are not withdrawable).",
            )
        tx = c.escrow.request_withdrawal(signer, amount)
        self._sync()
        _, ready_at = c.escrow.pending_withdrawal(signer.address)
        return {
            "tx_hash": tx.tx_hash,
            "amount": str(amount),
            "ready_at": ready_at,
            **self._credit(signer.address),
        }

    def withdraw(self, signer: LocalAccount) -> dict[str, Any]:
        c = self._contracts()
        amount, ready_at = c.escrow.pending_withdrawal(signer.address)
        if ready_at == 0:
            raise ValidationError(
                f"{signer.address} has no withdrawal request.",
                field="withdrawal",
                value=signer.address,
                fix="request one first: `openledger withdraw AMOUNT --as ACCOUNT`.",
            )
        now = c.client.timestamp()
        if now < ready_at:
            raise ConflictError(
                f"the withdrawal of {fmt_open(amount)} OPEN is in its delay until "
                f"{_when(ready_at)} ({ready_at - now} s from now; "
                "ProtocolParams.escrow_withdraw_delay).",
                field="withdrawal",
                value=fmt_open(amount),
                fix="run `openledger withdraw --as ACCOUNT` again after that time; the "
                "credit stays reserved meanwhile.",
            )
        tx = c.escrow.withdraw(signer)
        paid = c.escrow.events(tx, "Withdrawn")
        self._sync()
        return {
            "tx_hash": tx.tx_hash,
            "paid": str(int(paid[0]["amount"]) if paid else 0),
            **self._credit(signer.address),
        }

    # -- the off-chain side of a wallet's escrow calls (``Resume`` finishers) -----------------
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
