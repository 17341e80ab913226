"""Deploying the contract set to any EVM chain (`openledger chain deploy`), resumably.

The deployment is :func:`~openledger.chain.deploy.deploy_all` (the same sequence the devnet
runs, governance handover included) through a :class:`JournaledClient`: every transaction
is signed first and written — nonce, hash and raw bytes — to a journal beside the addresses
file (``addresses.json.partial``) *before* it is sent, and marked done once mined. A deploy
killed at any moment is resumed by running the same command: a transaction already in the
journal is not signed again — its receipt is read, or the very same signed bytes are sent
again (same nonce, same hash: it cannot create a second copy of a contract). Nothing is
sent while an earlier transaction of the deployer is pending. Every contract's code is
checked against the compiled runtime code, and the addresses file is written atomically
once, when everything is done: a failure leaves it untouched and says how to go on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from web3.exceptions import TransactionNotFound

from openledger.chain.addr import keccak256, to_checksum_address
from openledger.chain.client import ChainClient
from openledger.chain.compile import compile_all
from openledger.chain.deploy import MAINNET_GOVERNANCE, Addresses, GovernanceConfig, deploy_all
from openledger.chain.l2fees import l1_fee
from openledger.chain.tx import TxResult
from openledger.errors import (
    ConfigError,
    ContractNotDeployedError,
    InsufficientFundsError,
    TransactionRevertedError,
)
from openledger.fsutil import write_atomic

PENDING_WAIT_S = 120.0


@dataclass
class DeployReport:
    addresses: Addresses
    sent: list[str] = field(default_factory=list)  # transactions this run signed and sent
    found: list[str] = field(default_factory=list)  # done by an interrupted run before
    cost_wei: int = 0  # L2 execution + L1 data fee of every transaction of the deployment
    already_deployed: bool = False


class JournaledClient(ChainClient):
    """A ChainClient whose deployments and contract calls go through the journal."""

    def __init__(
        self,
        base: ChainClient,
        journal: dict[str, Any],
        save: Callable[[], None],
        report: DeployReport,
        say: Callable[[str], None],
    ) -> None:
        super().__init__(base.url, chain_id=base.expected_chain_id, timeout=base.timeout)
        self.journal, self._save, self.report, self.say = journal, save, report, say

    def deploy(
        self, abi: list[dict[str, Any]], bytecode: str, signer: Any, *args: Any
    ) -> tuple[str, TxResult]:
        data = self.w3.eth.contract(abi=abi, bytecode=bytecode).constructor(*args)
        tx = {"from": signer.address, "data": data.data_in_transaction, "value": 0}
        result = self._journaled(signer, tx, label=f"deploy {_name_of(abi, bytecode)}")
        return to_checksum_address(str(result.receipt["contractAddress"])), result

    def transact(self, fn: Any, signer: Any, *, value: int = 0) -> TxResult:
        tx = {
            "from": signer.address,
            "to": fn.address,
            "data": fn._encode_transaction_data(),
            "value": value,
        }
        return self._journaled(signer, tx, label=fn.fn_name)

    # -- the journal -----------------------------------------------------------------------
    def _journaled(self, signer: Any, tx: dict[str, Any], *, label: str) -> TxResult:
        key = "0x" + keccak256(json.dumps([tx.get("to"), tx["data"], tx["value"]]).encode()).hex()
        entry = self.journal["txs"].get(key)
        if entry is not None:
            result = self._resume(entry)
            self.report.found.append(entry["label"])
            return result
        self._wait_pending(signer.address)
        gas = self._estimate(tx, label)
        fees = self._fees()
        nonce = self.w3.eth.get_transaction_count(signer.address, "pending")
        full = {
            **tx,
            "gas": int(gas * 1.2) + 50_000,
            "nonce": nonce,
            "chainId": self.expected_chain_id,
            **fees,
        }
        self._check_funds(signer.address, full, label)
        signed = signer.sign_transaction(full)
        entry = {
            "label": label,
            "nonce": nonce,
            "hash": "0x" + bytes(signed.hash).hex(),
            "raw": "0x" + bytes(signed.raw_transaction).hex(),
            "done": False,
        }
        self.journal["txs"][key] = entry
        self._save()  # written down before it is sent
        result = self.send_raw(signed.raw_transaction, label=label)
        self._done(entry, result)
        self.report.sent.append(label)
        self.say(f"{label}: gas {result.gas_used:,} (tx {result.tx_hash})")
        return result

    def _resume(self, entry: dict[str, Any]) -> TxResult:
        try:
            receipt = self.w3.eth.get_transaction_receipt(entry["hash"])
        except TransactionNotFound:
            receipt = None
        if receipt is None:
            sender = self.journal["deployer"]
            used = self.w3.eth.get_transaction_count(sender, "latest")
            if used > entry["nonce"]:
                raise ContractNotDeployedError(
                    f"{entry['label']} ({entry['hash']}) is not on chain, and nonce "
                    f"{entry['nonce']} of {sender} was used by another transaction.",
                    field="deployer",
                    value=sender,
                    fix="check that transaction; if nothing of this deployment was created by "
                    "it, remove its entry from the .partial journal and run the deploy again.",
                )
            self.say(f"{entry['label']}: sending the same signed transaction again")
            try:
                self.w3.eth.send_raw_transaction(bytes.fromhex(entry["raw"][2:]))
            except Exception as exc:
                if "known" not in str(exc).lower() and "already" not in str(exc).lower():
                    raise self._reverted(None, exc, label=entry["label"]) from exc
            receipt = self.wait_receipt(entry["hash"], label=entry["label"])
        elif not entry["done"]:
            self.say(f"{entry['label']}: mined before the interruption ({entry['hash']})")
        if receipt["status"] != 1:
            raise TransactionRevertedError(
                f"{entry['label']} ({entry['hash']}) reverted on chain.",
                reason="reverted",
                fix="inspect the transaction; then remove its entry from the .partial "
                "journal and run the deploy again.",
            )
        result = TxResult(tx_hash=entry["hash"], receipt=receipt)
        self._done(entry, result)
        return result

    def _done(self, entry: dict[str, Any], result: TxResult) -> None:
        if entry.get("done"):
            return
        r = result.receipt
        l1 = r.get("l1Fee")
        l1 = int(l1, 16) if isinstance(l1, str) else int(l1 or 0)
        entry.update(
            done=True,
            gas=result.gas_used,
            cost=str(result.gas_used * int(r.get("effectiveGasPrice") or 0) + l1),
        )
        self._save()

    def _estimate(self, tx: dict[str, Any], label: str) -> int:
        params = {k: v for k, v in tx.items() if v is not None}
        try:
            return int(self.w3.eth.estimate_gas(params))  # type: ignore[arg-type]
        except Exception as exc:
            raise self._reverted(None, exc, label=label) from exc

    def _check_funds(self, sender: str, tx: dict[str, Any], label: str) -> None:
        price = int(tx.get("maxFeePerGas") or tx.get("gasPrice") or 0)
        need = int(tx["gas"]) * price + l1_fee(self, tx["data"])
        have = self.eth_balance(sender)
        if have < need:
            raise InsufficientFundsError(
                f"{sender} holds {have / 1e18:.6f} ETH; {label} needs up to {need / 1e18:.6f} "
                f"ETH ({tx['gas']:,} gas at {price / 1e9:.3f} gwei, plus the L1 data fee).",
                field="deployer",
                value=sender,
                fix=f"send ETH to {sender} on this chain, then run the same command again: the "
                "deployment resumes where it stopped.",
            )

    def _wait_pending(self, sender: str) -> None:
        """Nothing is sent while an earlier transaction of the deployer is unmined."""
        deadline = time.monotonic() + PENDING_WAIT_S
        while self.w3.eth.get_transaction_count(
            sender, "pending"
        ) > self.w3.eth.get_transaction_count(sender, "latest"):
            if time.monotonic() > deadline:
                raise ContractNotDeployedError(
                    f"A transaction of {sender} has been pending for over {PENDING_WAIT_S:.0f} s.",
                    field="deployer",
                    value=sender,
                    fix="wait until the chain mines it (or replace it), then run the deploy "
                    "again: it resumes.",
                )
            time.sleep(0.5)


def _name_of(abi: list[dict[str, Any]], bytecode: str) -> str:
    for name, art in compile_all().items():
        if art.bytecode == bytecode:
            return name
    return "contract"


class Deployment:
    """One deployment of the whole set from ``deployer`` to the chain of ``client``."""

    def __init__(
        self,
        client: ChainClient,
        deployer: Any,
        addresses_path: Path,
        *,
        treasury: str | None = None,
        operator: str | None = None,
        governance: GovernanceConfig = MAINNET_GOVERNANCE,
        say: Callable[[str], None] = lambda _: None,
    ) -> None:
        self.client = client
        self.deployer = deployer
        self.path = Path(addresses_path)
        self.journal_path = self.path.with_name(self.path.name + ".partial")
        self.treasury = to_checksum_address(treasury or deployer.address)
        self.operator = to_checksum_address(operator or deployer.address)
        self.governance = governance
        self.say = say

    def run(self) -> DeployReport:
        self.client.check()  # it answers, and it is the chain id asked for
        if self.path.exists():
            return self._already_there()
        journal = self._load_journal() or {
            "chain_id": self.client.expected_chain_id,
            "deployer": self.deployer.address,
            "treasury": self.treasury,
            "operator": self.operator,
            "start_block": self.client.block_number(),
            "txs": {},
        }
        if journal["txs"]:
            self.say(
                f"resuming the deployment in {self.journal_path} "
                f"({len(journal['txs'])} transactions there already)"
            )

        def save() -> None:
            write_atomic(self.journal_path, json.dumps(journal, indent=2))

        save()
        report = DeployReport(Addresses(chain_id=self.client.expected_chain_id, contracts={}))
        journaled = JournaledClient(self.client, journal, save, report, self.say)
        addresses = deploy_all(
            journaled,
            self.deployer,
            treasury=journal["treasury"],
            operator=journal["operator"],
            governance=self.governance,
            hand_over=True,
        )
        addresses = replace(addresses, deployed_block=int(journal["start_block"]) + 1)
        self._check_codes(addresses)
        addresses.save(self.path)  # atomically, and only now
        self.journal_path.unlink(missing_ok=True)
        report.addresses = addresses
        report.cost_wei = sum(int(e.get("cost", 0)) for e in journal["txs"].values())
        return report

    def _load_journal(self) -> dict[str, Any]:
        if not self.journal_path.exists():
            return {}
        doc = json.loads(self.journal_path.read_text(encoding="utf-8"))
        mine = (self.client.expected_chain_id, self.deployer.address)
        if (doc.get("chain_id"), doc.get("deployer")) != mine:
            raise ConfigError(
                f"{self.journal_path} holds an unfinished deployment to chain id "
                f"{doc.get('chain_id')} by {doc.get('deployer')}, not to chain id {mine[0]} by "
                f"{mine[1]}.",
                field="--addresses",
                value=str(self.path),
                fix="finish that deployment with its chain and key, or write this one "
                "elsewhere (--addresses PATH).",
            )
        return doc

    def _already_there(self) -> DeployReport:
        addresses = Addresses.load(self.path)
        if addresses.chain_id != self.client.expected_chain_id:
            raise ConfigError(
                f"{self.path} holds the addresses of chain id {addresses.chain_id}, not "
                f"{self.client.expected_chain_id}.",
                field="--addresses",
                value=str(self.path),
                fix="write this chain's addresses elsewhere (--addresses PATH).",
            )
        self._check_codes(addresses)
        self.say(f"already deployed: {self.path} (every contract's code checked)")
        return DeployReport(addresses, found=list(addresses.contracts), already_deployed=True)

    def _check_codes(self, addresses: Addresses) -> None:
        """Each address holds this build's code (the runtime code, then Vyper's
        immutables): a wrong or foreign addresses file is named, not trusted."""
        arts = compile_all()
        for name, address in addresses.contracts.items():
            code = bytes.fromhex(self.client.rpc("eth_getCode", [address, "latest"])[2:])
            runtime = bytes.fromhex(arts[name].runtime.removeprefix("0x"))
            if not code or not code.startswith(runtime):
                what = "no code" if not code else f"code keccak {keccak256(code).hex()[:16]}…"
                raise ContractNotDeployedError(
                    f"The code at {address} is not this build's {name} ({what}).",
                    field=name,
                    value=address,
                    fix="use the openledger version the addresses were deployed with, or "
                    "deploy afresh to another --addresses file.",
                )


__all__ = ["DeployReport", "Deployment", "JournaledClient"]
