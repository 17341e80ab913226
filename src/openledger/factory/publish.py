"""Publishing a trained adapter: PEFT safetensors + model card in the node home, and a
registration in ModelRegistry (adapter hash, snapshot roots, prices)."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from sqlalchemy import func, select

from openledger.chain.calls import Plan, build, resumable
from openledger.chain.deploy import Contracts
from openledger.chain.tx import TxResult
from openledger.errors import ConflictError, NotFoundError, ValidationError
from openledger.factory.jobs import JobService
from openledger.fsutil import write_atomic
from openledger.store.db import Database
from openledger.store.factory_tables import ModelRow
from openledger.store.models import digits_id

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,62}$")
ADAPTER_FILE = "adapter_model.safetensors"
#: Attribution methods and their weights when the publisher names none (parsed and checked
#: by ``openledger.attribution.policy.parse_policy`` before it reaches here).
DEFAULT_POLICY = {"provenance": 1.0}
ZERO32 = "0x" + "00" * 32  # no attribution index yet; set later with setIndexHash


def model_dict(row: ModelRow) -> dict[str, Any]:
    return {
        "id": row.chain_id,
        "name": row.name,
        "owner": row.owner,
        "base": row.base,
        "base_fingerprint": row.base_fingerprint,
        "adapter_sha256": row.adapter_sha,
        "adapter_dir": row.adapter_dir,
        "snapshot_roots": row.snapshot_roots,
        "index_hash": row.index_hash,
        "price_in": str(row.price_in),
        "price_out": str(row.price_out),
        "job": row.job_id,
        "card": row.card,
        "attribution_policy": row.attribution_policy or dict(DEFAULT_POLICY),
        "tx_hash": row.tx_hash,
        "created_at": row.created_at.isoformat(),
    }


def held_out_records(job: dict[str, Any]) -> list[int]:
    """The records the job held out for evaluation (they never trained the adapter)."""
    path = (job.get("result") or {}).get("lineage_path")
    if not path or not Path(path).exists():
        return []
    return sorted(int(e["record"]) for e in json.loads(Path(path).read_text()).get("eval", []))


def model_card(name: str, job: dict[str, Any], adapter_sha: str) -> tuple[dict[str, Any], str]:
    """The card as data (stored, hashed) and as the README.md shipped with the adapter."""
    p, r = job["params"], job["result"] or {}
    held_out = held_out_records(job)
    card = {
        "name": name,
        "base_model": p["base"],
        "base_fingerprint": r.get("base_fingerprint"),
        "adapter_sha256": adapter_sha,
        "data": [{"datanet": p["datanet"], "version": p["version"], "root": p["snapshot_root"]}],
        "hyperparameters": p["config"],
        "metrics": {
            k: r.get(k)
            for k in (
                "base_eval_ppl",
                "adapter_eval_ppl",
                "best_eval_loss",
                "steps",
                "stopped_early",
                "tokens_per_s",
            )
        },
        "examples": {"train": r.get("train_examples"), "eval": r.get("eval_examples")},
        "held_out_records": held_out,
        "job": job["id"],
    }
    m = card["metrics"]
    if held_out:
        evaluation = f"""## Evaluation (held-out split of the snapshot)
| model | perplexity |
| --- | --- |
| base | {m["base_eval_ppl"]} |
| base + adapter | {m["adapter_eval_ppl"]} |

{len(held_out)} records were held out for this evaluation (records
{", ".join(map(str, held_out))}): they did not train the adapter, so they never earn
attribution credit for its answers (the unattributed part of a fee still reaches them, pro
rata to approved records)."""
    else:
        evaluation = """## Evaluation
No records were held out (eval_split 0): every record of the snapshot trained the adapter
and can earn attribution credit; there is no held-out perplexity."""
    text = f"""---
base_model: {p["base"]}
library_name: peft
tags: [openledger, lora]
---
# {name}

A {p["config"].get("method", "lora")} adapter of `{p["base"]}` trained by the OpenLedger Model
Factory (job {job["id"]}).

