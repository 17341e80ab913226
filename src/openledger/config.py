"""Settings and the node home layout.

Precedence: environment variables, then ``<home>/config.toml``, then the defaults below.
The home directory itself comes from ``OPENLEDGER_HOME`` (default ``~/.openledger``).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from openledger.errors import ConfigError, ValidationError
from openledger.fsutil import write_atomic

DEVNET_CHAIN_ID = 31337
DEFAULT_HOME = Path("~/.openledger")

# setting name -> (environment variable, config.toml table, key)
_SOURCES: dict[str, tuple[str, str, str]] = {
    "db_url": ("OPENLEDGER_DB_URL", "store", "db_url"),
    "chain_url": ("OPENLEDGER_CHAIN_URL", "chain", "url"),
    "chain_id": ("OPENLEDGER_CHAIN_ID", "chain", "chain_id"),
    "chain_port": ("OPENLEDGER_CHAIN_PORT", "chain", "port"),
    "addresses_file": ("OPENLEDGER_ADDRESSES", "chain", "addresses_file"),
    "anvil_bin": ("OPENLEDGER_ANVIL", "chain", "anvil_bin"),
    "rpc_timeout": ("OPENLEDGER_RPC_TIMEOUT", "chain", "rpc_timeout"),
    "api_host": ("OPENLEDGER_API_HOST", "api", "host"),
    "api_port": ("OPENLEDGER_API_PORT", "api", "port"),
    "serve_base": ("OPENLEDGER_SERVE_BASE", "serve", "base"),
    "serve_device": ("OPENLEDGER_SERVE_DEVICE", "serve", "device"),
    "serve_max_batch": ("OPENLEDGER_SERVE_MAX_BATCH", "serve", "max_batch"),
    "serve_max_ctx": ("OPENLEDGER_SERVE_MAX_CTX", "serve", "max_ctx"),
    "serve_device_slots": ("OPENLEDGER_SERVE_DEVICE_SLOTS", "serve", "device_slots"),
    "serve_host_tier_mb": ("OPENLEDGER_SERVE_HOST_TIER_MB", "serve", "host_tier_mb"),
    "serve_max_lora_rank": ("OPENLEDGER_SERVE_MAX_LORA_RANK", "serve", "max_lora_rank"),
    "ledger_pricing_process": ("OPENLEDGER_LEDGER_PRICING_PROCESS", "ledger", "pricing_process"),
    "web_hosts": ("OPENLEDGER_WEB_HOSTS", "api", "web_hosts"),
    "api_json_max_bytes": ("OPENLEDGER_API_JSON_MAX_BYTES", "api", "json_max_bytes"),
    "api_upload_max_bytes": ("OPENLEDGER_API_UPLOAD_MAX_BYTES", "api", "upload_max_bytes"),
    "api_json_max_depth": ("OPENLEDGER_API_JSON_MAX_DEPTH", "api", "json_max_depth"),
    "rate_signin": ("OPENLEDGER_RATE_SIGNIN", "api", "rate_signin"),
    "rate_keys": ("OPENLEDGER_RATE_KEYS", "api", "rate_keys"),
    "rate_paid": ("OPENLEDGER_RATE_PAID", "api", "rate_paid"),
    "rate_keys_ip": ("OPENLEDGER_RATE_KEYS_IP", "api", "rate_keys_ip"),
    "rate_paid_ip": ("OPENLEDGER_RATE_PAID_IP", "api", "rate_paid_ip"),
    "blobs_url": ("OPENLEDGER_BLOBS_URL", "store", "blobs_url"),
    "sync_depth": ("OPENLEDGER_SYNC_DEPTH", "chain", "sync_depth"),
    "job_heartbeat_s": ("OPENLEDGER_JOB_HEARTBEAT_S", "jobs", "heartbeat_s"),
    "job_stale_after_s": ("OPENLEDGER_JOB_STALE_AFTER_S", "jobs", "stale_after_s"),
}


@dataclass(frozen=True)
class HomeLayout:
    """Where everything lives inside a node home."""

    root: Path

    @property
    def config_file(self) -> Path:
        return self.root / "config.toml"

    @property
    def keystore_dir(self) -> Path:
        return self.root / "keystore"

    @property
    def operator_keystore(self) -> Path:
        return self.keystore_dir / "operator.json"

    @property
    def dev_accounts_file(self) -> Path:
        return self.root / "dev_accounts.json"

    @property
    def chain_dir(self) -> Path:
        return self.root / "chain"

    @property
    def chain_state(self) -> Path:
        return self.chain_dir / "state.json"

    @property
    def anvil_pid(self) -> Path:
        return self.chain_dir / "anvil.pid"

    @property
    def anvil_log(self) -> Path:
        return self.chain_dir / "anvil.log"

    @property
    def attribution_dir(self) -> Path:
        return self.root / "attribution"

    @property
    def default_addresses_file(self) -> Path:
        return self.chain_dir / "addresses.json"

    @property
    def blobs_dir(self) -> Path:
        return self.root / "blobs"

    @property
    def datanets_dir(self) -> Path:
        return self.root / "datanets"

    @property
    def jobs_dir(self) -> Path:
        return self.root / "jobs"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def default_db_file(self) -> Path:
        return self.root / "openledger.db"


@dataclass(frozen=True)
class Settings:
    """Everything a node needs to know before it starts."""

    home: Path
    db_url: str = ""
    chain_url: str | None = None  # None: the embedded anvil devnet
    chain_id: int = DEVNET_CHAIN_ID
    chain_port: int = 8545
    addresses_file: Path | None = None
    anvil_bin: str | None = None
    rpc_timeout: float = 10.0
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    serve_base: str | None = None  # None: the base most published models were trained on
    serve_device: str = "auto"
    serve_max_batch: int = 64
    serve_max_ctx: int = 0  # 0: the base model's max_position_embeddings
    serve_device_slots: int = 0  # 0: sized from free GPU memory after the KV cache
    serve_host_tier_mb: int = 4096  # adapters kept in host memory, in MiB of their tensors
    serve_max_lora_rank: int = 64
    ledger_pricing_process: int = 1  # 1: charges priced in a child process; 0: in the node's
    web_hosts: str = ""  # host:port names the web app answers as, beside api_host:api_port
    api_json_max_bytes: int = 1_048_576  # a JSON body (and any non-upload body)
    api_upload_max_bytes: int = 11_534_336  # a multipart upload: the 10 MB file cap + 1 MiB
    api_json_max_depth: int = 64  # nesting of JSON arrays and objects
    rate_signin: str = "30/60"  # sign-in messages and sign-ins per client address: N/SECONDS
    rate_keys: str = "10/3600"  # API keys created per account
    rate_paid: str = "1200/60"  # paid requests per API key or account
    rate_keys_ip: str = "30/3600"  # API keys created per client address
    rate_paid_ip: str = "6000/60"  # paid requests per client address
    blobs_url: str = ""  # "": files in <home>/blobs; s3://bucket/prefix: S3 through s3fs
    sync_depth: str = ""  # blocks behind the head, or latest/safe/finalized ("": see below)
    job_heartbeat_s: float = 5.0  # how often the process running a job renews its claim
    job_stale_after_s: float = 30.0  # a running job silent this long is requeued
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def layout(self) -> HomeLayout:
        return HomeLayout(self.home)

    @property
    def is_devnet(self) -> bool:
        """True when the node runs its own anvil instead of a configured chain."""
        return self.chain_url is None

    @property
    def rpc_url(self) -> str:
        return self.chain_url or f"http://127.0.0.1:{self.chain_port}"

    @property
    def confirmations(self) -> int | str:
        """How far behind the head the event sync reads: the devnet's head itself; on any
        other chain the ``finalized`` block unless ``sync_depth`` says otherwise."""
        if self.sync_depth:
            return parse_depth(self.sync_depth)
        return 0 if self.is_devnet else "finalized"

    @property
    def addresses_path(self) -> Path:
        return self.addresses_file or self.layout.default_addresses_file

    @classmethod
    def load(cls, env: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Read settings from ``env`` (default ``os.environ``) and the home's config.toml."""
        env = dict(os.environ if env is None else env)
        home = Path(overrides.pop("home", None) or env.get("OPENLEDGER_HOME") or DEFAULT_HOME)
        home = home.expanduser().resolve()
        file_values = _read_config_file(HomeLayout(home).config_file)

        values: dict[str, Any] = {}
        for name, (var, table, key) in _SOURCES.items():
            if var in env and env[var] != "":
                values[name] = _coerce(name, env[var], source=var)
            elif key in file_values.get(table, {}):
                values[name] = _coerce(name, file_values[table][key], source=f"[{table}] {key}")
        values.update({k: v for k, v in overrides.items() if v is not None})

        settings = cls(home=home, **values)
        if settings.ledger_pricing_process not in (0, 1):
            raise ConfigError(
                f"Setting ledger_pricing_process = {settings.ledger_pricing_process} is not 0 "
                "or 1.",
                field="ledger_pricing_process",
                value=settings.ledger_pricing_process,
                fix="set OPENLEDGER_LEDGER_PRICING_PROCESS (or [ledger] pricing_process) to 1 "
                "to price charges in a child process, or 0 to price them in the node's process.",
            )
        if not settings.db_url:
            settings = replace(settings, db_url=f"sqlite:///{settings.layout.default_db_file}")
        return settings


