"""ProviderService.directory and detail: the registry's providers with what this gateway had
each one serve and what it earned here (GET /providers and /providers/{address} call them)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from openledger.chain.bindings import Provider
from openledger.providers.catalogue import PulledModels
from openledger.providers.service import ProviderService

ANN = "0x" + "a1" * 20
BEN = "0x" + "b2" * 20
GONE = "0x" + "c3" * 20


class Registry:
    def __init__(self, *providers: Provider) -> None:
        self.by = {p.address: p for p in providers}

    def providers(self) -> list[Provider]:
        return list(self.by.values())

    def provider(self, address: str) -> Provider:
        return self.by[address]


def _provider(address: str, *, active: bool = True, registered_at: int = 100) -> Provider:
    return Provider(address, "http://p:8100", 5, active, 0, registered_at, (1, 2))


def _service(tmp_path: Path, served: dict[str, int], **kw: Any) -> ProviderService:
    registry = Registry(
        _provider(ANN), _provider(BEN, active=False), _provider(GONE, registered_at=0)
    )
    contracts = SimpleNamespace(providers=registry)
    return ProviderService(
        lambda: contracts,
        PulledModels(tmp_path),
        lambda: None,
        served=lambda: served,
        **kw,
    )


def test_the_directory_is_every_registered_provider_with_what_it_served(tmp_path: Path) -> None:
    service = _service(tmp_path, {ANN: 3, GONE: 9})
    items = service.directory()
    assert [(p["address"], p["active"], p["served"]) for p in items] == [
        (ANN, True, 3),
        (BEN, False, 0),  # exited, and never served here
    ]
    assert items[0] == {**service.show(ANN), "served": 3}


def test_a_providers_detail_adds_what_it_served_and_earned_here(tmp_path: Path) -> None:
    asked: list[str] = []

    def earnings(account: str) -> dict[str, Any]:
        asked.append(account)
        return {"earned": "12"}

    service = _service(tmp_path, {BEN: 2}, earnings=earnings)
    doc = service.detail(BEN)
    assert doc == {**service.show(BEN), "served": 2, "earnings": {"earned": "12"}}
    assert service.detail(ANN)["served"] == 0
    assert asked == [BEN, ANN]


def test_without_a_gateway_nothing_was_served(tmp_path: Path) -> None:
    registry = Registry(_provider(ANN))
    service = ProviderService(
        lambda: SimpleNamespace(providers=registry),
        PulledModels(tmp_path),
        lambda: None,
    )
    assert service.directory()[0]["served"] == 0
    assert "earnings" not in service.detail(ANN)
