"""What a node publishes so anyone can check a receipt's attribution, and the node's own
artefacts as a verification source.

``ProofService.proof(ref)`` is ``GET /receipts/{id}/attribution-proof``: the receipt, the
operator, where ModelRegistry is, the model's card and index parameters, and the routes of
every artefact (adapter files, the base model's files when it is a local directory, the
snapshot as Parquet). The attributed tokens are included only for the payer and the
operator. ``LocalSource`` reads the same artefacts straight from a node home (what
``openledger verify receipt`` and ``audit --attribution`` use without ``--node``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from openledger.errors import AuthError, NotFoundError, Requester
from openledger.ledger.receipts.ids import is_public_id
from openledger.ledger.verification.verify import (
    ADAPTER_FILE,
    CARD_FILE,
    LINEAGE_FILE,
    ModelArtefacts,
    OnChain,
    sha256_file,
)

#: the published adapter's files anyone may download
ADAPTER_FILES = (ADAPTER_FILE, "adapter_config.json", CARD_FILE, LINEAGE_FILE, "README.md")
META = "meta.json"


class ProofService:
    def __init__(self, node: Any) -> None:
        self.node = node

    # ------------------------------------------------------------------ the proof

    def proof_for(self, ref: str, requester: Requester | None) -> dict[str, Any]:
        """The proof of receipt ``ref`` as ``requester`` (None: a request without a
        credential) may read it: by its public id (``rc_…``) anyone; by sequence number or
        hash only its payer or the operator. The attributed tokens are only for those two."""
        public = is_public_id(ref)
        if not public and requester is None:
            raise AuthError(
                "A proof is asked for by the receipt's public id (rc_…).",
                field="receipt",
                value=ref[:80],
                fix="use the receipt_id of the response, or send the payer's API key.",
            )
        doc = self.node.ledger.receipt(ref)
        payer = doc["receipt"].get("payer")
        if requester is not None and not public and not requester.owns(payer):
            raise requester.forbid(f"receipt {ref[:80]}", "read")
        mine = requester is not None and requester.owns(payer)
        return self.proof(str(doc.get("id") or ref), with_query=mine)

    def proof(self, ref: str, *, with_query: bool) -> dict[str, Any]:
        node = self.node
        doc = node.ledger.receipt(ref)
        body = doc["receipt"]
        summary = body.get("attribution") or {}
        model = node.models.get(body["model"]["name"])
        params = node.jobs.get(model["job"])["params"]
        name = model["name"]
        out: dict[str, Any] = {
            "receipt": doc,
            "operator": node.accounts.operator_address(),
            "chain": {
                "chain_id": node.settings.chain_id,
                "ModelRegistry": node.contracts.addresses.contracts["ModelRegistry"],
            },
            "model": {
                "name": name,
                "id": model["id"],
                "base": model["base"],
                "adapter_sha256": model["adapter_sha256"],
                "snapshot_roots": model["snapshot_roots"],
                "index_hash": model["index_hash"],
                "attribution_policy": model["attribution_policy"],
            },
            "indexes": self.index_metas(name, model["attribution_policy"]),
            "files": {
                "adapter": self._adapter_files(name, Path(model["adapter_dir"])),
                "base": self._base_files(name, model["base"]),
                "snapshot": {
                    "datanet": params["datanet"],
                    "version": params["version"],
                    "root": params["snapshot_root"],
                    "url": f"/datanets/{params['datanet']}/snapshots/{params['version']}"
                    "/export?format=parquet",
                },
            },
            "query": None,
        }
        digest = summary.get("query_hash")
        if with_query and digest:
            tokens = self.query(digest)
            out["query"] = (
                None if tokens is None else {"prompt": tokens[0], "completion": tokens[1]}
            )
        return out

    def artefacts(self, ref: str) -> dict[str, Any]:
        """A published model's card and the files a compute provider pulls to serve it
        (``GET /models/{name}/artefacts``, docs/providers.md)."""
        model = self.node.models.get(ref)
        name = model["name"]
        keep = (
            "name",
            "id",
            "base",
            "base_fingerprint",
            "adapter_sha256",
            "owner",
            "price_in",
            "price_out",
            "created_at",
        )
        return {
            "model": {k: model[k] for k in keep if k in model},
            "files": {
                "adapter": self._adapter_files(name, Path(model["adapter_dir"])),
                "base": self._base_files(name, model["base"]),
            },
        }

    @staticmethod
    def _adapter_files(name: str, adapter_dir: Path) -> list[dict[str, Any]]:
        return [
            {"name": f, "sha256": sha256_file(adapter_dir / f), "url": f"/models/{name}/files/{f}"}
            for f in ADAPTER_FILES
            if (adapter_dir / f).exists()
        ]

    def index_metas(self, name: str, policy: Mapping[str, float]) -> dict[str, Any]:
        out = {}
        for method in sorted(policy):
            path = self.node.attribution.index_dir(name, method) / META
            if path.exists():
                out[method] = json.loads(path.read_text())
        return out

    def _base_files(self, name: str, base: str) -> dict[str, Any]:
        root = Path(base).expanduser()
        if not root.is_dir():
            return {"hub": base}
        files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
        return {
            "files": [
                {
                    "name": p.relative_to(root).as_posix(),
                    "sha256": sha256_file(p),
                    "url": f"/models/{name}/base/{p.relative_to(root).as_posix()}",
                }
                for p in files
            ]
        }

    def query(self, digest: str) -> tuple[list[int], list[int]] | None:
        from openledger.ledger.receipts.queries import ReceiptQueries

        return ReceiptQueries(self.node.ledger.db).get(digest)

    # ------------------------------------------------------------------ files

    def adapter_file(self, model: str, name: str) -> Path:
        """One of the published adapter's files (by name, from a fixed list)."""
        row = self.node.models.get(model)
        path = Path(row["adapter_dir"]) / name
        if name not in ADAPTER_FILES or not path.is_file():
            raise NotFoundError(
                f"Model {row['name']!r} publishes no file {name[:80]!r}.",
                field="name",
                value=name[:80],
                fix=f"ask for one of {', '.join(ADAPTER_FILES)}.",
            )
        return path

    def base_file(self, model: str, rel: str) -> Path:
        """A file of the model's base when it is a local directory (never outside it)."""
        row = self.node.models.get(model)
        root = Path(row["base"]).expanduser().resolve()
        path = (root / rel).resolve()
        if not root.is_dir() or root not in path.parents or not path.is_file():
            raise NotFoundError(
                f"Model {row['name']!r} has no base file {rel[:80]!r}.",
                field="path",
                value=rel[:80],
                fix="use a name from the proof's files.base list (a hub base is downloaded "
                "from the hub).",
            )
        return path


