"""A write split into "build the call" and "sign and send": one code path for the node's
own keys and for a browser wallet.

A service prepares a :class:`Plan`: the checks are done, the contract calls are built
(``Call``: to, data, value) and ``finish`` records the off-chain side from the mined
receipts. ``Plan.run(signer)`` sends the calls with a key the node holds; a wallet sends the
same calls itself and :func:`check_sent` checks each reported transaction (mined, succeeded,
sent by the account, to the expected contract with the expected calldata) before ``finish``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from openledger.chain.addr import to_checksum_address
from openledger.chain.tx import TxResult
from openledger.errors import AuthError, TransactionRevertedError, ValidationError

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from openledger.chain.client import ChainClient


@dataclass(frozen=True)
class Call:
    """One contract call, ready to sign: ``label`` names it in messages (``approve``, …)."""

    to: str
    data: str
    label: str
    contract: str = ""
    value: int = 0

    def unsigned(self, sender: str, chain_id: int) -> dict[str, Any]:
        """The transaction as ``eth_sendTransaction`` takes it."""
        return {
            "from": sender,
            "to": self.to,
            "data": self.data,
            "value": hex(self.value),
            "chainId": hex(chain_id),
            "label": self.label,
            "contract": self.contract,
        }


Finish = Callable[[list["TxResult"], str | None], dict[str, Any]]


@dataclass(frozen=True)
class Resume:
    """How to finish a plan in another process or after a restart: the service method
    ``kind`` (``"datanets.finish_create"``…) called with ``args`` (JSON), ``payload`` (bytes
    such as uploaded files), the mined results and the signature. A plan's own ``finish``
    is that same call, so the node's keys and a wallet take one code path."""

    kind: str
    args: dict[str, Any]
    payload: bytes | None = None

    def __post_init__(self) -> None:
        if json.loads(json.dumps(self.args)) != self.args:
            raise TypeError(f"the arguments of {self.kind} do not survive JSON")


def pack(parts: list[bytes]) -> bytes:
    """Several byte strings as one payload (each behind its 8-byte length)."""
    return b"".join(len(p).to_bytes(8, "big") + p for p in parts)


def unpack(payload: bytes | None) -> list[bytes]:
    parts, i, data = [], 0, payload or b""
    while i < len(data):
        n = int.from_bytes(data[i : i + 8], "big")
        parts.append(data[i + 8 : i + 8 + n])
        i += 8 + n
    return parts


def resumable(
    kind: str,
    method: Callable[..., dict[str, Any]],
    args: dict[str, Any],
    payload: bytes | None = None,
) -> tuple[Finish, Resume]:
    """A plan's ``finish`` and ``resume`` for ``method(args, payload, results, signature)``."""
    resume = Resume(kind, args, payload)

    def finish(results: list[TxResult], signature: str | None) -> dict[str, Any]:
        return method(resume.args, resume.payload, results, signature)

    return finish, resume


@dataclass
class Plan:
    """Calls to send in order from ``sender``, then ``finish(results, signature)``.

    ``message``: bytes the account signs (EIP-191 personal_sign) besides, e.g. a
    contribution's manifest; ``finish`` gets the signature."""

    client: ChainClient
    sender: str
    calls: list[Call]
    finish: Finish
    message: bytes | None = None
    what: str = field(default="")
    resume: Resume | None = None

    def run(self, signer: LocalAccount) -> dict[str, Any]:
        """Sign and send with a key the node holds (each call after the one before is mined)."""
        if signer.address != self.sender:
            raise AuthError(
                f"This write was prepared for {self.sender}, not {signer.address}.",
                field="account",
                value=signer.address,
            )
        signature = None
        if self.message is not None:
            from eth_account.messages import encode_defunct

            signed = signer.sign_message(encode_defunct(primitive=self.message))
            signature = "0x" + bytes(signed.signature).hex()
        results = [self.client.send_call(c, signer) for c in self.calls]
        return self.finish(results, signature)

    def check_signature(self, signature: str | None) -> None:
        """The signature over ``message`` must recover the sender."""
        if self.message is None:
            return
        from eth_account import Account
        from eth_account.messages import encode_defunct

        try:
            who = Account.recover_message(
                encode_defunct(primitive=self.message), signature=signature or ""
            )
        except Exception as exc:  # malformed signature
            raise AuthError(
                f"The signature is malformed ({exc}).",
                field="signature",
                value=signature,
                fix="sign the message with your wallet.",
            ) from exc
        if who != self.sender:
            raise AuthError(
                f"The signature is {who}'s, not {self.sender}'s.",
                field="signature",
                value=signature,
                fix="sign with the account you signed in with.",
            )


