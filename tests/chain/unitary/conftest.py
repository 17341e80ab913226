"""Fixtures for the contract unit tests: the full contract set in titanoboa's in-process EVM.

The set is deployed once per session in the documented order (docs/contracts.md) at a
fixed start timestamp from deterministic addresses; every test runs inside
``boa.env.anchor()``, so its state changes (and time travel) are rolled back afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boa
import pytest

from openledger.chain.compile import CONTRACT_NAMES, CONTRACTS_DIR

from .contract_helpers import FALSE_TOKEN_SOURCE, System, deploy_system


@pytest.fixture(scope="session")
def factories() -> dict[str, Any]:
    """Compiled deployers for every contract (boa resolves snekmate from site-packages)."""
    return {name: boa.load_partial(str(CONTRACTS_DIR / f"{name}.vy")) for name in CONTRACT_NAMES}


@pytest.fixture(scope="session")
def system(factories: dict[str, Any]) -> System:
    return deploy_system(factories)


@pytest.fixture(autouse=True)
def _isolate(system: System) -> Iterator[None]:
    """Roll every test's state changes (and time travel) back.

    boa's debug traces (which slots were written at which address, used to print storage
    in revert messages) are not part of the anchor; they are restored too, so a contract a
    test deploys at an address that another test used for a different contract is not
    printed with the other contract's slots.
    """
    env = boa.env
    traces = (dict(env.sha3_trace), {k: set(v) for k, v in env.sstore_trace.items()})
    with env.anchor():
        yield
    env.sha3_trace, env.sstore_trace = traces


@pytest.fixture
def token(system: System) -> Any:
    return system.token


@pytest.fixture
def params(system: System) -> Any:
    return system.params


@pytest.fixture
def datanets(system: System) -> Any:
    return system.datanets


@pytest.fixture
def models(system: System) -> Any:
    return system.models


@pytest.fixture
def distributor(system: System) -> Any:
    return system.distributor


@pytest.fixture
def escrow(system: System) -> Any:
    return system.escrow


@pytest.fixture(scope="session")
def false_token_factory() -> Any:
    return boa.loads_partial(FALSE_TOKEN_SOURCE, name="FalseToken")


@pytest.fixture
def false_token(false_token_factory: Any) -> Any:
    """A token whose transfers return False once ``set_fail(True)`` was called."""
    return false_token_factory.deploy()
