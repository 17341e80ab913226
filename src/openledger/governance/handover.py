"""Hand an existing deployment to governance (`openledger gov handover`)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from eth_account.signers.local import LocalAccount

from openledger.chain.client import ChainClient
from openledger.chain.deploy import (
    DEVNET_GOVERNANCE,
    MAINNET_GOVERNANCE,
    Addresses,
    Contracts,
    deploy_governance,
    handover,
)
from openledger.config import DEVNET_CHAIN_ID
from openledger.errors import AuthError


def hand_over(
    client: ChainClient, owner: LocalAccount, addresses_path: Path, *, fund: int = 0
) -> list[str]:
    """Deploy Governor, Timelock and Grants if this deployment lacks them (recorded in the
    addresses file), then make the Timelock the treasury and the owner of ProtocolParams,
    RewardDistributor and Grants. Returns the steps done; running it again does nothing."""
    addresses = Addresses.load(addresses_path)
    contracts = Contracts(client, addresses)
    done: list[str] = []
    if contracts.governor is None:
        owner_now = contracts.params.owner()
        if owner_now != owner.address:
            raise AuthError(
                f"ProtocolParams is owned by {owner_now}, not {owner.address}.",
                field="account",
                value=owner.address,
                fix="run the handover as the current owner (the deployer, usually operator).",
            )
        config = (
            DEVNET_GOVERNANCE if client.expected_chain_id == DEVNET_CHAIN_ID else MAINNET_GOVERNANCE
        )
        gas = dict(addresses.gas)
        new = deploy_governance(client, owner, addresses.contracts, config, gas)
        addresses = replace(addresses, contracts={**addresses.contracts, **new}, gas=gas)
        addresses.save(addresses_path)
        contracts = Contracts(client, addresses)
        done.append("deployed " + ", ".join(f"{k} at {v}" for k, v in new.items()))
    tl = contracts.timelock.address  # type: ignore[union-attr]
    if contracts.params.owner() not in (owner.address, tl):
        raise AuthError(
            f"ProtocolParams is owned by {contracts.params.owner()}, not {owner.address}.",
            field="account",
            value=owner.address,
            fix="run the handover as the current owner.",
        )
    done += handover(contracts, owner, fund=fund)
    return done