SYNC_TAGS = ("latest", "safe", "finalized")


def parse_depth(value: str | int) -> int | str:
    """A sync depth: a number of blocks behind the head (0 = the head itself) or one of the
    tags ``latest``, ``safe``, ``finalized``."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        text = str(value).strip().lower()
        if text in SYNC_TAGS:
            return 0 if text == "latest" else text
        try:
            number = int(text)
        except ValueError:
            number = -1
    if not 0 <= number <= 10_000:
        raise ValidationError(
            f"The sync depth {value!r} is neither a block count nor a tag.",
            field="sync_depth",
            value=str(value),
            fix="use a number of blocks behind the head (0 to 10000), or latest, safe or "
            "finalized (OPENLEDGER_SYNC_DEPTH).",
        )
    return number


def _read_config_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"The config file {path} is not valid TOML: {exc}.",
            field="config.toml",
            value=str(path),
            fix="correct the file or delete it to fall back to the defaults.",
        ) from exc


_TYPES: dict[str, type] = {f.name: f.type for f in fields(Settings)}  # type: ignore[misc]


def _coerce(name: str, raw: Any, *, source: str) -> Any:
    kind = str(_TYPES[name])
    try:
        if "int" in kind and "str" not in kind:
            return int(raw)
        if "float" in kind:
            return float(raw)
        if "Path" in kind:
            return Path(str(raw)).expanduser()
        return str(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"Setting {source} = {raw!r} is not a valid {kind.split('|')[0].strip()}.",
            field=source,
            value=raw,
            fix=f"set {source} to a number, or remove it to use the default.",
        ) from exc


def write_default_config(settings: Settings) -> Path:
    """Write a commented config.toml into the home unless one exists; returns its path."""
    path = settings.layout.config_file
    if path.exists():
        return path
    text = f"""# OpenLedger node configuration.
