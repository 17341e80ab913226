"""Deploying the contract set and the addresses file that records where it lives."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from eth_account.signers.local import LocalAccount

from openledger.chain import bindings as b
from openledger.chain.client import ChainClient
from openledger.chain.compile import CONTRACT_NAMES, compile_all
from openledger.errors import ConfigError, ContractNotDeployedError
from openledger.fsutil import write_atomic


@dataclass(frozen=True)
class Addresses:
    """Where the contracts live on one chain."""

    chain_id: int
    contracts: dict[str, str]
    deployed_block: int = 0
    deployer: str = ""
    gas: dict[str, int] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        write_atomic(path, json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: Path) -> Addresses:
        if not path.exists():
            raise ContractNotDeployedError(
                f"No addresses file at {path}: the contracts are not deployed for this node.",
                field="OPENLEDGER_ADDRESSES",
                value=str(path),
                fix="run `openledger chain up` to start the devnet and deploy, or point "
                "OPENLEDGER_ADDRESSES at the addresses file of your network.",
            )
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            addresses = cls(**doc)
        except (json.JSONDecodeError, TypeError) as exc:
            raise ConfigError(
                f"The addresses file {path} is malformed ({exc}).",
                field="OPENLEDGER_ADDRESSES",
                value=str(path),
                fix='it must be JSON: {"chain_id": 1, "contracts": {"OpenToken": "0x..", ...}}.',
            ) from exc
        missing = [n for n in CONTRACT_NAMES if n not in addresses.contracts]
        if missing:
            raise ConfigError(
                f"The addresses file {path} lacks {', '.join(missing)}.",
                field="contracts",
                value=", ".join(missing),
                fix="add their addresses, or redeploy with `openledger chain deploy`.",
            )
        return addresses


class Contracts:
    """The deployed set, bound to a client: ``.token``, ``.params``, ``.datanets``, ..."""

    def __init__(self, client: ChainClient, addresses: Addresses, *, verify: bool = True) -> None:
        if addresses.chain_id != client.expected_chain_id:
            raise ConfigError(
                f"The addresses file is for chain id {addresses.chain_id}, the node expects "
                f"{client.expected_chain_id}.",
                field="chain_id",
                value=addresses.chain_id,
                fix="use the addresses file of this network or fix OPENLEDGER_CHAIN_ID.",
            )
        self.client = client
        self.addresses = addresses
        artifacts = compile_all()
        if verify:
            for name in CONTRACT_NAMES:
                client.require_code(name, addresses.contracts[name])

        def bind(cls: type[b._Binding]):  # noqa: ANN202
            return cls(client, addresses.contracts[cls.name], artifacts[cls.name].abi)

        self.token: b.OpenToken = bind(b.OpenToken)
        self.params: b.ProtocolParams = bind(b.ProtocolParams)
        self.datanets: b.DatanetRegistry = bind(b.DatanetRegistry)
        self.models: b.ModelRegistry = bind(b.ModelRegistry)
        self.escrow: b.InferenceEscrow = bind(b.InferenceEscrow)
        self.rewards: b.RewardDistributor = bind(b.RewardDistributor)

    def all(self) -> list[b._Binding]:
        return [self.token, self.params, self.datanets, self.models, self.escrow, self.rewards]


def deploy_all(
    client: ChainClient, deployer: LocalAccount, *, treasury: str, operator: str
) -> Addresses:
    """Deploy the full set in the documented order; the deployer holds the initial supply."""
    artifacts = compile_all()
    start_block = client.block_number()
    addresses: dict[str, str] = {}
    gas: dict[str, int] = {}

    def deploy(name: str, *args: object) -> str:
        art = artifacts[name]
        address, result = client.deploy(art.abi, art.bytecode, deployer, *args)
        addresses[name] = address
        gas[name] = result.gas_used
        return address

    token = deploy("OpenToken", deployer.address)
    params = deploy("ProtocolParams", treasury)
    deploy("DatanetRegistry", token, params)
    deploy("ModelRegistry")
    distributor = deploy("RewardDistributor", token, params, operator)
    deploy("InferenceEscrow", token, params, operator, distributor)
    return Addresses(
        chain_id=client.expected_chain_id,
        contracts=addresses,
        deployed_block=start_block + 1,
        deployer=deployer.address,
        gas=gas,
    )
