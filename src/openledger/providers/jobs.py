"""The job a gateway hands a provider, signed by the gateway, and the provider's checks of it.

A job names the model (name, registry id, adapter hash), the prompt's token ids and the
sampling parameters, with a fresh random id and the time it was issued. The gateway signs
its hash (EIP-191, the operator key); a provider serves only jobs signed by a gateway it
accepts, issued within ``MAX_AGE_S``, and never the same job id twice, so a job cannot be
replayed to make it compute (or sign) again.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Collection, Mapping
from typing import Any

from openledger.errors import AuthError, ValidationError
from openledger.ledger.receipts.canonical import ReceiptSigner, recover_signer
from openledger.ledger.receipts.compute import job_hash
from openledger.serving.sampling import SamplingParams

JOB_VERSION = 1
MAX_AGE_S = 120  # a job older (or newer) than this is refused
MAX_PROMPT_TOKENS = 1 << 16
SEEN_JOBS = 100_000  # job ids remembered against replay (well over MAX_AGE_S of traffic)


def sampling_doc(p: SamplingParams) -> dict[str, Any]:
    return {
        "max_tokens": p.max_tokens,
        "temperature": p.temperature,
        "top_p": p.top_p,
        "stop": list(p.stop),
        "seed": p.seed,
        "ignore_eos": p.ignore_eos,
    }


def make_job(
    model: Mapping[str, Any], prompt: list[int], params: SamplingParams, gateway: str
) -> dict[str, Any]:
    """A job for ``model`` (a model card: name, id, adapter_sha256)."""
    return {
        "v": JOB_VERSION,
        "id": "0x" + secrets.token_hex(16),
        "gateway": gateway,
        "model": str(model["name"]),
        "model_id": int(model["id"]),
        "adapter_sha256": str(model["adapter_sha256"]),
        "prompt": [int(t) for t in prompt],
        "params": sampling_doc(params),
        "issued_at": int(time.time()),
    }


def sign_job(job: Mapping[str, Any], signer: ReceiptSigner) -> str:
    return signer.sign(job_hash(job))


class JobChecker:
    """A provider's gate: the signature is an accepted gateway's, the job is fresh, its id
    unseen, its fields well-formed. Thread-safe."""

    def __init__(self, gateways: Collection[str], *, clock=time.time) -> None:
        self.gateways = {g.lower() for g in gateways}
        self._clock = clock
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, job: Any, signature: Any) -> tuple[dict[str, Any], SamplingParams, str]:
        """(job, its sampling parameters, its hash), or AuthError / ValidationError."""
        job = _well_formed(job)
        digest = job_hash(job)
        signer = recover_signer(digest, signature) if isinstance(signature, str) else ""
        if not signer or signer.lower() not in self.gateways:
            raise AuthError(
                f"the job is signed by {signer or 'nothing'}, not by a gateway this provider "
                "serves.",
                field="signature",
                value=signer or None,
                fix="send jobs signed by the gateway's operator key; the provider lists the "
                "gateways it accepts (serve --provider --gateway ADDRESS).",
            )
        age = self._clock() - job["issued_at"]
        if abs(age) > MAX_AGE_S:
            raise ValidationError(
                f"the job was issued {int(age)} s ago; jobs older or newer than {MAX_AGE_S} s "
                "are refused.",
                field="issued_at",
                value=job["issued_at"],
                fix="check both machines' clocks and send a fresh job.",
            )
        with self._lock:
            if job["id"] in self._seen:
                raise ValidationError(
                    f"job {job['id']} was already served.",
                    field="id",
                    value=job["id"],
                    fix="send every request as a new job with a fresh id.",
                )
            self._seen[job["id"]] = None
            while len(self._seen) > SEEN_JOBS:
                self._seen.popitem(last=False)
        p = job["params"]
        params = SamplingParams(
            max_tokens=p["max_tokens"],
            temperature=p["temperature"],
            top_p=p["top_p"],
            stop=tuple(p["stop"]),
            seed=p["seed"],
            ignore_eos=p["ignore_eos"],
        )
        return job, params, digest


def _well_formed(job: Any) -> dict[str, Any]:
    def bad(what: str, value: Any = None) -> ValidationError:
        return ValidationError(
            f"the job's {what} is missing or malformed.",
            field=what,
            value=value,
            fix="send a job made by a gateway (make_job).",
        )

    if not isinstance(job, dict) or job.get("v") != JOB_VERSION:
        raise bad("v")
    for key, kind in (
        ("id", str),
        ("gateway", str),
        ("model", str),
        ("adapter_sha256", str),
        ("model_id", int),
        ("issued_at", int),
        ("prompt", list),
        ("params", dict),
    ):
        if not isinstance(job.get(key), kind) or isinstance(job.get(key), bool):
            raise bad(key)
    prompt = job["prompt"]
    if (
        not prompt
        or len(prompt) > MAX_PROMPT_TOKENS
        or not all(
            isinstance(t, int) and not isinstance(t, bool) and 0 <= t < 1 << 31 for t in prompt
        )
    ):
        raise bad("prompt", len(prompt))
    p = job["params"]
    if set(p) != {"max_tokens", "temperature", "top_p", "stop", "seed", "ignore_eos"}:
        raise bad("params")
    if not isinstance(p["stop"], list) or not all(isinstance(s, str) for s in p["stop"]):
        raise bad("params.stop")
    return job
