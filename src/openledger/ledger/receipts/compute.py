"""What a compute provider signs for a request it served, and its check (docs/providers.md).

A gateway hands a provider a **job** (the model, the prompt's tokens, the sampling
parameters, a fresh id), signed by the gateway's operator key. The provider generates and
signs a **statement**: the job's hash and the hash of the tokens it generated. The gateway
charges the request only when that statement recovers to the provider's registered address
and names the tokens it received; the receipt then carries the job hash, the output hash and
the signature, so ``openledger audit`` can check, from the receipt alone, that the provider
paid its compute share vouched for that output.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from openledger.ledger.receipts.canonical import canonical_json, hash_hex, recover_signer

STATEMENT_VERSION = 1


def job_hash(job: Mapping[str, Any]) -> str:
    """keccak256 of the job's canonical JSON (what the gateway signs and the provider names)."""
    return hash_hex(canonical_json(dict(job)))


def output_hash(tokens: Sequence[int], finish_reason: str | None) -> str:
    """sha256 of the generated token ids (the end-of-sequence token included when it ended
    the request) and why generation stopped."""
    doc = {"tokens": [int(t) for t in tokens], "finish_reason": finish_reason}
    return "0x" + hashlib.sha256(json.dumps(doc, separators=(",", ":")).encode()).hexdigest()


def statement_digest(job: str, output: str) -> str:
    """The 32-byte digest a provider signs (EIP-191) for ``output`` generated for ``job``."""
    return hash_hex(canonical_json({"v": STATEMENT_VERSION, "job": job, "output": output}))


def statement_signer(job: str, output: str, signature: str) -> str:
    """The address that signed the statement, or "" for a malformed signature."""
    return recover_signer(statement_digest(job, output), signature)


def check_compute(section: Mapping[str, Any]) -> str:
    """A receipt's ``compute`` section: "" if its signature is the provider's, else why not."""
    try:
        signer = statement_signer(
            str(section["job"]), str(section["output"]), str(section["signature"])
        )
    except KeyError as exc:
        return f"its compute section lacks {exc.args[0]!r}"
    if not signer or signer.lower() != str(section.get("provider", "")).lower():
        return (
            f"its compute statement is signed by {signer or 'nothing'}, not by the "
            f"provider {section.get('provider')}"
        )
    return ""
