"""`openledger audit --epoch N`: recompute an epoch from its receipts and check it on chain.

Everything is recomputed from the stored receipt bodies, not from the ledger's own
summaries: each receipt's content hash, its link in the hash chain, and the operator's
signature of each committed group's last hash (every receipt must be covered by one); its
fee from its token counts and prices; its split from the basis points it names, its
attribution weights and the beneficiary set it names; each epoch's pools divided over their
sets as the seal divides them; then the cumulative earnings of every epoch up to N, their
Merkle root, and the root, total and receipts head posted on chain for N. The datanet
access fees settled in those epochs are recomputed too (``ledger.access.audit``: each
record's body, the operator's signature, its split, and its ``AccessPaid`` event on chain).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from openledger.chain.deploy import Contracts
from openledger.chain.merkle import MerkleTree
from openledger.ledger import access
from openledger.ledger.pricing.fees import FeeSplit, Split, divide_pools, fee, split_fee
from openledger.ledger.receipts.canonical import GENESIS, check_head, check_receipt
from openledger.ledger.receipts.compute import check_compute
from openledger.ledger.receipts.content import agent_payout
from openledger.ledger.settlement import beneficiaries as bene
from openledger.store.db import Database
from openledger.store.ledger_tables import BeneficiarySetRow, EpochRow, ReceiptRow


@dataclass
class AuditReport:
    epoch: int
    receipts: int = 0
    problems: list[str] = field(default_factory=list)
    root: str = ""
    chain_root: str = ""
    head: str = ""
    chain_head: str = ""
    total: int = 0
    sealed: bool = True  # False: the node never sealed this epoch (nothing to recompute)
    last_sealed: int | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "ok": self.ok,
            "receipts": self.receipts,
            "root": self.root,
            "chain_root": self.chain_root,
            "receipts_head": self.head,
            "chain_receipts_head": self.chain_head,
            "total": str(self.total),
            "problems": list(self.problems),
        }


def _recomputed_split(body: dict[str, Any], contributions: list, amount: int) -> Split:
    split = body["split"]
    compute = body.get("compute") or {}
    fs = FeeSplit(
        *split["bps"], version=split["params_version"], compute_bps=int(compute.get("bps", 0))
    )
    ppb = {int(x["contribution"]): int(x["weight_ppb"]) for x in body["attribution"]["shares"]}
    platform = next((p["account"] for p in body["payouts"] if p["role"] == "platform"), "")
    treasury = platform or next(
        (
            p["account"]
            for p in body["payouts"]
            if p["role"] in ("staker", "unattributed") and p.get("contribution") is None
        ),
        "",
    )
    return split_fee(
        amount,
        fs,
        treasury=treasury,
        owner=_owner(body),
        contributions=contributions,
        attribution=ppb,
        provider=compute.get("provider"),
    )


def _check_links(body: dict[str, Any], payers: dict[str, str]) -> str:
    """A call to an agent names the receipts of the calls it made: each must come before it
    in the chain and be paid by the agent's wallet (docs/agents.md)."""
    agent = body.get("agent") or {}
    for link in agent.get("inner", []):
        if link not in payers:
            return f"its agent call names receipt {link}, which is not before it in the chain"
        if payers[link] != agent.get("wallet"):
            return (
                f"its agent call names receipt {link}, paid by {payers[link]}, not by "
                f"the agent's wallet {agent.get('wallet')}"
            )
    return ""


def _owner(body: dict[str, Any]) -> str:
    return next((p["account"] for p in body["payouts"] if p["role"] == "owner"), "")


