"""Pull a published model from a gateway into a provider's home, checked against the chain.

The gateway lists the model's files (``GET /models/{name}/artefacts``); every file is
checked against the sha256 listed, and the adapter's weights against the hash ModelRegistry
holds for the model's id (read from the provider's own chain connection), so a gateway
cannot make a provider serve (and sign for) another adapter than the one registered.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from openledger.errors import ConfigError, ConflictError, NotFoundError
from openledger.fsutil import replace_dir
from openledger.providers.catalogue import PulledModels
from openledger.serving.adapters import ADAPTER_WEIGHTS

TIMEOUT_S = 120.0


def _get(client: httpx.Client, url: str) -> httpx.Response:
    try:
        r = client.get(url)
    except httpx.HTTPError as exc:
        raise ConfigError(
            f"no gateway answers at {client.base_url} ({type(exc).__name__}).",
            field="gateway",
            value=str(client.base_url),
            fix="give the URL of the gateway node (openledger serve), e.g. http://host:8000.",
        ) from exc
    if r.status_code == 404:
        raise NotFoundError(
            f"the gateway has no {url}.",
            field="model",
            value=url,
            fix="check the model's name with GET /v1/models on the gateway.",
        )
    if r.status_code >= 400:
        raise ConflictError(
            f"the gateway answered {r.status_code} for {url}: {r.text[:300]}",
            field="gateway",
            value=url,
            fix="see the gateway's message.",
        )
    return r


def _fetch(client: httpx.Client, entry: dict[str, Any], target: Path) -> None:
    rel = Path(str(entry["name"]))
    if rel.is_absolute() or ".." in rel.parts:
        raise ConflictError(
            f"the gateway lists a file outside the model: {entry['name']!r}.",
            field="artefact",
            value=str(entry["name"])[:120],
            fix="pull from a gateway you trust; this one is misbehaving.",
        )
    data = _get(client, entry["url"]).content
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise ConflictError(
            f"{entry['url']} did not arrive as listed (sha256 differs).",
            field="artefact",
            value=entry["url"],
            fix="retry; if it persists the gateway serves another file.",
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)


def pull_model(
    gateway: str,
    name: str,
    catalogue: PulledModels,
    on_chain_adapter: Callable[[int], str],
    *,
    client: httpx.Client | None = None,
) -> dict[str, Any]:
    """Download ``name`` from ``gateway`` into ``catalogue``; returns its card.
    ``on_chain_adapter(model_id)`` is the adapter sha256 (hex) ModelRegistry holds."""
    http = client or httpx.Client(base_url=gateway.rstrip("/"), timeout=TIMEOUT_S)
    try:
        listing = _get(http, f"/models/{name}/artefacts").json()
        model = listing["model"]
        registered = on_chain_adapter(int(model["id"])).removeprefix("0x").lower()
        if registered != str(model["adapter_sha256"]).lower():
            raise ConflictError(
                f"the gateway lists {name} as adapter {model['adapter_sha256']}; ModelRegistry "
                f"holds {registered or 'nothing'} for model id {model['id']}.",
                field="model",
                value=name,
                fix="pull from a gateway that serves the registered adapter.",
            )
        catalogue.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".pull-", dir=catalogue.root))
        try:
            for entry in listing["files"]["adapter"]:
                _fetch(http, entry, tmp / "adapter" / Path(entry["name"]).name)
            weights = hashlib.sha256((tmp / "adapter" / ADAPTER_WEIGHTS).read_bytes())
            if weights.hexdigest() != registered:
                raise ConflictError(
                    f"the adapter pulled for {name} hashes to {weights.hexdigest()}, not the "
                    f"registered {registered}.",
                    field="model",
                    value=name,
                    fix="pull from a gateway that serves the registered adapter.",
                )
            base_files = listing["files"]["base"]
            if "hub" in base_files:
                base = str(base_files["hub"])
            else:
                key = (model.get("base_fingerprint") or "").removeprefix("sha256:")[:16]
                key = key or hashlib.sha256(str(model["base"]).encode()).hexdigest()[:16]
                base_dir = catalogue.bases_dir / key
                if not base_dir.is_dir():
                    staged = tmp / "base"
                    for entry in base_files["files"]:
                        _fetch(http, entry, staged / entry["name"])
                    base_dir.parent.mkdir(parents=True, exist_ok=True)
                    replace_dir(staged, base_dir)
                base = str(base_dir)
            target = catalogue.model_dir(name)
            target.mkdir(parents=True, exist_ok=True)
            replace_dir(tmp / "adapter", target / "adapter")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        card = {**model, "base": base, "adapter_dir": str(target / "adapter"), "gateway": gateway}
        catalogue.save(card)
        return card
    finally:
        if client is None:
            http.close()
