"""The serving service over a node's model registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from openledger.config import Settings
from openledger.errors import NotFoundError, ValidationError
from openledger.node import Node
from openledger.serving.sampling import SamplingParams
from tests.conftest import PASSWORD
from tests.tiny import register_models


@pytest.fixture
def node(home: Settings, tiny_base_dir: Path, adapters_dir: Path):  # noqa: ANN201
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
