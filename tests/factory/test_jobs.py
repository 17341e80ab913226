"""Training jobs end to end on the devnet: submit, run, resume after SIGKILL, publish."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from openledger.errors import NotFoundError, ValidationError
from openledger.factory.runner import run_job
from openledger.units import OPEN
from tests.conftest import World

pytestmark = pytest.mark.anvil

FAST = {
    "epochs": 3,
    "batch_size": 4,
    "max_seq_len": 64,
    "rank": 4,
    "alpha": 8,
    "lr": 5e-3,
    "eval_split": 0.2,
    "checkpoint_every": 5,
    "seed": 0,
}


def _word(rng: random.Random) -> str:
    return "".join(rng.choice("bcdfghklmnprstvz") + rng.choice("aeiou") for _ in range(3))


def learnable_snapshot(world: World, n: int = 40) -> str:
    """A datanet of n prompt/completion facts ('capital of X?' -> 'Y.'), approved, frozen."""
    rng = random.Random(3)
    lines = [
        json.dumps(
            {
                "prompt": f"What is the capital of {_word(rng).title()}?",
                "completion": f"The capital is {_word(rng).title()} {_word(rng)}.",
            }
        )
        for _ in range(n)
    ]
    node, acc = world.node, world.node.accounts
    c = node.contributions.contribute(
        world.datanet,
        [world.write("caps.jsonl", "\n".join(lines) + "\n")],
        stake=10 * OPEN,
        signer=acc.signer("alice"),
    )
    for v in ("bob", "carol"):
        node.reviews.review(c.contribution_id, signer=acc.signer(v), approve=True)
    node.snapshots.snapshot(world.datanet, signer=acc.signer("dave"))
    return f"{world.datanet}@1"


def test_bad_requests(world: World, tiny_base_dir: Path) -> None:
    jobs = world.node.jobs
    with pytest.raises(NotFoundError):
        jobs.submit_train("facts@1", str(tiny_base_dir), FAST)  # no snapshot yet
    ref = learnable_snapshot(world)
    with pytest.raises(NotFoundError):
        jobs.submit_train("facts@9", str(tiny_base_dir), FAST)
    with pytest.raises(NotFoundError) as err:
        jobs.submit_train(ref, str(tiny_base_dir / "nope"), FAST)
    assert err.value.field == "base"
    with pytest.raises(ValidationError) as err:
        jobs.submit_train(ref, str(tiny_base_dir), {**FAST, "rank": 0})
    assert err.value.field == "rank"
    job = jobs.submit_train(ref, str(tiny_base_dir), {**FAST, "target_modules": ["qkv_proj"]})
    with pytest.raises(ValidationError) as err:
        run_job(jobs, world.node.snapshots, job["id"], progress=False)
    assert "qkv_proj" in err.value.message and "q_proj" in (err.value.fix or "")
    assert jobs.get(job["id"])["status"] == "failed"


def test_train_publish_and_load(world: World, tiny_base_dir: Path) -> None:
    from peft import PeftModel

    from openledger.factory.base import load_base

    node = world.node
    ref = learnable_snapshot(world)
    job = node.jobs.submit_train(ref, str(tiny_base_dir), FAST)
    done = run_job(node.jobs, node.snapshots, job["id"], progress=False)
    r = done["result"]
    assert done["status"] == "succeeded"
    assert r["adapter_eval_ppl"] < r["base_eval_ppl"]
    assert done["loss_curve"] and Path(done["loss_curve"]).stat().st_size > 1000
    lineage = json.loads(Path(r["lineage_path"]).read_text())["train"]
    assert {e["contribution"] for e in lineage} == {1} and all(e["contributor"] for e in lineage)

    model = node.models.publish(
        job["id"],
        name="caps",
        price_in=OPEN // 1000,
        price_out=2 * OPEN // 1000,
        signer=node.accounts.signer("dave"),
    )
    on_chain = node.contracts.models.model(model["id"])
    assert on_chain.adapter_hash.hex() == model["adapter_sha256"]
    assert node.contracts.models.snapshot_roots(model["id"]) == [
        bytes.fromhex(node.snapshots.get("facts", 1)["root"][2:])
    ]
    published = Path(model["adapter_dir"])
    assert (published / "adapter_model.safetensors").exists()
    assert "snapshot root" in (published / "README.md").read_text()
    base, tok = load_base(tiny_base_dir)
    ids = tok("What is the capital of", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        base_logits = base(ids).logits
        a = PeftModel.from_pretrained(base, str(published)).eval()(ids).logits
        b_base, _ = load_base(tiny_base_dir)
        b = PeftModel.from_pretrained(b_base, r["adapter_dir"]).eval()(ids).logits
    assert torch.equal(a, b) and not torch.allclose(a, base_logits)
    assert node.models.get("caps")["card"]["data"][0]["version"] == 1


KILLER = """
import os, signal, sys
import openledger.factory.runner as runner
calls = {"n": 0}
def killer(jobs, job_id):
    def should_stop():
        calls["n"] += 1
        if calls["n"] == int(os.environ["KILL_AT_CALL"]):
            os.kill(os.getpid(), signal.SIGKILL)
        return False
    return should_stop
runner.cancel_checker = killer
from openledger.cli.main import main
sys.exit(main(["jobs", "run", sys.argv[1], "--quiet"]))
"""


def test_sigkill_and_resume_gives_the_same_adapter(world: World, tiny_base_dir: Path) -> None:
    from safetensors.torch import load_file

    node = world.node
    ref = learnable_snapshot(world)
    whole = node.jobs.submit_train(ref, str(tiny_base_dir), FAST)
    run_job(node.jobs, node.snapshots, whole["id"], progress=False)

    killed = node.jobs.submit_train(ref, str(tiny_base_dir), FAST)
    env = {
        **os.environ,
        "KILL_AT_CALL": "13",
        "OPENLEDGER_HOME": str(node.settings.home),
        "OPENLEDGER_CHAIN_PORT": str(node.settings.chain_port),
        "OPENLEDGER_ADDRESSES": str(node.settings.addresses_path),
        "OPENLEDGER_DB_URL": node.settings.db_url,
    }
    proc = subprocess.run(
        [sys.executable, "-c", KILLER, str(killed["id"])],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -9, proc.stderr
    mid = node.jobs.get(killed["id"])
    assert mid["status"] == "running" and not mid["alive"]
    checkpoints = list((Path(mid["work_dir"]) / "checkpoints").glob("step-*"))
    assert checkpoints, "the killed run left no checkpoint"

    resumed = run_job(node.jobs, node.snapshots, killed["id"], resume=True, progress=False)
    assert resumed["status"] == "succeeded"
    a = load_file(Path(whole["work_dir"]) / "adapter" / "adapter_model.safetensors")
    b = load_file(Path(resumed["result"]["adapter_dir"]) / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-6, rtol=1e-5)
    steps = [m["step"] for m in node.jobs.metrics(killed["id"]) if "train_loss" in m]
    assert steps == sorted(set(steps))  # no step recorded twice


def test_snapshot_without_usable_examples(world: World, tiny_base_dir: Path) -> None:
    node = world.node
    ref = learnable_snapshot(world)
    job = node.jobs.submit_train(ref, str(tiny_base_dir), {**FAST, "max_seq_len": 8})
    with pytest.raises(ValidationError) as err:
        run_job(node.jobs, node.snapshots, job["id"], progress=False)
    assert "no training examples" in err.value.message and err.value.fix
    assert node.jobs.get(job["id"])["status"] == "failed"
