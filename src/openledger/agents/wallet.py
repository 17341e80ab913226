"""An agent's own account: the wallet whose inference credit pays for the calls it makes
(docs/agents.md).

Its key is derived from the node operator's key, the chain id and the agent's id
(``keccak256(operator key || "openledger-agent-wallet" || chain id || agent id)``), so the
operator's key alone recovers every agent wallet of the node; it is also kept, encrypted with
the operator's password, as a keystore in the node home (``keystore/agents/ID.json``), like
the operator's own. The node needs no key to spend the wallet's credit (inference is charged
off chain and collected by the operator); the key withdraws unspent credit from the escrow.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from eth_utils import keccak

from openledger.chain.accounts import create_keystore, keystore_address, load_keystore

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
DOMAIN = b"openledger-agent-wallet"


def derive_key(operator_key: bytes, chain_id: int, agent_id: int) -> bytes:
    """The agent's private key (32 bytes, a valid secp256k1 scalar)."""
    seed = operator_key + DOMAIN + chain_id.to_bytes(32, "big") + agent_id.to_bytes(32, "big")
    key = keccak(seed)
    while not 0 < int.from_bytes(key, "big") < SECP256K1_N:  # 2**-128 likely: never, but
        key = keccak(key)  # a key must be a valid scalar
    return key


class AgentWallets:
    """The agent wallets of one node home."""

    def __init__(
        self,
        keystore_dir: Path,
        chain_id: int,
        operator: Callable[[], LocalAccount],
        password: Callable[[], str],
    ) -> None:
        self.dir = keystore_dir / "agents"
        self.chain_id = chain_id
        self._operator = operator
        self._password = password

    def check(self) -> None:
        """Open the operator's key now (a wrong password fails before anything is sent)."""
        self._operator()

    def path(self, agent_id: int) -> Path:
        return self.dir / f"{agent_id}.json"

    def ensure(self, agent_id: int) -> str:
        """The wallet of agent ``agent_id``: its keystore written on first use; its address."""
        path = self.path(agent_id)
        if path.exists():
            return keystore_address(path)
        operator = self._operator()
        key = derive_key(bytes(operator.key), self.chain_id, agent_id)
        self.dir.mkdir(parents=True, exist_ok=True)
        return create_keystore(path, self._password(), "0x" + key.hex())

    def signer(self, agent_id: int) -> LocalAccount:
        """The wallet's key (opened with the operator's password)."""
        return load_keystore(self.path(agent_id), self._password())
