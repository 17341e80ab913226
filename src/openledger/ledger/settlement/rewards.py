"""Earnings views and claims: what an account earned (by model, datanet, contribution,
role and source: paid inference or datanet access fees), what is claimable on chain now, and
the claim transaction with its Merkle proof."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from eth_account.signers.local import LocalAccount
from sqlalchemy import select
from sqlalchemy.orm import Session
from web3 import Web3

from openledger.chain.calls import Plan, build, resumable
from openledger.chain.deploy import Contracts
from openledger.chain.merkle import MerkleTree
from openledger.errors import ConflictError
from openledger.ledger import access
from openledger.ledger.receipts.canonical import hex32
from openledger.ledger.settlement import beneficiaries as bene
from openledger.store.db import Database
from openledger.store.ledger_tables import (
    AccessEarningRow,
    AccessRow,
    EarningRow,
    EpochRow,
    ReceiptRow,
)
from openledger.units import fmt_open


class RewardsService:
    def __init__(self, db: Database, contracts: Callable[[], Contracts]) -> None:
        self.db = db
        self._contracts = contracts

    def earnings(self, account: str) -> dict[str, Any]:
        """Everything ``account`` earned, settled or not, grouped several ways (wei strings)."""
        account = Web3.to_checksum_address(account)
        groups = ("model", "datanet", "contribution", "role", "epoch", "source")
        by: dict[str, dict[Any, int]] = {k: defaultdict(int) for k in groups}
        total = settled = 0
        with self.db.session() as s:
            rows = s.execute(
                select(EarningRow, ReceiptRow.epoch, EpochRow.status)
                .join(ReceiptRow, ReceiptRow.seq == EarningRow.receipt_seq)
                .outerjoin(EpochRow, EpochRow.number == ReceiptRow.epoch)
                .where(EarningRow.account == account)
            ).all()
            items = [
                (e.amount, e.model_id, e.role, epoch, e.datanet_id, e.contribution_id, status)
                for e, epoch, status in rows
            ]
            items += _open_pool_shares(s, account)
            access_rows = s.execute(
                select(AccessEarningRow, AccessRow.epoch, EpochRow.status)
                .join(AccessRow, AccessRow.access_id == AccessEarningRow.access_id)
                .outerjoin(EpochRow, EpochRow.number == AccessRow.epoch)
                .where(AccessEarningRow.account == account)
            ).all()
            items += [
                (e.amount, None, e.role, epoch, e.datanet_id, e.contribution_id, status)
                for e, epoch, status in access_rows
            ]
            items += [
                (p.amount, None, p.role, None, p.datanet, p.contribution, None)
                for p in access.divide_open_pools(s)
                if p.account == account
            ]
        for amount, model_id, role, epoch, datanet_id, contribution_id, status in items:
            total += amount
            if status == "settled":
                settled += amount
            by["source"]["inference" if model_id is not None else "access"] += amount
            if model_id is not None:
                by["model"][model_id] += amount
            by["role"][role] += amount
            by["epoch"][epoch if epoch is not None else "open"] += amount
            if datanet_id is not None:
                by["datanet"][datanet_id] += amount
            if contribution_id is not None:
                by["contribution"][contribution_id] += amount
        return {
            "account": account,
            "earned": str(total),
            "settled": str(settled),
            "unsettled": str(total - settled),
            **{
                f"by_{k}": {
                    str(kk): str(v) for kk, v in sorted(d.items(), key=lambda kv: str(kv[0]))
                }
                for k, d in by.items()
            },
        }

    def claimable(self, account: str) -> dict[str, Any]:
        """The leaf of ``account`` in the root in force on chain, and what a claim pays now."""
        account = Web3.to_checksum_address(account)
        rewards = self._contracts().rewards
        active_root = hex32(rewards.active_root())
        claimed = rewards.claimed(account)
        out: dict[str, Any] = {
            "account": account,
            "claimed": str(claimed),
            "epoch": None,
            "cumulative": "0",
            "claimable": "0",
            "proof": [],
        }
        pending_epoch, _, ready_at = rewards.pending_root()
        if ready_at:
            out["pending"] = {"epoch": pending_epoch, "ready_at": ready_at}
        if int(active_root, 16) == 0:
            return out
        epoch = rewards.active_epoch()
        with self.db.session() as s:
            row = s.get(EpochRow, epoch)
            leaves = dict(row.leaves) if row is not None and row.root == active_root else None
        if leaves is None:
            raise ConflictError(
                f"the root in force on chain (epoch {epoch}, {active_root}) is not one this "
                "node settled.",
                field="epoch",
                value=epoch,
                fix="claim through the node that settled that epoch, or check the addresses "
                "file (OPENLEDGER_ADDRESSES) points at this node's contracts.",
            )
        cumulative = int(leaves.get(account, 0))
        out["epoch"] = epoch
        out["cumulative"] = str(cumulative)
        out["claimable"] = str(max(0, cumulative - claimed))
        if cumulative:
            tree = MerkleTree.from_amounts({a: int(v) for a, v in leaves.items()})
            out["proof"] = [hex32(p) for p in tree.proof(account)]
        return out

    def claim(self, account: str, signer: LocalAccount) -> dict[str, Any]:
        """Send ``claim(account, cumulative, proof)`` from ``signer``; what was paid and the
        tx. With nothing left to claim, nothing is sent and ``paid`` is 0."""
        return self.plan_claim(signer.address, account).run(signer)

    def plan_claim(self, sender: str, account: str) -> Plan:
        """``claim(account, cumulative, proof)`` sent by ``sender`` (anyone may send an
        account's claim: the OPEN goes to the account). With nothing claimable the plan has
        no calls, and its finish says so."""
        c = self.claimable(account)
        rewards = self._contracts().rewards
        calls = []
        if int(c["claimable"]) > 0:
            proof = [bytes.fromhex(p[2:]) for p in c["proof"]]
            calls.append(build(rewards, "claim", c["account"], int(c["cumulative"]), proof))
        finish, resume = resumable("rewards.finish_claim", self.finish_claim, {"before": c})
        return Plan(
            rewards.client,
            Web3.to_checksum_address(sender),
            calls,
            finish,
            what=f"claim {fmt_open(int(c['claimable']))} OPEN of rewards",
            resume=resume,
        )

    def finish_claim(
        self, args: dict[str, Any], _payload: bytes | None, results: list[Any], _sig: str | None
    ) -> dict[str, Any]:
        """What a mined claim paid (``args["before"]``: ``claimable`` when it was planned),
        and the account's OPEN balance after it: the same answer whether the node or the
        account's own wallet sent it. No results: nothing was claimable, nothing was sent."""
        c = args["before"]
        contracts = self._contracts()
        balance = str(contracts.token.balance_of(c["account"]))
        if not results:
            return {**c, "paid": "0", "paid_open": fmt_open(0), "tx_hash": None, "balance": balance}
        tx = results[-1]
        paid = contracts.rewards.events(tx, "Claimed")
        amount = int(paid[0]["amount"]) if paid else int(c["claimable"])
        return {
            **c,
            "paid": str(amount),
            "paid_open": fmt_open(amount),
            "tx_hash": tx.tx_hash,
            "claimable": "0",
            "claimed": str(int(c["claimed"]) + amount),
            "balance": balance,
        }


def _open_pool_shares(s: Session, account: str) -> list[tuple]:
    """``account``'s shares of the pools not sealed yet, divided as the seal would divide
    them now (the seal of the epoch fixes them)."""
    return [
        (p.amount, model_id, p.role, None, p.datanet, p.contribution, None)
        for model_id, p in bene.divide_open_pools(s, missing_ok=True)
        if p.account == account
    ]
