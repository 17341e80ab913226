"""What anyone needs to check a receipt's attribution without trusting this node:
``/receipts/{id}/attribution-proof`` and the artefact routes it names (docs/attribution-verify.md).

The proof and the artefacts are public for whoever holds the receipt's public id; the
tokens that were attributed are in the proof only for the payer's key or the operator
token (they are the payer's prompt and answer)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import FileResponse

from openledger.http.credentials import MaybePrincipal
from openledger.http.deps import NodeDep
from openledger.ledger.verification.proofs import ProofService

router = APIRouter(tags=["attribution"])
FileName = Annotated[str, Path(max_length=255, description="A file name from the proof.")]


@router.get("/receipts/{receipt}/attribution-proof")
def attribution_proof(receipt: str, node: NodeDep, principal: MaybePrincipal) -> dict[str, Any]:
    """The receipt, the operator, where ModelRegistry is, the model's card and index
    parameters, the routes of its adapter, base and snapshot, and — for the payer or the
    operator — the tokens attributed: everything `openledger verify receipt` needs."""
    return ProofService(node).proof_for(receipt, principal)


@router.get("/models/{model}/artefacts")
def model_artefacts(model: str, node: NodeDep) -> dict[str, Any]:
    """A published model's card and the files (with sha256) a compute provider pulls to
    serve it; the adapter's hash is on chain (docs/providers.md)."""
    return ProofService(node).artefacts(model[:200])


@router.get("/models/{model}/files/{name}", response_class=FileResponse)
def adapter_file(model: str, name: FileName, node: NodeDep) -> FileResponse:
    """One of a published adapter's files (its sha256 is on chain, or in its card)."""
    return FileResponse(ProofService(node).adapter_file(model, name))


@router.get("/models/{model}/base/{path:path}", response_class=FileResponse)
def base_file(model: str, path: str, node: NodeDep) -> FileResponse:
    """A file of the model's base model when the node holds it as a local directory."""
    return FileResponse(ProofService(node).base_file(model, path[:1000]))