class Auditor:
    def __init__(self, db: Database, contracts: Callable[[], Contracts], operator: str) -> None:
        self.db = db
        self._contracts = contracts
        self.operator = operator

    def audit(self, number: int) -> AuditReport:
        report = AuditReport(epoch=number)
        with self.db.session() as s:
            epoch = s.get(EpochRow, number) if 0 <= number <= 2**63 - 1 else None
            if epoch is None:
                report.sealed = False
                report.last_sealed = s.scalar(select(func.max(EpochRow.number)))
                report.problems.append(f"epoch {number} was never sealed on this node")
                return report
            rows = s.execute(
                select(
                    ReceiptRow.seq,
                    ReceiptRow.body,
                    ReceiptRow.hash,
                    ReceiptRow.content_hash,
                    ReceiptRow.head_signature,
                    ReceiptRow.epoch,
                )
                .where(ReceiptRow.epoch.is_not(None), ReceiptRow.epoch <= number)
                .order_by(ReceiptRow.seq)
            ).all()
            sets = {r.hash: json.loads(r.body) for r in s.scalars(select(BeneficiarySetRow))}
        leaves: dict[str, int] = {}
        pools: dict[int, dict[tuple[str, str], int]] = defaultdict(dict)
        prev, expected_seq, head = GENESIS, 1, GENESIS
        unsigned: list[int] = []  # receipts since the last signed head
        payers: dict[str, str] = {}  # link hash -> payer of every receipt read so far
        for seq, body_text, digest, chash, head_signature, ep in rows:
            if seq != expected_seq:
                report.problems.append(
                    f"receipt {expected_seq} is missing (the next stored one is {seq})"
                )
            expected_seq = seq + 1
            check = check_receipt(seq, body_text, chash, digest, prev)
            prev = digest
            unsigned.append(seq)
            if head_signature:
                problem = check_head(seq, digest, head_signature, self.operator)
                if problem:
                    report.problems.append(f"receipt {seq}: {problem}")
                unsigned = []
            if ep == number:
                report.receipts += 1
            head = digest  # an epoch of access fees alone keeps the head before it
            if not check.ok:
                report.problems.append(f"receipt {seq}: {check.problem}")
                continue
            body = json.loads(body_text)
            problem = _check_links(body, payers)
            payers[digest] = body["payer"]
            if problem:
                report.problems.append(f"receipt {seq}: {problem}")
            problem = self._check_split(body, sets)
            if problem:
                report.problems.append(f"receipt {seq}: {problem}")
                continue
            for p in body["payouts"]:
                leaves[p["account"]] = leaves.get(p["account"], 0) + int(p["amount"])
            for role, amount in body.get("pools", {}).items():
                key = (body["beneficiaries"], role)
                pools[ep][key] = pools[ep].get(key, 0) + int(amount)
        for ep in sorted(pools):  # each epoch's pools are divided on their own, as sealed
            parsed = {h: bene.from_body(sets[h]) for h, _ in pools[ep]}
            for _, p in divide_pools(pools[ep], parsed):
                leaves[p.account] = leaves.get(p.account, 0) + p.amount
        with self.db.session() as s:
            added, problems = access.audit(s, number, self.operator, sets, self._access_events)
        report.problems.extend(problems)
        for account, amount in added.items():
            leaves[account] = leaves.get(account, 0) + amount
        if unsigned:
            report.problems.append(
                f"receipts {unsigned[0]}–{unsigned[-1]} are not covered by a signed head "
                "(the last receipt of each committed group carries one)"
            )
        report.head = head
        if leaves:
            tree = MerkleTree.from_amounts(leaves)
            report.root = "0x" + tree.root.hex()
            report.total = sum(tree.amounts.values())
        if report.root != epoch.root:
            report.problems.append(
                f"the recomputed root {report.root or '(none)'} differs from the root the node "
                f"sealed, {epoch.root}"
            )
        chain_root, chain_total, chain_head, _ = self._contracts().rewards.epochs(number)
        report.chain_root, report.chain_head = "0x" + chain_root.hex(), "0x" + chain_head.hex()
        if int(report.chain_root, 16) == 0:
            report.problems.append(f"no root is posted on chain for epoch {number}")
        else:
            if report.chain_root != report.root:
                report.problems.append(
                    f"the root on chain {report.chain_root} differs from the recomputed "
                    f"{report.root}"
                )
            if report.chain_head != report.head:
                report.problems.append(
                    f"the receipts head on chain {report.chain_head} differs from the "
                    f"recomputed {report.head}"
                )
            if chain_total != report.total:
                report.problems.append(
                    f"the total on chain {chain_total} differs from the recomputed {report.total}"
                )
        return report

    def _access_events(self, from_block: int, to_block: int) -> dict[int, dict[str, Any]]:
        """The ``AccessPaid`` events of the DatanetRegistry in a block range, by access id."""
        registry = self._contracts().datanets
        event = registry.contract.events.AccessPaid()
        out: dict[int, dict[str, Any]] = {}
        for log in event.get_logs(from_block=from_block, to_block=to_block):
            tx = log["transactionHash"]
            out[int(log["args"]["access_id"])] = {
                **dict(log["args"]),
                "tx_hash": "0x" + bytes(tx).hex().removeprefix("0x"),
            }
        return out

    def _check_split(self, body: dict[str, Any], sets: dict[str, Any]) -> str:
        tokens, prices = body["tokens"], body["prices"]
        model_fee = fee(
            tokens["prompt"], tokens["completion"], int(prices["in"]), int(prices["out"])
        )
        agent = body.get("agent")  # a call to an agent: its price on top, to its owner
        expect = model_fee + (int(agent["price"]) if agent else 0)
        if int(body["fee"]) != expect:
            what = "tokens and prices" if agent is None else "tokens, prices and agent price"
            return f"its fee {body['fee']} is not the {expect} its {what} give"
        if body.get("compute") and (problem := check_compute(body["compute"])):
            return problem
        pooled = body.get("pools", {})
        paid = sum(int(p["amount"]) for p in body["payouts"])
        if paid + sum(int(v) for v in pooled.values()) != expect:
            return "its payouts and pools do not add up to its fee"
        set_body = sets.get(body["beneficiaries"])
        if set_body is None or bene.set_hash(set_body) != body["beneficiaries"]:
            return f"its beneficiary set {body['beneficiaries']} is missing or altered"
        recomputed = _recomputed_split(body, bene.from_body(set_body), model_fee)
        payouts = [p.to_dict() for p in recomputed.payouts]
        if agent is not None and (extra := agent_payout(agent)) is not None:
            payouts.append(extra.to_dict())
        if payouts != body["payouts"]:
            return "its payouts differ from the split recomputed from its own inputs"
        if {r: str(v) for r, v in recomputed.pools.items()} != pooled:
            return "its pools differ from the split recomputed from its own inputs"
        return ""
