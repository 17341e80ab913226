"""The contribution manifest: what a contributor signs (EIP-191) so authorship can be
checked offline by anyone holding the manifest and the records."""

from __future__ import annotations

import json
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount

MANIFEST_VERSION = 1


def canonical_bytes(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def build_manifest(
    *,
    datanet_chain_id: int,
    datanet_name: str,
    contributor: str,
    root: str,
    record_hashes: list[str],
    files: list[dict[str, Any]],
    stake: int,
    created_at: str,
) -> dict[str, Any]:
    """The document the contributor signs; every field is needed to re-check the claim."""
    return {
        "type": "openledger.contribution",
        "version": MANIFEST_VERSION,
        "datanet": {"id": datanet_chain_id, "name": datanet_name},
        "contributor": contributor,
        "root": root,
        "record_count": len(record_hashes),
        "records": record_hashes,
        "files": files,
        "stake": str(stake),
        "created_at": created_at,
    }


def sign_manifest(manifest: dict[str, Any], signer: LocalAccount) -> str:
    signed = signer.sign_message(encode_defunct(primitive=canonical_bytes(manifest)))
    return "0x" + bytes(signed.signature).hex()


def recover_signer(manifest: dict[str, Any], signature: str) -> str:
    """The address that signed ``manifest`` (EIP-191 personal_sign over its canonical JSON)."""
    return Account.recover_message(
        encode_defunct(primitive=canonical_bytes(manifest)), signature=signature
    )


def verify_manifest(manifest: dict[str, Any], signature: str) -> bool:
    """True when the signature is the named contributor's."""
    try:
        return recover_signer(manifest, signature).lower() == str(manifest["contributor"]).lower()
    except (ValueError, KeyError):
        return False