def build(binding: Any, fn: str, *args: Any) -> Call:
    """``fn(*args)`` on a contract binding, encoded (no key, no chain access)."""
    data = binding.contract.encode_abi(fn, args=list(args))
    return Call(to=binding.address, data=data, label=fn, contract=binding.name)


def approval(token: Any, owner: str, spender: str, amount: int) -> list[Call]:
    """``[approve(spender, amount)]`` on ``token`` when ``owner``'s allowance for ``spender``
    is short of ``amount``, else no call: the first step of a plan that moves OPEN."""
    if token.allowance(owner, spender) >= amount:
        return []
    return [build(token, "approve", spender, amount)]


def _hex(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    return str(value) if str(value).startswith("0x") else "0x" + str(value)


def check_sent(client: ChainClient, tx_hash: str, call: Call, sender: str) -> TxResult:
    """The mined transaction ``tx_hash``, once it is shown to be ``call`` sent by ``sender``
    and to have succeeded; otherwise an error that says which of these failed."""
    what = f"The {call.label} transaction {tx_hash}"
    if not re.fullmatch(r"0x[0-9a-fA-F]{64}", tx_hash or ""):
        raise ValidationError(
            f"{tx_hash!r} is not a transaction hash.",
            field="tx_hash",
            value=tx_hash,
            fix="report the 0x… hash your wallet returned.",
        )
    tx = client.transaction(tx_hash)
    if tx is None:
        raise ValidationError(
            f"{what} is not known to the chain.",
            field="tx_hash",
            value=tx_hash,
            fix="send it from your wallet first, then report its hash.",
        )
    if to_checksum_address(tx["from"]) != to_checksum_address(sender):
        raise AuthError(
            f"{what} was sent by {to_checksum_address(tx['from'])}, not by the signed-in "
            f"account {sender}.",
            field="tx_hash",
            value=tx_hash,
            fix="send it from the account you signed in with.",
        )
    to = to_checksum_address(tx["to"]) if tx.get("to") else None
    data = _hex(tx.get("input", tx.get("data", b""))).lower()
    if to != to_checksum_address(call.to) or data != call.data.lower():
        where = f"to {to}" if to != to_checksum_address(call.to) else "with other calldata"
        raise ValidationError(
            f"{what} was sent {where}, not the prepared {call.label} call to the "
            f"{call.contract or 'contract'} at {call.to}.",
            field="tx_hash",
            value=tx_hash,
            fix="send the transaction the page prepared, unchanged.",
        )
    value = int(str(tx.get("value") or "0x0"), 16)
    if value != call.value:
        raise ValidationError(
            f"{what} carries {value} wei, not {call.value}.", field="tx_hash", value=tx_hash
        )
    receipt = client.wait_receipt(tx_hash, label=call.label)
    if receipt["status"] != 1:
        raise TransactionRevertedError(
            f"{what} reverted on chain; nothing was recorded.",
            reason="reverted",
            field="tx_hash",
            value=tx_hash,
            fix="check the amounts and the state it relies on, then try again.",
        )
    return TxResult(tx_hash=_hex(tx_hash), receipt=receipt)
