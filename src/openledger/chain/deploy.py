"""Deploying the contract set and the addresses file that records where it lives."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from eth_account.signers.local import LocalAccount

from openledger.chain import bindings as b
from openledger.chain.client import ChainClient
from openledger.chain.compile import (
    AGENT_CONTRACT_NAMES,
    CONTRACT_NAMES,
    CORE_CONTRACT_NAMES,
    GOVERNANCE_CONTRACT_NAMES,
    PROVIDER_CONTRACT_NAMES,
    compile_all,
)
from openledger.config import DEVNET_CHAIN_ID
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
        missing = [n for n in CORE_CONTRACT_NAMES if n not in addresses.contracts]
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
                if name in addresses.contracts:
                    client.require_code(name, addresses.contracts[name])

        def bind(cls: type[b._Binding]):
            return cls(client, addresses.contracts[cls.name], artifacts[cls.name].abi)

        self.token: b.OpenToken = bind(b.OpenToken)
        self.params: b.ProtocolParams = bind(b.ProtocolParams)
        self.datanets: b.DatanetRegistry = bind(b.DatanetRegistry)
        self.models: b.ModelRegistry = bind(b.ModelRegistry)
        self.escrow: b.InferenceEscrow = bind(b.InferenceEscrow)
        self.rewards: b.RewardDistributor = bind(b.RewardDistributor)
        # Governance (None on a deployment made before it existed: `openledger gov handover`).
        has_gov = all(n in addresses.contracts for n in GOVERNANCE_CONTRACT_NAMES)
        self.governor: b.Governor | None = bind(b.Governor) if has_gov else None
        self.timelock: b.Timelock | None = bind(b.Timelock) if has_gov else None
        self.grants: b.Grants | None = bind(b.Grants) if has_gov else None
        # Agents (None on a deployment made before they existed: `openledger agent deploy`).
        has_agents = all(n in addresses.contracts for n in AGENT_CONTRACT_NAMES)
        self.agents: b.AgentRegistry | None = bind(b.AgentRegistry) if has_agents else None
        # Compute providers (None on a deployment made before them: deploy_provider_registry).
        has_providers = all(n in addresses.contracts for n in PROVIDER_CONTRACT_NAMES)
        self.providers: b.ProviderRegistry | None = (
            bind(b.ProviderRegistry) if has_providers else None
        )

    def all(self) -> list[b._Binding]:
        core = [self.token, self.params, self.datanets, self.models, self.escrow, self.rewards]
        later = (self.governor, self.timelock, self.grants, self.agents, self.providers)
        return core + [g for g in later if g is not None]


@dataclass(frozen=True)
class GovernanceConfig:
    """The governance settings a deployment starts with (all governable afterwards).

    ``MAINNET`` suits a real network; ``DEVNET`` is the same with short times, so that the
    embedded devnet can run a proposal through in minutes (tests move its clock instead).
    The ProviderRegistry's starting minimum stake and exit delay are here too (its owner,
    the Timelock after :func:`handover`, changes them).
    """

    voting_delay: int = 86_400  # 1 day from proposing to the snapshot
    voting_period: int = 5 * 86_400  # 5 days of voting
    proposal_threshold: int = 100_000 * 10**18  # 100,000 OPEN of delegated votes (0.01 %)
    quorum_bps: int = 400  # 4 % of the supply at the snapshot
    timelock_delay: int = 2 * 86_400  # 2 days between queue and execute
    provider_min_stake: int = 1_000 * 10**18  # 1,000 OPEN to register as a compute provider
    # 14 days from a provider's exit to its withdrawal: longer than a slashing proposal takes
    # (voting delay + voting period + timelock = 8 days), so an exit cannot outrun a slash
    provider_exit_delay: int = 14 * 86_400


MAINNET_GOVERNANCE = GovernanceConfig()
DEVNET_GOVERNANCE = GovernanceConfig(
    voting_delay=60,
    voting_period=600,
    proposal_threshold=1_000 * 10**18,
    quorum_bps=400,
    timelock_delay=120,
    provider_min_stake=100 * 10**18,
    provider_exit_delay=120,
)


def default_governance(client: ChainClient) -> GovernanceConfig:
    """``DEVNET_GOVERNANCE`` on the devnet's chain id, else ``MAINNET_GOVERNANCE``."""
    return DEVNET_GOVERNANCE if client.expected_chain_id == DEVNET_CHAIN_ID else MAINNET_GOVERNANCE


def deploy_governance(
    client: ChainClient,
    deployer: LocalAccount,
    contracts: dict[str, str],
    config: GovernanceConfig,
    gas: dict[str, int],
) -> dict[str, str]:
    """Deploy Governor, Timelock and Grants next to the core contracts in ``contracts``.

    The Governor is deployed first (the Timelock names it as its only proposer), then the
    Timelock, then the Governor is pointed at the Timelock (once, by the deployer), then
    Grants (owned by the deployer until :func:`handover`).
    """
    artifacts = compile_all()
    out: dict[str, str] = {}

    def deploy(name: str, *args: object) -> str:
        art = artifacts[name]
        address, result = client.deploy(art.abi, art.bytecode, deployer, *args)
        out[name] = address
        gas[name] = result.gas_used
        return address

    c = config
    governor = deploy(
        "Governor",
        contracts["OpenToken"],
        c.voting_delay,
        c.voting_period,
        c.proposal_threshold,
        c.quorum_bps,
    )
    timelock = deploy("Timelock", c.timelock_delay, governor)
    gov = b.Governor(client, governor, artifacts["Governor"].abi)
    gas["Governor.initTimelock"] = gov.init_timelock(deployer, timelock).gas_used
    deploy("Grants", contracts["OpenToken"], contracts["ProtocolParams"])
    return out


