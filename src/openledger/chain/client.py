"""JSON-RPC client: one code path (web3.py) for the devnet and any production EVM chain.

It connects and checks the chain id, sends signed transactions and waits for receipts, and
turns every failure a user can act on into an ``openledger.errors`` type.
"""

from __future__ import annotations

import re
from typing import Any

import requests
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import (
    ContractCustomError,
    ContractLogicError,
    ContractPanicError,
    TimeExhausted,
    Web3RPCError,
)
from web3.types import TxReceipt

from openledger.chain.calls import Call
from openledger.chain.tx import TxResult
from openledger.errors import (
    ChainUnreachableError,
    ContractNotDeployedError,
    InsufficientFundsError,
    TransactionRevertedError,
    WrongChainError,
)

# revert reasons that mean "you lack funds or allowance" rather than "the rule said no"
_FUNDS_HINTS: dict[str, str] = {
    "insufficient allowance": "approve the contract for at least the amount first.",
    "exceeds balance": "top up the account's OPEN balance, or use a smaller amount.",
    "insufficient funds": "the account needs ETH for gas; on the devnet use a dev account "
    "or have the operator fund it.",
}


def _revert_reason(exc: Exception) -> str:
    if isinstance(exc, ContractLogicError | ContractPanicError | ContractCustomError):
        text = exc.message or str(exc)
    else:
        text = str(exc)
    text = re.sub(r"^\s*execution reverted:?\s*", "", text)
    return text.strip() or "reverted without a reason"