class LocalSource:
    """A node home's own artefacts, for verification on the node itself."""

    def __init__(self, node: Any) -> None:
        self.node = node
        self.proofs = ProofService(node)

    def receipt(self, ref: str) -> dict[str, Any]:
        return self.node.ledger.receipt(ref)

    def operator(self) -> str:
        return self.node.accounts.operator_address()

    def artefacts(self, body: Mapping[str, Any], workdir: Path) -> ModelArtefacts:
        node = self.node
        model = node.models.get(body["model"]["name"])
        params = node.jobs.get(model["job"])["params"]
        rows = node.snapshots.table(params["datanet"], params["version"]).to_pylist()
        return ModelArtefacts(
            model_id=model["id"],
            name=model["name"],
            base=model["base"],
            adapter_dir=Path(model["adapter_dir"]),
            snapshot_rows=rows,
            index_metas=self.proofs.index_metas(model["name"], model["attribution_policy"]),
        )

    def query(self, digest: str) -> tuple[list[int], list[int]] | None:
        return self.proofs.query(digest)

    def on_chain(self, model_id: int) -> OnChain:
        m = self.node.contracts.models.model(model_id)
        roots = self.node.contracts.models.snapshot_roots(model_id)
        return OnChain(
            adapter_sha256="0x" + bytes(m.adapter_hash).hex(),
            snapshot_roots=["0x" + bytes(r).hex() for r in roots],
            index_hash="0x" + bytes(m.index_hash).hex(),
            metadata_uri=str(m.metadata_uri),
        )


def read_parquet_rows(path: Path) -> list[dict[str, Any]]:
    return pq.read_table(path).to_pylist()


DEFAULT_SAMPLE = 100  # an epoch with more receipts is sampled unless --sample says otherwise


def epoch_receipts(node: Any, number: int) -> list[int]:
    """The sequence numbers of the receipts epoch ``number`` settled."""
    from sqlalchemy import select

    from openledger.store.ledger_tables import ReceiptRow

    with node.ledger.db.session() as s:
        return list(
            s.scalars(
                select(ReceiptRow.seq).where(ReceiptRow.epoch == number).order_by(ReceiptRow.seq)
            )
        )


def sample_receipts(seqs: list[int], number: int, k: int | None) -> list[int]:
    """All of them, or ``k`` chosen by sha256(epoch:seq) — a sample anyone can redraw."""
    import hashlib

    k = DEFAULT_SAMPLE if k is None else k
    if k >= len(seqs):
        return list(seqs)
    key = lambda seq: hashlib.sha256(f"{number}:{seq}".encode()).digest()  # noqa: E731
    return sorted(sorted(seqs, key=key)[:k])


def audit_attribution(node: Any, number: int, *, sample: int | None = None) -> dict[str, Any]:
    """Recompute the attribution of (a sample of) epoch ``number``'s receipts from the
    node's public artefacts; every mismatch is named."""
    from openledger.ledger.verification.verify import Verifier

    seqs = epoch_receipts(node, number)
    chosen = sample_receipts(seqs, number, sample)
    results = []
    with Verifier(LocalSource(node)) as verifier:
        for seq in chosen:
            results.append(verifier.receipt(node.ledger.public_id(seq)).to_dict())
    failed = [r for r in results if not r["ok"]]
    return {
        "epoch": number,
        "receipts": len(seqs),
        "checked": len(chosen),
        "ok": not failed,
        "failed": [
            {"receipt": r["receipt"], "checks": [c for c in r["checks"] if not c["ok"]]}
            for r in failed
        ],
        "results": results,
    }
