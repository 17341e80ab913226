"""ProviderRegistry on anvil: the devnet's registry (devnet defaults, owned by the Timelock)
through the typed binding, and deploy_provider_registry on deployments made before it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from openledger.chain.deploy import DEVNET_GOVERNANCE as CFG
from openledger.chain.deploy import Addresses, Contracts, deploy_all, deploy_provider_registry
from openledger.errors import TransactionRevertedError
from openledger.governance.devnet import advance_devnet_clock, as_timelock
from openledger.governance.handover import hand_over
from openledger.node import Node
from openledger.units import OPEN

pytestmark = pytest.mark.anvil

URL = "http://127.0.0.1:8100"


def test_the_devnet_registry_through_the_binding(chain: Node) -> None:
    c = chain.contracts
    reg = c.providers
    assert reg is not None and reg in c.all()
    assert (
        (reg.min_stake(), reg.exit_delay())
        == (100 * OPEN, 120)
        == (CFG.provider_min_stake, CFG.provider_exit_delay)
    )
    assert reg.owner() == c.timelock.address  # handed to governance at deploy
    alice, bob = chain.accounts.signer("alice"), chain.accounts.signer("bob")
    c.token.approve(alice, reg.address, 200 * OPEN)
    with pytest.raises(TransactionRevertedError, match="stake below minimum"):
        reg.register(alice, URL, [1, 2], 99 * OPEN)
    result = reg.register(alice, URL, [1, 2], 150 * OPEN)
    (ev,) = reg.events(result, "ProviderRegistered")
    assert (ev["provider"], ev["stake"], list(ev["model_ids"])) == (
        alice.address,
        150 * OPEN,
        [1, 2],
    )
    p = reg.provider(alice.address)
    assert (p.address, p.endpoint, p.stake, p.active, p.unlock_at, p.model_ids) == (
        alice.address,
        URL,
        150 * OPEN,
        True,
        0,
        (1, 2),
    )
    assert p.registered_at > 0 and reg.serves(alice.address, 2) and not reg.serves(bob.address, 2)
    reg.add_stake(alice, 50 * OPEN)
    reg.set_models(alice, [3])
    reg.set_endpoint(alice, URL + "/v2")
    p = reg.provider(alice.address)
    assert (p.stake, p.model_ids, p.endpoint) == (200 * OPEN, (3,), URL + "/v2")
    assert not reg.serves(alice.address, 1) and reg.total_staked() == 200 * OPEN
    with pytest.raises(TransactionRevertedError, match="caller is not the owner"):
        reg.slash(alice, alice.address, OPEN, "self")
    as_timelock(c, reg.contract.functions.slash(alice.address, 30 * OPEN, "bad receipt"))
    assert reg.provider(alice.address).stake == 170 * OPEN
    reg.exit(alice)
    assert not reg.serves(alice.address, 3) and reg.providers(active_only=True) == []
    with pytest.raises(TransactionRevertedError, match="stake locked"):
        reg.withdraw(alice)
    advance_devnet_clock(chain.client, 120)
    before = c.token.balance_of(alice.address)
    reg.withdraw(alice)
    assert c.token.balance_of(alice.address) == before + 170 * OPEN
    (gone,) = reg.providers()  # every address that ever registered, as it stands now
    assert (gone.address, gone.registered_at, gone.model_ids) == (alice.address, 0, ())
    assert reg.provider_count() == 1 and reg.provider_at(0) == alice.address


def test_deploy_on_a_deployment_made_before_it(chain: Node, tmp_path: Path) -> None:
    """An older deployment (no ProviderRegistry) gets one, recorded in its addresses file;
    idempotent. Handed over already: the Timelock owns it at once; not yet: the deployer
    does until `gov handover`."""
    op = chain.accounts.signer("operator")
    handed = tmp_path / "handed.json"
    full = Addresses.load(chain.settings.addresses_path)
    old = {k: v for k, v in full.contracts.items() if k != "ProviderRegistry"}
    replace(full, contracts=old).save(handed)
    before = Contracts(chain.client, Addresses.load(handed))
    assert before.providers is None and all(b.name != "ProviderRegistry" for b in before.all())
    address = deploy_provider_registry(chain.client, op, handed)
    assert address is not None and address != full.contracts["ProviderRegistry"]
    doc = Addresses.load(handed)
    assert doc.contracts["ProviderRegistry"] == address and doc.gas["ProviderRegistry"] > 0
    c = Contracts(chain.client, doc)
    assert c.providers is not None and c.providers.owner() == c.timelock.address
    assert c.providers.min_stake() == 100 * OPEN  # the devnet's defaults (by chain id)
    assert deploy_provider_registry(chain.client, op, handed) is None

    # a deployment not yet handed over: the deployer owns it; `gov handover` moves it
    mine = deploy_all(
        chain.client, op, treasury=op.address, operator=op.address, governance=CFG, hand_over=False
    )
    path = tmp_path / "mine.json"
    replace(
        mine, contracts={k: v for k, v in mine.contracts.items() if k != "ProviderRegistry"}
    ).save(path)
    assert deploy_provider_registry(chain.client, op, path) is not None
    c = Contracts(chain.client, Addresses.load(path))
    assert c.providers.owner() == op.address
    c.providers.set_exit_delay(op, 60)
    assert c.providers.exit_delay() == 60
    assert "ProviderRegistry owner = Timelock" in hand_over(chain.client, op, path)
    assert c.providers.owner() == c.timelock.address