class ChainClient:
    """A connection to one EVM chain, checked against the expected chain id."""

    def __init__(self, url: str, *, chain_id: int, timeout: float = 10.0) -> None:
        self.url = url
        self.expected_chain_id = chain_id
        self.timeout = timeout
        self.w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": timeout}))
        self._checked = False

    # -- connection -----------------------------------------------------------------------
    def rpc(self, method: str, params: list[Any] | None = None) -> Any:
        """Raw JSON-RPC call, with connection failures mapped to ChainUnreachableError."""
        try:
            response = self.w3.provider.make_request(method, params or [])  # type: ignore[arg-type]
        except (requests.ConnectionError, requests.Timeout, OSError) as exc:
            raise self._unreachable(exc) from exc
        if "error" in response:
            raise TransactionRevertedError(
                f"The node rejected {method}: {response['error']}.", reason=str(response["error"])
            )
        return response.get("result")

    def _unreachable(self, exc: Exception) -> ChainUnreachableError:
        return ChainUnreachableError(
            f"No EVM node answers at {self.url} ({type(exc).__name__}).",
            field="OPENLEDGER_CHAIN_URL",
            value=self.url,
            fix="start the devnet with `openledger chain up`, or point OPENLEDGER_CHAIN_URL "
            "at a reachable JSON-RPC endpoint.",
        )

    def check(self) -> int:
        """Verify that the node answers and has the expected chain id; returns the chain id."""
        try:
            actual = int(self.w3.eth.chain_id)
        except (requests.ConnectionError, requests.Timeout, OSError) as exc:
            raise self._unreachable(exc) from exc
        except (ValueError, Web3RPCError) as exc:  # it answers, but not as an EVM node
            raise ChainUnreachableError(
                f"{self.url} answers, but not as an EVM JSON-RPC node (eth_chainId: "
                f"{type(exc).__name__}).",
                field="OPENLEDGER_CHAIN_URL",
                value=self.url,
                fix="give the chain's JSON-RPC URL (an OP Stack L2's RPC endpoint, e.g. "
                "https://mainnet.optimism.io), not a web page or another service.",
            ) from exc
        if actual != self.expected_chain_id:
            raise WrongChainError(
                f"The node at {self.url} is chain id {actual}, but this node home expects "
                f"{self.expected_chain_id}.",
                field="OPENLEDGER_CHAIN_ID",
                value=actual,
                fix="point OPENLEDGER_CHAIN_URL at the right network, or set "
                f"OPENLEDGER_CHAIN_ID={actual} if this network is the one you mean.",
            )
        self._checked = True
        return actual

    def ensure_checked(self) -> None:
        if not self._checked:
            self.check()

    def require_code(self, name: str, address: str) -> None:
        """Raise ContractNotDeployedError when ``address`` holds no contract code."""
        self.ensure_checked()
        if len(self.w3.eth.get_code(Web3.to_checksum_address(address))) == 0:
            raise ContractNotDeployedError(
                f"No {name} contract is deployed at {address} on {self.url}.",
                field="addresses",
                value=address,
                fix="run `openledger chain up` (devnet deploys on first start) or fix the "
                "addresses file (OPENLEDGER_ADDRESSES) for this network.",
            )

    def block_number(self) -> int:
        self.ensure_checked()
        return int(self.w3.eth.block_number)

    def timestamp(self) -> int:
        self.ensure_checked()
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def eth_balance(self, address: str) -> int:
        self.ensure_checked()
        return int(self.w3.eth.get_balance(Web3.to_checksum_address(address)))

    # -- contracts ------------------------------------------------------------------------
    def contract(self, address: str, abi: list[dict[str, Any]]) -> Contract:
        return self.w3.eth.contract(address=Web3.to_checksum_address(address), abi=abi)

    def call(self, fn: ContractFunction) -> Any:
        """Read-only call; reverts become TransactionRevertedError."""
        self.ensure_checked()
        try:
            return fn.call()
        except (ContractLogicError, ContractPanicError, ContractCustomError) as exc:
            raise self._reverted(fn, exc) from exc
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise self._unreachable(exc) from exc

    def transact(self, fn: ContractFunction, signer: LocalAccount, *, value: int = 0) -> TxResult:
        """Sign and send ``fn`` from ``signer``; wait for the receipt."""
        self.ensure_checked()
        params = {"from": signer.address, "value": value}
        try:
            gas = fn.estimate_gas(params)
            tx = fn.build_transaction(
                {
                    **params,
                    "gas": int(gas * 1.25) + 10_000,
                    "nonce": self.w3.eth.get_transaction_count(signer.address, "pending"),
                    "chainId": self.expected_chain_id,
                    **self._fees(),
                }
            )
        except (ContractLogicError, ContractPanicError, ContractCustomError) as exc:
            raise self._reverted(fn, exc) from exc
        except Web3RPCError as exc:
            raise self._reverted(fn, exc) from exc
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise self._unreachable(exc) from exc
        return self.send_raw(signer.sign_transaction(tx).raw_transaction, label=fn.fn_name)

    def send_call(self, call: Call, signer: LocalAccount) -> TxResult:
        """Sign and send a prepared :class:`~openledger.chain.calls.Call`; wait for it."""
        self.ensure_checked()
        params = {"from": signer.address, "to": call.to, "data": call.data, "value": call.value}
        try:
            gas = self.w3.eth.estimate_gas(params)  # type: ignore[arg-type]
            tx = {
                **params,
                "gas": int(gas * 1.25) + 10_000,
                "nonce": self.w3.eth.get_transaction_count(signer.address, "pending"),
                "chainId": self.expected_chain_id,
                **self._fees(),
            }
        except (ContractLogicError, ContractPanicError, ContractCustomError, Web3RPCError) as exc:
            raise self._reverted(None, exc, label=call.label) from exc
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise self._unreachable(exc) from exc
        return self.send_raw(signer.sign_transaction(tx).raw_transaction, label=call.label)

    def transaction(self, tx_hash: str) -> dict[str, Any] | None:
        """A transaction by hash (pending or mined), or None when the chain does not know it."""
        self.ensure_checked()
        return self.rpc("eth_getTransactionByHash", [tx_hash])

    def wait_receipt(self, tx_hash: str, *, label: str) -> TxReceipt:
        """The receipt of ``tx_hash`` once mined (whatever its status)."""
        try:
            return self.w3.eth.wait_for_transaction_receipt(
                tx_hash,  # type: ignore[arg-type]
                timeout=max(self.timeout * 6, 60),
            )
        except TimeExhausted as exc:
            raise TransactionRevertedError(
                f"The {label} transaction {tx_hash} was not mined within "
                f"{max(self.timeout * 6, 60):.0f} s.",
                fix="check that the chain is producing blocks, then report the hash again.",
            ) from exc
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise self._unreachable(exc) from exc

    def transfer_eth(self, signer: LocalAccount, to: str, value: int) -> TxResult:
        self.ensure_checked()
        tx = {
            "to": Web3.to_checksum_address(to),
            "value": value,
            "gas": 21_000,
            "nonce": self.w3.eth.get_transaction_count(signer.address, "pending"),
            "chainId": self.expected_chain_id,
            **self._fees(),
        }
        return self.send_raw(signer.sign_transaction(tx).raw_transaction, label="transfer ETH")

    def deploy(
        self, abi: list[dict[str, Any]], bytecode: str, signer: LocalAccount, *args: Any
    ) -> tuple[str, TxResult]:
        """Deploy a contract; returns its address and the deployment transaction."""
        factory = self.w3.eth.contract(abi=abi, bytecode=bytecode)
        ctor = factory.constructor(*args)
        self.ensure_checked()
        try:
            gas = ctor.estimate_gas({"from": signer.address})
            tx = ctor.build_transaction(
                {
                    "from": signer.address,
                    "gas": int(gas * 1.2) + 50_000,
                    "nonce": self.w3.eth.get_transaction_count(signer.address, "pending"),
                    "chainId": self.expected_chain_id,
                    **self._fees(),
                }
            )
        except (ContractLogicError, Web3RPCError) as exc:
            raise self._reverted(None, exc) from exc
        result = self.send_raw(signer.sign_transaction(tx).raw_transaction, label="deploy")
        return str(result.receipt["contractAddress"]), result

    def send_raw(self, raw: bytes, *, label: str) -> TxResult:
        try:
            tx_hash = self.w3.eth.send_raw_transaction(raw)
            receipt = self.w3.eth.wait_for_transaction_receipt(
                tx_hash, timeout=max(self.timeout * 6, 60)
            )
        except Web3RPCError as exc:
            raise self._reverted(None, exc, label=label) from exc
        except TimeExhausted as exc:
            raise TransactionRevertedError(
                f"The {label} transaction was not mined within {self.timeout * 6:.0f} s.",
                fix="check that the chain is producing blocks (`openledger chain status`).",
            ) from exc
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise self._unreachable(exc) from exc
        if receipt["status"] != 1:
            raise TransactionRevertedError(
                f"The {label} transaction {tx_hash.hex()} reverted on chain.",
                reason="reverted",
                fix="inspect the transaction; the state changed between estimate and send.",
            )
        return TxResult(tx_hash="0x" + tx_hash.hex().removeprefix("0x"), receipt=receipt)

    def _fees(self) -> dict[str, int]:
        block = self.w3.eth.get_block("latest")
        base = block.get("baseFeePerGas")
        if base is None:
            return {"gasPrice": int(self.w3.eth.gas_price)}
        tip = int(self.w3.eth.max_priority_fee)
        return {"maxFeePerGas": 2 * int(base) + tip, "maxPriorityFeePerGas": tip}

    def _reverted(
        self, fn: ContractFunction | None, exc: Exception, *, label: str | None = None
    ) -> TransactionRevertedError:
        reason = _revert_reason(exc)
        what = label or (fn.fn_name if fn is not None else "transaction")
        for hint, fix in _FUNDS_HINTS.items():
            if hint in reason.lower():
                return InsufficientFundsError(
                    f"{what} failed: {reason}.", reason=reason, field=what, fix=fix
                )
        return TransactionRevertedError(
            f"{what} was rejected by the chain: {reason}.",
            reason=reason,
            field=what,
            fix="check the arguments against the rule named in the reason.",
        )
