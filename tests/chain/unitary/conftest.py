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

from .contract_helpers import System, deploy_system


@pytest.fixture(scope="session")
def factories() -> dict[str, Any]:
    """Compiled deployers for every contract (boa resolves snekmate from site-packages)."""
    return {name: boa.load_partial(str(CONTRACTS_DIR / f"{name}.vy")) for name in CONTRACT_NAMES}


@pytest.fixture(scope="session")
def system(factories: dict[str, Any]) -> System:
    return deploy_system(factories)


@pytest.fixture(autouse=True)
def _isolate(system: System) -> Iterator[None]:
    """Roll every test's state changes (and time travel) back."""
    with boa.env.anchor():
        yield


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