def deploy_agents(
    client: ChainClient, deployer: LocalAccount, contracts: dict[str, str], gas: dict[str, int]
) -> dict[str, str]:
    """Deploy AgentRegistry next to the ModelRegistry in ``contracts`` (it has no owner)."""
    art = compile_all()["AgentRegistry"]
    address, result = client.deploy(art.abi, art.bytecode, deployer, contracts["ModelRegistry"])
    gas["AgentRegistry"] = result.gas_used
    return {"AgentRegistry": address}


def deploy_providers(
    client: ChainClient,
    deployer: LocalAccount,
    contracts: dict[str, str],
    gas: dict[str, int],
    *,
    config: GovernanceConfig | None = None,
) -> dict[str, str]:
    """Deploy ProviderRegistry next to the OpenToken and ProtocolParams in ``contracts``,
    owned by ``deployer`` (until :func:`handover`). Its minimum stake and exit delay come
    from ``config``, by default the devnet's on the devnet chain id, else the mainnet's."""
    c = config or default_governance(client)
    art = compile_all()["ProviderRegistry"]
    address, result = client.deploy(
        art.abi,
        art.bytecode,
        deployer,
        contracts["OpenToken"],
        contracts["ProtocolParams"],
        c.provider_min_stake,
        c.provider_exit_delay,
    )
    gas["ProviderRegistry"] = result.gas_used
    return {"ProviderRegistry": address}


def deploy_provider_registry(
    client: ChainClient, deployer: LocalAccount, addresses_path: Path
) -> str | None:
    """Deploy ProviderRegistry next to an existing deployment that lacks it and record it in
    the addresses file (written atomically); returns its address, or None when the
    deployment already has one (running it again does nothing).

    When the deployment was already handed to governance (its Timelock owns
    ProtocolParams), the new registry is handed to the Timelock too, as a fresh deployment
    would be; otherwise ``deployer`` owns it until ``openledger gov handover``.
    """
    from dataclasses import replace

    addresses = Addresses.load(addresses_path)
    if all(n in addresses.contracts for n in PROVIDER_CONTRACT_NAMES):
        return None
    gas = dict(addresses.gas)
    new = deploy_providers(client, deployer, addresses.contracts, gas)
    addresses = replace(addresses, contracts={**addresses.contracts, **new}, gas=gas)
    addresses.save(addresses_path)  # recorded before anything else can fail
    contracts = Contracts(client, addresses)
    tl, registry = contracts.timelock, contracts.providers
    if tl is not None and registry is not None and contracts.params.owner() == tl.address:
        registry.transfer_ownership(deployer, tl.address)
    return new["ProviderRegistry"]


def handover(contracts: Contracts, owner: LocalAccount, *, fund: int = 0) -> list[str]:
    """Hand an existing deployment to governance; returns what was done, in order.

    The Timelock becomes the treasury (``ProtocolParams.setTreasury``) and the owner of
    ProtocolParams, RewardDistributor, Grants and (where deployed) ProviderRegistry, whose
    minimum stake, exit delay and slashing are then decided by proposals; ``fund`` wei of
    OPEN move from ``owner`` to the Timelock (the treasury's opening balance). Steps already
    done are skipped, so a handover interrupted half-way can simply be run again.
    """
    if contracts.timelock is None or contracts.governor is None or contracts.grants is None:
        raise ContractNotDeployedError(
            "This deployment has no Governor, Timelock and Grants.",
            field="addresses",
            fix="run `openledger gov handover`, which deploys them first.",
        )
    tl = contracts.timelock.address
    done: list[str] = []
    if fund:
        contracts.token.transfer(owner, tl, fund)
        done.append(f"moved {fund} wei of OPEN to the Timelock")
    if contracts.params.snapshot().treasury != tl:
        contracts.params.set_treasury(owner, tl)
        done.append("ProtocolParams.treasury = Timelock")
    owned = (contracts.params, contracts.rewards, contracts.grants, contracts.providers)
    for binding in owned:
        if binding is not None and binding.owner() != tl:  # type: ignore[attr-defined]
            binding.transfer_ownership(owner, tl)  # type: ignore[attr-defined]
            done.append(f"{binding.name} owner = Timelock")
    return done


def deploy_all(
    client: ChainClient,
    deployer: LocalAccount,
    *,
    treasury: str,
    operator: str,
    governance: GovernanceConfig = MAINNET_GOVERNANCE,
    hand_over: bool = True,
) -> Addresses:
    """Deploy the full set in the documented order; the deployer holds the initial supply.

    With ``hand_over`` (the default) the Timelock is the treasury and owns ProtocolParams,
    RewardDistributor, Grants and ProviderRegistry from the end of the deployment
    (``treasury`` is then only the constructor's placeholder); without it the deployer keeps
    them until :func:`handover` (``openledger gov handover``).
    """
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
    # the distributor first: the DatanetRegistry pays access fees to it (docs/contracts.md)
    distributor = deploy("RewardDistributor", token, params, operator)
    deploy("DatanetRegistry", token, params, distributor)
    deploy("ModelRegistry")
    deploy("InferenceEscrow", token, params, operator, distributor)
    addresses.update(deploy_governance(client, deployer, addresses, governance, gas))
    addresses.update(deploy_agents(client, deployer, addresses, gas))
    addresses.update(deploy_providers(client, deployer, addresses, gas, config=governance))
    result = Addresses(
        chain_id=client.expected_chain_id,
        contracts=addresses,
        deployed_block=start_block + 1,
        deployer=deployer.address,
        gas=gas,
    )
    if hand_over:
        handover(Contracts(client, result, verify=False), deployer)
    return result
