"""The serving service over a node's model registry."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from openledger.config import Settings
from openledger.errors import NotFoundError, ValidationError
from openledger.node import Node
from openledger.serving.sampling import SamplingParams
from openledger.store.factory_tables import JobRow, ModelRow
from tests.conftest import PASSWORD
from tests.tiny import make_adapter, register_models


@pytest.fixture
def node(home: Settings, tiny_base_dir: Path, adapters_dir: Path):
    from dataclasses import replace

    node = Node(replace(home, serve_max_ctx=48), password_source=lambda: PASSWORD)
    register_models(
        node.db, str(tiny_base_dir), {f"ad{i}": adapters_dir / f"ad{i}" for i in range(4)}
    )
    register_models(node.db, "org/other-base", {"elsewhere": adapters_dir / "ad9"}, first_id=2000)
    yield node
    node.close()


def test_catalogue_lists_the_models_of_the_served_base(node: Node, tiny_base_dir: Path) -> None:
    assert node.serving.base == str(tiny_base_dir)  # the base most models use
    assert [m["name"] for m in node.serving.catalogue()] == ["ad0", "ad1", "ad2", "ad3"]
    with pytest.raises(NotFoundError, match="this node serves adapters of"):
        node.serving.model("elsewhere")
    with pytest.raises(NotFoundError, match="does not exist") as info:
        node.serving.model("nope")
    assert info.value.field == "model" and "/v1/models" in info.value.fix


def test_prompts_are_tokenised_as_the_factory_trained_them(node: Node) -> None:
    tok = node.serving.tokenizer()
    ids = node.serving.encode_prompt("The river")
    assert ids[0] == tok.bos_token_id and tok.decode(ids[1:]) == "The river"
    chat = node.serving.encode_chat([{"role": "user", "content": "Hi"}])
    text = tok.decode(chat)
    assert text.startswith(tok.bos_token) and text.endswith("<|assistant|>\n")


def test_submit_checks_the_context_before_compute(node: Node) -> None:
    serving = node.serving
    with pytest.raises(ValidationError, match="maximum context length is 48") as info:
        serving.submit("ad1", [1] * 40, SamplingParams(max_tokens=9))
    assert info.value.field == "max_tokens"
    with pytest.raises(ValidationError, match="48"):
        serving.submit("ad1", [1] * 60, SamplingParams(max_tokens=1))
    result = serving.submit(
        "ad1",
        serving.encode_prompt("The river"),
        SamplingParams(max_tokens=5, temperature=0, ignore_eos=True),
    ).wait(30)
    assert len(result.tokens) == 5 and result.finish_reason == "length"
    assert serving.engine.stats()["running"] == 0


def test_tiers_and_engine_path_are_reported(node: Node) -> None:
    serving = node.serving
    assert serving.status("ad1") == {"loaded": False, "tier": "disk"}  # no engine yet
    info = serving.engine_info()
    assert info["engine"] == "native" and info["warning"] is None
    assert info["tiers"] == {"host_tier_capacity_bytes": node.settings.serve_host_tier_mb << 20}
    serving.submit(
        "ad1", serving.encode_prompt("The river"), SamplingParams(max_tokens=2, temperature=0)
    ).wait(30)
    assert serving.status("ad1") == {"loaded": True, "tier": "device"}
    tiers = serving.engine_info()["tiers"]
    assert tiers["device_slots"] == 2 * node.settings.serve_max_batch  # auto on CPU
    assert tiers["device_adapters"] >= 1 and tiers["host_tier_bytes"] > 0


def test_an_adapter_trained_on_another_copy_of_the_base_is_refused(node: Node) -> None:
    with node.db.session() as s:
        row = s.scalar(select(ModelRow).where(ModelRow.name == "ad2"))
        row.base_fingerprint = "sha256:" + "00" * 32
    serving = node.serving
    request = serving.submit("ad2", serving.encode_prompt("The river"), SamplingParams())
    with pytest.raises(ValidationError, match="fingerprint sha256:0000") as info:
        request.wait(30)
    assert "adapter_model.safetensors" in info.value.message and info.value.field == "adapter"


def test_publishing_refuses_an_adapter_the_engine_cannot_serve(
    home: Settings, tiny_base_dir: Path, tmp_path: Path
) -> None:
    from dataclasses import replace

    node = Node(replace(home, serve_max_lora_rank=4), password_source=lambda: PASSWORD)
    base = str(tiny_base_dir)
    too_big = make_adapter(tiny_base_dir, tmp_path / "big", rank=8, modules=("q_proj",), seed=1)
    renamed = tmp_path / "other"
    shutil.copytree(too_big, renamed)
    cfg = json.loads((renamed / "adapter_config.json").read_text())
    (renamed / "adapter_config.json").write_text(
        json.dumps({**cfg, "base_model_name_or_path": "org/another-base"})
    )
    for path, message in (
        (too_big, "rank 8, above the engine's limit of 4"),
        (renamed, "was trained on 'org/another-base'"),
    ):
        with node.db.session() as s:
            job = JobRow(
                kind="train",
                status="succeeded",
                params={"base": base},
                result={"adapter_dir": str(path)},
                work_dir="",
            )
            s.add(job)
            s.flush()
            job_id = job.id
        with pytest.raises(ValidationError, match=message) as info:
            node.models.plan_publish(
                job_id, name="x-lora", price_in=1, price_out=1, owner="0x" + "ab" * 20
            )
        assert str(path) in info.value.message
    node.close()