## Data lineage
| datanet | version | snapshot root |
| --- | --- | --- |
| {p["datanet"]} | {p["version"]} | `{p["snapshot_root"]}` |

Every training example's (snapshot, record, contribution, contributor) is listed in
`training_examples.json`.

{evaluation}

## Hyperparameters
```json
{json.dumps(p["config"], indent=2, sort_keys=True)}
```

Adapter sha256: `{adapter_sha}`
"""
    return card, text


@dataclass
class ModelService:
    db: Database
    jobs: JobService
    contracts: Callable[[], Contracts]
    models_dir: Path
    #: (name, adapter dir, base) -> raises if the node's engine could not serve the adapter
    #: (wired by node.py to the serving engine's check: the factory does not import it)
    check_adapter: Callable[[str, Path, str], None] | None = None

    def publish(
        self,
        job_id: int,
        *,
        name: str,
        price_in: int,
        price_out: int,
        signer: LocalAccount,
        attribution_policy: dict[str, float] | None = None,
    ) -> dict[str, Any]:
        return self.plan_publish(
            job_id,
            name=name,
            price_in=price_in,
            price_out=price_out,
            owner=signer.address,
            attribution_policy=attribution_policy,
        ).run(signer)

    def plan_publish(
        self,
        job_id: int,
        *,
        name: str,
        price_in: int,
        price_out: int,
        owner: str,
        attribution_policy: dict[str, float] | None = None,
    ) -> Plan:
        """The checks and ``registerModel``; the adapter is copied into the models folder and
        the row written once the registration is mined."""
        if not NAME_RE.match(name):
            raise ValidationError(
                f"Model name {name!r} is not allowed.",
                field="name",
                value=name,
                fix="use 2-63 lower-case letters, digits, '.', '-' or '_'.",
            )
        for field_name, price in (("price_in", price_in), ("price_out", price_out)):
            if price < 0:
                raise ValidationError(
                    f"{field_name} is negative.",
                    field=field_name,
                    value=price,
                    fix="use a price of 0 or more.",
                )
        job = self.jobs.get(job_id)
        if job["status"] != "succeeded":
            raise ConflictError(
                f"Job {job_id} is {job['status']}; only a finished training can be published.",
                field="job",
                value=job_id,
                fix="wait for it to finish, or resume it.",
            )
        adapter = Path(job["result"]["adapter_dir"])
        if not (adapter / ADAPTER_FILE).exists():
            raise NotFoundError(
                f"Job {job_id}'s adapter is missing from {adapter}.",
                field="job",
                value=job_id,
                fix="resume the job to train it again.",
            )
        if self.check_adapter is not None:
            self.check_adapter(name, adapter, job["params"]["base"])
        with self.db.session() as s:
            if s.scalar(select(ModelRow).where(ModelRow.name == name)) is not None:
                raise ConflictError(
                    f"A model named {name!r} is already published.",
                    field="name",
                    value=name,
                    fix="choose another name.",
                )
        policy = dict(attribution_policy or DEFAULT_POLICY)
        adapter_sha = hashlib.sha256((adapter / ADAPTER_FILE).read_bytes()).hexdigest()
        card, readme = model_card(name, job, adapter_sha)
        card["attribution_policy"] = policy
        roots = [job["params"]["snapshot_root"]]
        card_sha = hashlib.sha256(json.dumps(card, sort_keys=True).encode()).hexdigest()
        models = self.contracts().models
        raw_roots = [bytes.fromhex(r.removeprefix("0x")) for r in roots]
        call = build(
            models,
            "registerModel",
            job["params"]["base"][-128:],
            bytes.fromhex(adapter_sha),
            raw_roots,
            bytes.fromhex(ZERO32[2:]),
            price_in,
            price_out,
            f"sha256:{card_sha}",
        )

        args = {
            "job_id": job_id,
            "name": name,
            "owner": owner,
            "base": job["params"]["base"],
            "adapter": str(adapter),
            "lineage_path": job["result"]["lineage_path"],
            "readme": readme,
            "card": card,
            "roots": roots,
            "adapter_sha": adapter_sha,
            "price_in": price_in,
            "price_out": price_out,
            "policy": policy,
        }
        finish, resume = resumable("models.finish_publish", self.finish_publish, args)
        return Plan(
            models.client, owner, [call], finish, what=f"publish model {name!r}", resume=resume
        )

    def finish_publish(
        self,
        args: dict[str, Any],
        _payload: bytes | None,
        results: list[TxResult],
        _sig: str | None,
    ) -> dict[str, Any]:
        """Copy the adapter with its card into the models folder and write the row."""
        models = self.contracts().models
        chain_id = int(models.events(results[-1], "ModelRegistered")[0]["model_id"])
        name, card = args["name"], args["card"]
        target = self.models_dir / name
        staging = self.models_dir / f".{name}.staging"
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(Path(args["adapter"]), staging)
        shutil.copy2(args["lineage_path"], staging / "training_examples.json")
        write_atomic(staging / "README.md", args["readme"])
        write_atomic(staging / "openledger-card.json", json.dumps(card, indent=2, sort_keys=True))
        if target.exists():  # left by an earlier publish whose database write failed
            shutil.rmtree(target)
        staging.rename(target)
        with self.db.session() as s:
            row = ModelRow(
                chain_id=chain_id,
                name=name,
                owner=args["owner"],
                base=args["base"],
                base_fingerprint=str(card["base_fingerprint"] or ""),
                adapter_sha=args["adapter_sha"],
                adapter_dir=str(target),
                snapshot_roots=args["roots"],
                index_hash=ZERO32,
                price_in=args["price_in"],
                price_out=args["price_out"],
                job_id=args["job_id"],
                card=card,
                tx_hash=results[-1].tx_hash,
                attribution_policy=args["policy"],
            )
            s.add(row)
            s.flush()
            return model_dict(row)

    def set_index_hash(self, name: str, index_hash: str, *, signer: LocalAccount) -> dict[str, Any]:
        """Record the model's attribution index hash on chain (owner only), then here."""
        model = self.get(name)
        if model["owner"].lower() != signer.address.lower():
            raise ConflictError(
                f"Only the owner of {name!r} ({model['owner']}) can set its index hash.",
                field="account",
                value=signer.address,
                fix="act as the model's owner.",
            )
        self.contracts().models.set_index_hash(signer, model["id"], index_hash)
        with self.db.session() as s:
            row = s.scalar(select(ModelRow).where(ModelRow.name == model["name"]))
            row.index_hash = index_hash
            s.flush()
            return model_dict(row)

    def bases(self) -> list[str]:
        """The base models to offer a training job: this node's tiny base once it is built,
        then the bases of published models (one that is a local directory only while it is
        there), each once."""
        found: list[str] = []
        tiny = self.models_dir / "tiny-base"
        if (tiny / "config.json").exists():
            found.append(str(tiny))
        for m in self.list(0, 500)["items"]:
            if m["base"] not in found and (
                not m["base"].startswith("/") or (Path(m["base"]) / "config.json").exists()
            ):
                found.append(m["base"])
        return found

    def list(self, offset: int = 0, limit: int = 50) -> dict[str, Any]:
        with self.db.session() as s:
            total = s.scalar(select(func.count()).select_from(ModelRow)) or 0
            rows = s.scalars(select(ModelRow).order_by(ModelRow.id).offset(offset).limit(limit))
            return {
                "items": [model_dict(r) for r in rows],
                "total": total,
                "offset": offset,
                "limit": limit,
            }

    def get(self, ref: str | int) -> dict[str, Any]:
        with self.db.session() as s:
            row = s.scalar(select(ModelRow).where(ModelRow.name == str(ref)))
            if row is None and (chain_id := digits_id(ref)) is not None:
                row = s.scalar(select(ModelRow).where(ModelRow.chain_id == chain_id))
            if row is None:
                raise NotFoundError(
                    f"No published model {ref!r}.",
                    field="model",
                    value=str(ref),
                    fix="name a model published on this node.",
                )
            return model_dict(row)
