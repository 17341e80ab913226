"""compile.py: artifacts, the source-hash keyed cache, ABI export."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import boa
import pytest
from eth_abi import encode

from openledger.chain import compile as oc

from .contract_helpers import SUPPLY, addr


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private cache, filled once for the module with a copy of the default cache's entry
    for these sources (compiling them all takes 15 s; the devnet deploys from the default
    cache, so the compiler runs once for both). Tests below may corrupt their copy."""
    oc.compile_all()  # fills the default cache on a miss
    digest = oc.source_hash()
    path = tmp_path_factory.mktemp("contract-cache")
    if (oc.default_cache_dir() / digest).is_dir():
        shutil.copytree(oc.default_cache_dir() / digest, path / digest)
    oc.compile_all(cache_dir=path)  # compiles only if the default cache could not be written
    return path


def test_contract_names_in_deployment_order() -> None:
    assert oc.CONTRACT_NAMES == (
        "OpenToken",
        "ProtocolParams",
        "DatanetRegistry",
        "ModelRegistry",
        "RewardDistributor",
        "InferenceEscrow",
        "Governor",
        "Timelock",
        "Grants",
        "AgentRegistry",
        "ProviderRegistry",
    )
    for name in oc.CONTRACT_NAMES:
        assert (oc.CONTRACTS_DIR / f"{name}.vy").is_file()


def test_compile_all(cache_dir: Path) -> None:
    artifacts = oc.compile_all(cache_dir=cache_dir)
    assert list(artifacts) == list(oc.CONTRACT_NAMES)
    digest = oc.source_hash()
    for name, art in artifacts.items():
        assert isinstance(art, oc.Artifact)
        assert art.name == name
        assert art.bytecode.startswith("0x") and len(art.bytecode) > 1000
        bytes.fromhex(art.bytecode[2:])
        assert art.source_hash == digest
        assert any(item.get("type") == "constructor" for item in art.abi)
    fns = {i["name"] for i in artifacts["RewardDistributor"].abi if i["type"] == "function"}
    assert {"postRoot", "disableRoot", "claim", "activeRoot", "pendingRoot"} <= fns


def test_artifact_is_frozen(cache_dir: Path) -> None:
    art = oc.compile_contract("ModelRegistry", cache_dir=cache_dir)
    with pytest.raises(AttributeError):
        art.name = "x"  # type: ignore[misc]


def test_second_call_hits_the_cache(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = oc.compile_contract("OpenToken", cache_dir=cache_dir)
    cache_file = cache_dir / first.source_hash / "OpenToken.json"
    assert json.loads(cache_file.read_text())["bytecode"] == first.bytecode

    def boom(name: str, digest: str) -> oc.Artifact:
        raise AssertionError("the compiler must not run on a cache hit")

    monkeypatch.setattr(oc, "_compile", boom)
    assert oc.compile_contract("OpenToken", cache_dir=cache_dir) == first
    assert list(cache_dir.glob("**/*.tmp")) == []


def test_corrupt_cache_is_rewritten(cache_dir: Path) -> None:
    good = oc.compile_contract("ModelRegistry", cache_dir=cache_dir)
    cache_file = cache_dir / good.source_hash / "ModelRegistry.json"
    cache_file.write_text("{not json")
    assert oc.compile_contract("ModelRegistry", cache_dir=cache_dir) == good
    assert json.loads(cache_file.read_text())["name"] == "ModelRegistry"


def test_source_hash_covers_sources_and_compiler(monkeypatch: pytest.MonkeyPatch) -> None:
    digest = oc.source_hash()
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert oc.source_hash() == digest
    monkeypatch.setattr(oc, "_vyper_version", lambda: "0.0.0")
    assert oc.source_hash() != digest


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OPENLEDGER_CACHE_DIR", str(tmp_path))
    assert oc.default_cache_dir() == tmp_path / "contracts"
    monkeypatch.delenv("OPENLEDGER_CACHE_DIR")
    assert oc.default_cache_dir() == Path.home() / ".cache" / "openledger" / "contracts"


def test_env_cache_dir_is_used(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OPENLEDGER_CACHE_DIR", str(tmp_path))
    art = oc.compile_contract("ModelRegistry")
    assert (tmp_path / "contracts" / art.source_hash / "ModelRegistry.json").is_file()


def test_unknown_contract() -> None:
    with pytest.raises(ValueError, match="unknown contract 'Nope'"):
        oc.compile_contract("Nope")


def test_export_abis(cache_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "abis"
    paths = oc.export_abis(out, cache_dir=cache_dir)
    assert [p.name for p in paths] == [f"{n}.json" for n in oc.CONTRACT_NAMES]
    artifacts = oc.compile_all(cache_dir=cache_dir)
    for path in paths:
        assert path.parent == out
        assert json.loads(path.read_text()) == artifacts[path.stem].abi


def test_artifact_bytecode_deploys(cache_dir: Path) -> None:
    """The cached init code deploys and behaves like the source (constructor args appended)."""
    art = oc.compile_contract("OpenToken", cache_dir=cache_dir)
    holder = addr("artifact-holder")
    init = bytes.fromhex(art.bytecode[2:]) + encode(["address"], [holder])
    address, _ = boa.env.deploy_code(bytecode=init)
    token = boa.loads_abi(json.dumps(art.abi), name="OpenToken").at(address)
    assert token.balanceOf(holder) == SUPPLY
    assert token.symbol() == "OPEN"
