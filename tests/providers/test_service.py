"""Pulling and registering as a provider on the devnet: a model whose adapter differs from the
one ModelRegistry holds is refused at the pull, a model the provider cannot load is refused
before any stake moves, and so is a stake below the registry's minimum."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from sqlalchemy import update

from openledger.app import create_app
from openledger.errors import ConflictError, ValidationError
from openledger.node import Node
from openledger.store.factory_tables import ModelRow
from openledger.units import OPEN
from tests.providers.conftest import MODEL, pulled
from tests.servers import serve_in_thread
from tests.tiny import register_models

pytestmark = pytest.mark.anvil


def _registered(node: Node, adapter: Path, base: Path, sha: str) -> int:
    acc = node.accounts
    model_id, _ = node.contracts.models.register_model(
        acc.signer("dave"), str(base), bytes.fromhex(sha), [], b"\0" * 32, 10, 20, ""
    )
    return model_id


def test_a_gateway_listing_another_adapter_than_the_chain_is_refused(
    dnode: Node, tiny_base_dir: Path, adapters_dir: Path
) -> None:
    adapter = adapters_dir / "ad3"
    model_id = _registered(dnode, adapter, tiny_base_dir, "11" * 32)  # not ad3's hash
    register_models(dnode.db, str(tiny_base_dir), {MODEL: adapter}, first_id=model_id)
    sha = hashlib.sha256((adapter / "adapter_model.safetensors").read_bytes()).hexdigest()
    with dnode.db.session() as s:
        s.execute(update(ModelRow).values(adapter_sha=sha))
    with serve_in_thread(create_app(dnode)) as url, pytest.raises(ConflictError) as e:
        dnode.providers.pull(url, [MODEL])
    assert e.value.field == "model" and "11" * 32 in e.value.message
    assert not (dnode.settings.home / "provider" / "models" / MODEL).exists()


def test_a_model_that_cannot_load_or_a_small_stake_is_refused_before_any_stake_moves(
    dnode: Node, tiny_base_dir: Path, adapters_dir: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(adapters_dir / "ad3", broken)
    (broken / "adapter_model.safetensors").write_bytes(b"not a safetensors file")
    catalogue = pulled(dnode.settings.home / "provider", tiny_base_dir, broken)
    assert dnode.providers.catalogue.get(MODEL)["id"] == catalogue.get(MODEL)["id"]
    signer = dnode.accounts.signer("heidi")
    token, registry = dnode.contracts.token, dnode.contracts.providers
    before = token.balance_of(signer.address)
    with pytest.raises(ValidationError) as e:
        dnode.providers.register(signer, "http://127.0.0.1:9", [MODEL], 100 * OPEN)
    assert e.value.field == "model" and MODEL in e.value.message
    with pytest.raises(ValidationError) as small:
        dnode.providers.register(signer, "http://127.0.0.1:9", [MODEL], OPEN)
    assert small.value.field == "stake"
    with pytest.raises(ValidationError) as endpoint:
        dnode.providers.register(signer, "ftp://x", [MODEL], 100 * OPEN)
    assert endpoint.value.field == "endpoint"
    assert token.balance_of(signer.address) == before
    assert registry.provider(signer.address).registered_at == 0


def test_register_list_show_and_exit_a_provider(
    dnode: Node, tiny_base_dir: Path, adapters_dir: Path
) -> None:
    from fastapi.testclient import TestClient

    pulled(dnode.settings.home / "provider", tiny_base_dir, adapters_dir / "ad3")
    signer = dnode.accounts.signer("heidi")
    doc = dnode.providers.register(signer, "http://127.0.0.1:8100", [MODEL], 100 * OPEN)
    assert doc["active"] and doc["stake"] == str(100 * OPEN) and doc["model_ids"] == [1]
    client = TestClient(create_app(dnode))
    listed = client.get("/providers").json()
    assert [p["address"] for p in listed["items"]] == [signer.address]
    assert listed["items"][0]["served"] == 0
    shown = client.get(f"/providers/{signer.address}").json()
    assert shown["endpoint"] == "http://127.0.0.1:8100" and shown["earnings"]["earned"] == "0"
    bad = client.get("/providers/nobody")
    assert bad.status_code == 422 and bad.json()["field"] == "address"
    exited = dnode.providers.exit(signer)
    assert not exited["active"] and exited["unlock_at"] > 0
    assert dnode.provider_router.for_model(1) == []


def test_on_a_real_network_an_exit_cannot_outrun_a_slashing_proposal() -> None:
    from openledger.chain.deploy import MAINNET_GOVERNANCE as g

    proposal = g.voting_delay + g.voting_period + g.timelock_delay
    assert g.provider_exit_delay > proposal
