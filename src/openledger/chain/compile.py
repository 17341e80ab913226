"""Compile the OpenLedger Vyper contracts, with an on-disk cache, and export their ABIs.

The contracts live in ``openledger/chain/contracts`` (``*.vy``, shared interfaces in
``contracts/interfaces/*.vyi``) and import snekmate modules, which resolve from the
installed ``snekmate`` package. Compiling them all takes seconds, so results are
cached as JSON under the cache directory (``$OPENLEDGER_CACHE_DIR/contracts`` when that
variable is set, else ``~/.cache/openledger/contracts``) in a folder named after the
*source hash*: the sha256 of every contract and interface source, the vyper version and
the snekmate version. Any edit (or compiler upgrade) therefore misses the cache; stale
entries are never read. Cache files are written atomically (temporary file + rename), so
concurrent processes at worst compile the same thing twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openledger.errors import ValidationError
from openledger.fsutil import write_atomic

CONTRACTS_DIR: Path = Path(__file__).resolve().parent / "contracts"

#: The core contracts in deployment order (see docs/contracts.md); every deployment has them.
CORE_CONTRACT_NAMES: tuple[str, ...] = (
    "OpenToken",
    "ProtocolParams",
    "DatanetRegistry",
    "ModelRegistry",
    "RewardDistributor",
    "InferenceEscrow",
)

#: The governance contracts (docs/governance.md), deployed after the core ones; a deployment
#: made before they existed gets them from `openledger gov handover`.
GOVERNANCE_CONTRACT_NAMES: tuple[str, ...] = ("Governor", "Timelock", "Grants")

#: The agent contracts (docs/agents.md), deployed last; a deployment made before they existed
#: gets them from `openledger agent deploy`.
AGENT_CONTRACT_NAMES: tuple[str, ...] = ("AgentRegistry",)

#: The compute-provider contracts (staked providers and the models they serve), deployed after
#: the agents; a deployment made before they existed gets them from
#: :func:`openledger.chain.deploy.deploy_provider_registry`.
PROVIDER_CONTRACT_NAMES: tuple[str, ...] = ("ProviderRegistry",)

#: Every contract, in deployment order.
CONTRACT_NAMES: tuple[str, ...] = (
    CORE_CONTRACT_NAMES + GOVERNANCE_CONTRACT_NAMES + AGENT_CONTRACT_NAMES + PROVIDER_CONTRACT_NAMES
)

_CACHE_FORMAT = 2  # 2: with the runtime bytecode (deployments check the code they find)


@dataclass(frozen=True)
class Artifact:
    """The compiler output the chain client needs to deploy and call a contract.

    ``bytecode`` is the deployment (init) code as ``0x``-prefixed hex; constructor
    arguments are ABI-encoded and appended to it. ``source_hash`` identifies the exact
    sources and compiler that produced it (see the module docstring).
    """

    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    source_hash: str
    runtime: str = ""  # the deployed code up to the immutables Vyper appends after it

    def to_json(self) -> dict[str, Any]:
        """The artifact as a JSON-serialisable dict."""
        return {
            "format": _CACHE_FORMAT,
            "name": self.name,
            "abi": self.abi,
            "bytecode": self.bytecode,
            "source_hash": self.source_hash,
            "runtime": self.runtime,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Artifact:
        """Rebuild an artifact from :meth:`to_json` output."""
        return cls(
            name=str(data["name"]),
            abi=list(data["abi"]),
            bytecode=str(data["bytecode"]),
            source_hash=str(data["source_hash"]),
            runtime=str(data.get("runtime", "")),
        )


def default_cache_dir() -> Path:
    """The contract cache directory (``$OPENLEDGER_CACHE_DIR/contracts`` or the default)."""
    base = os.environ.get("OPENLEDGER_CACHE_DIR")
    if base:
        return Path(base).expanduser() / "contracts"
    return Path.home() / ".cache" / "openledger" / "contracts"


def _source_files() -> list[Path]:
    """Every contract and interface source, in a stable order."""
    files = sorted(CONTRACTS_DIR.glob("*.vy")) + sorted(CONTRACTS_DIR.glob("interfaces/*.vyi"))
    return files


def _vyper_version() -> str:
    # The installed distribution's version (what ``vyper.__version__`` says, without paying
    # ~0.25 s to import the compiler when the cache answers).
    try:
        return importlib.metadata.version("vyper")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - source checkout
        import vyper

        return str(vyper.__version__)


def _snekmate_version() -> str:
    try:
        return importlib.metadata.version("snekmate")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - dev install only
        return "unknown"


def source_hash() -> str:
    """sha256 over all contract sources, the vyper version and the snekmate version."""
    digest = hashlib.sha256()
    digest.update(f"vyper={_vyper_version()};snekmate={_snekmate_version()};".encode())
    for path in _source_files():
        rel = path.relative_to(CONTRACTS_DIR).as_posix()
        data = path.read_bytes()
        digest.update(f"{rel}:{len(data)}:".encode())
        digest.update(data)
    return digest.hexdigest()


def _search_paths() -> list[Path]:
    """Compiler search paths: the contracts folder and the folder holding ``snekmate``."""
    paths = [CONTRACTS_DIR]
    spec = importlib.util.find_spec("snekmate")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            paths.append(Path(location).resolve().parent)
    # vyper gives the *last* search path the highest precedence: keep the contracts last.
    return list(reversed(paths))


def _compile(name: str, digest: str) -> Artifact:
    from vyper.compiler import compile_from_file_input
    from vyper.compiler.input_bundle import FilesystemInputBundle

    bundle = FilesystemInputBundle(_search_paths())
    file_input = bundle.load_file(Path(f"{name}.vy"))
    out = compile_from_file_input(
        file_input, input_bundle=bundle, output_formats=["abi", "bytecode", "bytecode_runtime"]
    )
    bytecode = str(out["bytecode"])
    if not bytecode.startswith("0x"):
        bytecode = "0x" + bytecode
    runtime = "0x" + str(out["bytecode_runtime"]).removeprefix("0x")
    return Artifact(
        name=name, abi=list(out["abi"]), bytecode=bytecode, source_hash=digest, runtime=runtime
    )


def _check_name(name: str) -> None:
    if name not in CONTRACT_NAMES:
        known = ", ".join(CONTRACT_NAMES)
        raise ValueError(f"unknown contract {name!r}; expected one of: {known}")


def compile_contract(name: str, *, cache_dir: Path | None = None) -> Artifact:
    """Compile one contract by name (one of :data:`CONTRACT_NAMES`), using the cache.

    A cache hit returns the stored artifact without invoking the compiler; a miss
    compiles and stores it. A corrupt cache file is ignored and rewritten.
    """
    _check_name(name)
    digest = source_hash()
    cache_file = (cache_dir or default_cache_dir()) / digest / f"{name}.json"
    try:
        data = json.loads(cache_file.read_text(encoding="utf-8"))
        if data.get("format") == _CACHE_FORMAT and data.get("source_hash") == digest:
            return Artifact.from_json(data)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    artifact = _compile(name, digest)
    with contextlib.suppress(OSError):  # a read-only cache must not stop compilation
        write_atomic(cache_file, json.dumps(artifact.to_json(), sort_keys=True))
    return artifact


def abi_hash(*, cache_dir: Path | None = None) -> str:
    """sha256 of every contract's ABI (canonical JSON of ``{name: abi}``): two builds with
    the same hash speak the same interface (`openledger --version` prints it)."""
    abis = {name: art.abi for name, art in compile_all(cache_dir=cache_dir).items()}
    canonical = json.dumps(abis, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def compile_all(*, cache_dir: Path | None = None) -> dict[str, Artifact]:
    """Compile every contract; keys follow :data:`CONTRACT_NAMES` (deployment order)."""
    return {name: compile_contract(name, cache_dir=cache_dir) for name in CONTRACT_NAMES}


def export_abis(out_dir: Path, *, cache_dir: Path | None = None) -> list[Path]:
    """Write ``<Name>.json`` (the ABI list) for every contract into ``out_dir``.

    Returns the written paths in deployment order.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValidationError(
            f"{out_dir} is a file; the ABIs are written as one <Contract>.json each into a "
            "directory.",
            field="out_dir",
            value=str(out_dir),
            fix="name a directory (it is created if missing).",
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, artifact in compile_all(cache_dir=cache_dir).items():
        path = out_dir / f"{name}.json"
        write_atomic(path, json.dumps(artifact.abi, indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written
