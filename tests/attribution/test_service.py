"""Attribution for a published model through the node and the CLI, on the devnet: build,
query, stale index, on-chain index hash, and the bad-input messages."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from openledger.app import create_app
from openledger.cli.main import main
from openledger.errors import ConflictError, NotFoundError, ValidationError
from openledger.factory.runner import run_job
from openledger.units import OPEN
from tests.cli.test_train import cli_world  # noqa: F401
from tests.conftest import World, operator_headers
from tests.factory.test_jobs import FAST, learnable_snapshot

pytestmark = pytest.mark.anvil


def _published(world: World, base: Path, policy: dict | None = None, name: str = "caps") -> dict:
    node = world.node
    ref = learnable_snapshot(world, n=24)
    job = node.jobs.submit_train(ref, str(base), {**FAST, "keep_checkpoints": 3})
    run_job(node.jobs, node.snapshots, job["id"], progress=False)
    return node.models.publish(
        job["id"],
        name=name,
        price_in=OPEN // 1000,
        price_out=OPEN // 1000,
        signer=node.accounts.signer("dave"),
        attribution_policy=policy,
    )


def test_build_attribute_register_and_stale(
    cli_world: World,  # noqa: F811 - the fixture imported above
    tiny_base_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    node = cli_world.node
    model = _published(cli_world, tiny_base_dir, {"gradient": 1.0})
    with pytest.raises(NotFoundError) as err:
        node.attribution.attribute("caps", "What is the capital of X?", "The capital is Y.")
    assert "build the model's gradient attribution index" in err.value.fix

    assert (
        main(
            [
                "attribution",
                "build",
                "caps",
                "--method",
                "gradient",
                "--proj-dim",
                "128",
                "--checkpoints",
                "2",
                "--register",
                "--as",
                "dave",
                "--json",
            ]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["examples"] > 0 and summary["checkpoints"] == 2 and summary["registered"]
    on_chain = node.contracts.models.model(model["id"])
    assert "0x" + on_chain.index_hash.hex() == summary["index_hash"]
    assert node.models.get("caps")["index_hash"] == summary["index_hash"]

    lineage = json.loads((Path(model["adapter_dir"]) / "training_examples.json").read_text())
    index_dir = Path(summary["path"])
    rows = json.loads((index_dir / "meta.json").read_text())
    assert rows["n_examples"] == len(lineage["train"]) and rows["model"] == "caps"

    row = lineage["train"][0]
    prompt = "What is the capital of"
    assert (
        main(
            [
                "attribute",
                "caps",
                "--prompt",
                prompt,
                "--completion",
                " The capital is",
                "--top",
                "3",
                "--json",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["method"] == "gradient" and result["index_hash"] == summary["index_hash"]
    assert result["params"]["checkpoints"] == 2 and len(result["evidence"]) <= 3
    assert sum(s["weight"] for s in result["shares"]) == pytest.approx(1.0)
    assert {s["contribution"] for s in result["shares"]} <= {
        e["contribution"] for e in lineage["train"]
    }
    assert row["contribution"] in {s["contribution"] for s in result["shares"]}
    assert main(["attribute", "caps", "--prompt", prompt, "--completion", " The capital is"]) == 0
    assert "Top" in capsys.readouterr().out
    with TestClient(create_app(node), headers=operator_headers(node)) as client:
        r = client.post(
            "/models/caps/attribute",
            json={"prompt": prompt, "completion": " The capital is", "top": 3},
        )
        assert r.status_code == 200 and r.json()["shares"] == result["shares"]
        r = client.post("/models/caps/attribute", json={"prompt": prompt, "completion": ""})
        assert r.status_code == 422 and r.json()["field"] == "completion"
        r = client.post("/models/nope/attribute", json={"prompt": "x", "completion": "y"})
        assert r.status_code == 404

    # building again is a no-op; bad input exits non-zero with the message, no traceback
    assert (
        node.attribution.build("caps", proj_dim=128, checkpoints=2, progress=False)["index_hash"]
        == summary["index_hash"]
    )
    assert main(["attribute", "caps", "--prompt", "x", "--completion", "  "]) != 0
    err_text = capsys.readouterr().err
    assert "completion is empty" in err_text and "Traceback" not in err_text
    assert main(["attribution", "build", "caps", "--checkpoints", "9"]) != 0
    assert "--checkpoints" in capsys.readouterr().err
    assert main(["attribution", "build", "caps", "--method", "magic"]) != 0
    assert main(["attribute", "nope", "--prompt", "x", "--completion", "y"]) != 0
    with pytest.raises(ConflictError):  # only the owner posts the index hash
        node.attribution.register("caps", node.accounts.signer("alice"))
    with pytest.raises(ValidationError):
        node.attribution.attribute("caps", "x", "y", top=0)

    # a re-trained adapter under the same name makes the index stale
    meta_path = index_dir / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["adapter_sha256"] = "0" * 64
    meta_path.write_text(json.dumps(meta))
    node.attribution._attributors.clear()
    with pytest.raises(ConflictError) as err:
        node.attribution.attribute("caps", "x", "y")
    assert "stale" in err.value.message and "rebuild its gradient index" in err.value.fix
    assert main(["attribution", "build", "caps", "--proj-dim", "128", "--force"]) == 0
    assert node.attribution.attribute("caps", prompt, " The capital is").shares
    shutil.rmtree(index_dir)


def test_mixed_policy_and_datanet_indexes(
    cli_world: World,  # noqa: F811 - the fixture imported above
    tiny_base_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    node = cli_world.node
    ref = learnable_snapshot(cli_world, n=24)
    job = node.jobs.submit_train(ref, str(tiny_base_dir), FAST)
    run_job(node.jobs, node.snapshots, job["id"], progress=False)
    assert (
        main(
            [
                "model",
                "publish",
                str(job["id"]),
                "--name",
                "mixed",
                "--as",
                "dave",
                "--attribution",
                "gradient:0.5,spans:0.3,rag:0.2",
            ]
        )
        == 0
    )
    model = node.models.get("mixed")
    assert model["attribution_policy"] == {"gradient": 0.5, "rag": 0.2, "spans": 0.3}
    assert model["card"]["attribution_policy"] == model["attribution_policy"]
    assert (
        main(
            [
                "model",
                "publish",
                str(job["id"]),
                "--name",
                "bad",
                "--as",
                "dave",
                "--attribution",
                "vibes",
            ]
        )
        != 0
    )
    assert "vibes" in capsys.readouterr().err

    with pytest.raises(NotFoundError) as err:  # the policy needs all three indexes
        node.attribution.attribute("mixed", "What is the capital of", " The capital is")
    assert "gradient attribution index" in err.value.fix
    for method in ("gradient", "spans", "rag"):
        assert (
            main(
                ["attribution", "build", "mixed", "--method", method, "--proj-dim", "64", "--json"]
            )
            == 0
        )
        summary = json.loads(capsys.readouterr().out)
        assert summary["method"] == method and summary["index_hash"]
    row = node.snapshots.table("facts", 1).to_pylist()[0]
    result = node.attribution.attributor("mixed").attribute(row["prompt"], row["completion"], top=4)
    assert result.method == "mix" and set(result.params["policy"]) == {"gradient", "spans", "rag"}
    assert 0 < result.attributed <= 1.0 + 1e-9
    components = {c["method"]: c for c in result.params["components"]}
    assert components["rag"]["params"]["k"] == 4
    assert result.index_hash == node.attribution.policy_hash(model)
    assert main(["attribution", "register", "mixed", "--as", "dave"]) == 0
    assert "set on chain" in capsys.readouterr().out
    on_chain = node.contracts.models.model(model["id"])
    assert "0x" + on_chain.index_hash.hex() == result.index_hash

    # datanet-level indexes: spans (tokenizer of a base) and rag
    assert (
        main(
            [
                "attribution",
                "build",
                "--datanet",
                "facts",
                "--method",
                "spans",
                "--base",
                str(tiny_base_dir),
                "--json",
            ]
        )
        == 0
    )
    spans = json.loads(capsys.readouterr().out)
    assert spans["datanet"] == "facts@1" and spans["documents"] == 24 and spans["segments"] == 1
    assert main(["attribution", "build", "--datanet", "facts", "--method", "spans"]) != 0
    assert "--base" in capsys.readouterr().err
    assert main(["rag", "index", "facts", "--json"]) == 0
    rag_summary = json.loads(capsys.readouterr().out)
    assert rag_summary["chunks"] >= 24 and rag_summary["datanet"] == "facts@1"
    assert main(["rag", "index", "facts@7"]) != 0
