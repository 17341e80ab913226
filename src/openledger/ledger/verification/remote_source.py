"""A node's public artefacts over HTTP, for ``openledger verify receipt ID --node URL``.

Everything comes from ``GET /receipts/{id}/attribution-proof`` and the routes it names;
what ModelRegistry says is read from a chain RPC the verifier chooses (``--rpc``), not from
the node, so a node cannot vouch for itself. Downloads go to the verification's temporary
folder and are checked against the sizes and hashes the proof lists (transport); the real
checks are against the chain (:mod:`openledger.ledger.verification.verify`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from openledger.errors import AuthError, ConfigError, ConflictError, NotFoundError
from openledger.ledger.verification.verify import ModelArtefacts, OnChain

TIMEOUT_S = 120.0


class RemoteSource:
    def __init__(
        self, url: str, *, token: str | None, rpc_url: str, timeout: float = TIMEOUT_S
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self.client = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)
        self.rpc_url = rpc_url
        self._proof: dict[str, Any] | None = None

    # ------------------------------------------------------------------ http

    def _get(self, path: str) -> httpx.Response:
        try:
            r = self.client.get(path)
        except httpx.HTTPError as exc:
            raise ConfigError(
                f"No OpenLedger node answers at {self.url} ({type(exc).__name__}).",
                field="node",
                value=self.url,
                fix="give the URL of a running node's API, e.g. http://127.0.0.1:8000.",
            ) from exc
        if r.status_code == 404:
            raise NotFoundError(
                _message(r),
                field="receipt",
                value=path[:120],
                fix="check the receipt id (rc_…) and the node URL.",
            )
        if r.status_code in (401, 403):
            raise AuthError(
                _message(r),
                field="token",
                value=None,
                fix="give the payer's API key or the operator token to recompute (the tokens "
                "attributed are private).",
            )
        if r.status_code >= 400:
            raise ConflictError(
                _message(r), field="node", value=self.url, fix="see the node's message."
            )
        return r

    def _download(self, url: str, target: Path, sha256: str | None) -> Path:
        target.parent.mkdir(parents=True, exist_ok=True)
        data = self._get(url).content
        if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
            raise ConflictError(
                f"{url} did not arrive as the proof lists it (sha256 differs).",
                field="artefact",
                value=url,
                fix="retry; if it persists the node serves another file than it names.",
            )
        target.write_bytes(data)
        return target

    def proof(self, ref: str) -> dict[str, Any]:
        if self._proof is None or self._proof["receipt"].get("id") != ref:
            self._proof = self._get(f"/receipts/{ref}/attribution-proof").json()
        return self._proof

    # ------------------------------------------------------------------ Source

    def receipt(self, ref: str) -> dict[str, Any]:
        return self.proof(ref)["receipt"]

    def operator(self) -> str:
        assert self._proof is not None
        return str(self._proof["operator"])

    def artefacts(self, body: Mapping[str, Any], workdir: Path) -> ModelArtefacts:
        import pyarrow.parquet as pq

        p = self._proof
        assert p is not None
        files = p["files"]
        adapter = workdir / "adapter"
        for f in files["adapter"]:
            self._download(f["url"], adapter / f["name"], f["sha256"])
        base = files["base"]
        if "hub" in base:
            base_ref = str(base["hub"])
        else:
            for f in base["files"]:
                self._download(f["url"], workdir / "base" / f["name"], f["sha256"])
            base_ref = str(workdir / "base")
        snapshot = self._download(files["snapshot"]["url"], workdir / "snapshot.parquet", None)
        return ModelArtefacts(
            model_id=int(p["model"]["id"]),
            name=str(p["model"]["name"]),
            base=base_ref,
            adapter_dir=adapter,
            snapshot_rows=pq.read_table(snapshot).to_pylist(),
            index_metas=p["indexes"],
        )

    def query(self, digest: str) -> tuple[list[int], list[int]] | None:
        q = (self._proof or {}).get("query")
        return None if not q else (list(q["prompt"]), list(q["completion"]))

    def on_chain(self, model_id: int) -> OnChain:
        from openledger.chain import bindings
        from openledger.chain.client import ChainClient
        from openledger.chain.compile import compile_contract

        p = self._proof
        assert p is not None
        client = ChainClient(self.rpc_url, chain_id=int(p["chain"]["chain_id"]))
        client.check()
        address = str(p["chain"]["ModelRegistry"])
        client.require_code("ModelRegistry", address)
        registry = bindings.ModelRegistry(client, address, compile_contract("ModelRegistry").abi)
        m = registry.model(model_id)
        return OnChain(
            adapter_sha256="0x" + bytes(m.adapter_hash).hex(),
            snapshot_roots=["0x" + r.hex() for r in registry.snapshot_roots(model_id)],
            index_hash="0x" + bytes(m.index_hash).hex(),
            metadata_uri=str(m.metadata_uri),
        )


def _message(r: httpx.Response) -> str:
    try:
        return str(r.json().get("message") or r.text)[:500]
    except ValueError:
        return r.text[:500]