# Environment variables (OPENLEDGER_*) override this file.

[store]
# db_url = "postgresql+psycopg://user@127.0.0.1:5432/openledger"
db_url = "{settings.db_url}"

[chain]
# Leave url unset to run the embedded anvil devnet; set it (and addresses_file) to use any
# EVM JSON-RPC endpoint.
# url = "https://rpc.example.org"
chain_id = {settings.chain_id}
port = {settings.chain_port}

[api]
host = "{settings.api_host}"
port = {settings.api_port}
# The web app's own names (comma-separated host:port) beside host:port above; sign-ins and
# browser writes from any other origin are refused.
# web_hosts = "node.example.org:443"
# Request caps: JSON bodies, multipart uploads (bytes) and JSON nesting.
# json_max_bytes = 1048576
# upload_max_bytes = 11534336
# json_max_depth = 64
# Rate limits as N/SECONDS ("0" turns one off): sign-ins per client address, API keys
# created per account and per client address, paid requests per API key and per client
# address.
# rate_signin = "30/60"
# rate_keys = "10/3600"
# rate_keys_ip = "30/3600"
# rate_paid = "1200/60"
# rate_paid_ip = "6000/60"

[serve]
# base = "/path/to/base-model"   # default: the base most published models were trained on
device = "{settings.serve_device}"
max_batch = {settings.serve_max_batch}
# 0: as many as fit in the GPU memory free after the KV cache (CPU: 2 x max_batch)
device_slots = {settings.serve_device_slots}
host_tier_mb = {settings.serve_host_tier_mb}
max_lora_rank = {settings.serve_max_lora_rank}

[ledger]
# 1: charges are priced (split, receipt JSON, hash) in a child process, on another core;
# 0: in the node's own pricer thread
pricing_process = {settings.ledger_pricing_process}
"""
    write_atomic(path, text)
    return path
