"""A provider app on a real socket over the tiny base and one adapter, and the keys of a
provider and a gateway."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from openledger.ledger.receipts.canonical import ReceiptSigner
from openledger.providers.catalogue import PulledModels
from openledger.providers.jobs import JobChecker
from openledger.providers.server import create_provider_app
from openledger.serving.engine import EngineConfig
from openledger.serving.service import ServeConfig, ServingService
from tests.servers import serve_in_thread

MODEL = "facts-lora"
GATEWAY_KEY = bytes([7] * 32)
PROVIDER_KEY = bytes([9] * 32)
OTHER_KEY = bytes([11] * 32)


@dataclass
class Provider:
    url: str
    address: str
    serving: ServingService
    card: dict


def pulled(root: Path, base: Path, adapter: Path) -> PulledModels:
    """A provider catalogue holding ``adapter`` as model #1 (what ``provider pull`` leaves)."""
    catalogue = PulledModels(root)
    sha = hashlib.sha256((adapter / "adapter_model.safetensors").read_bytes()).hexdigest()
    catalogue.save(
        {
            "name": MODEL,
            "id": 1,
            "base": str(base),
            "base_fingerprint": "",
            "adapter_sha256": sha,
            "adapter_dir": str(adapter),
            "owner": "0x" + "ab" * 20,
            "price_in": "10",
            "price_out": "20",
            "created_at": "2026-12-07T00:00:00",
        }
    )
    return catalogue


def provider_serving(catalogue: PulledModels, base: Path) -> ServingService:
    config = ServeConfig(str(base), "cpu", EngineConfig(max_batch=8, max_ctx=64))
    return ServingService(catalogue, config)  # type: ignore[arg-type]


@contextmanager
def run_provider(
    catalogue: PulledModels, base: Path, key: bytes, gateways: list[str]
) -> Iterator[Provider]:
    """A provider app signing with ``key`` for ``gateways``, on a real socket."""
    serving = provider_serving(catalogue, base)
    signer = ReceiptSigner(key)
    app = create_provider_app(serving, signer, JobChecker(gateways))
    try:
        with serve_in_thread(app) as url:
            yield Provider(url, signer.address, serving, catalogue.get(MODEL))
    finally:
        serving.close()


@pytest.fixture(scope="module")
def catalogue(
    tiny_base_dir: Path, adapters_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> PulledModels:
    return pulled(tmp_path_factory.mktemp("provider"), tiny_base_dir, adapters_dir / "ad3")


@pytest.fixture(scope="module")
def provider(catalogue: PulledModels, tiny_base_dir: Path) -> Iterator[Provider]:
    gateway = ReceiptSigner(GATEWAY_KEY).address
    with run_provider(catalogue, tiny_base_dir, PROVIDER_KEY, [gateway]) as p:
        yield p
