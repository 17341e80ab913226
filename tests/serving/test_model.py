"""The engine's forward on other shapes and dtypes: grouped-query attention, bfloat16."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from openledger.errors import ValidationError
from openledger.factory.base import load_base, load_tokenizer
from openledger.serving.engine import Engine, EngineConfig
from openledger.serving.model import check_architecture
from openledger.serving.sampling import SamplingParams
from tests.serving.test_engine import merged, relative_error, run_manually
from tests.tiny import make_adapter

GREEDY = SamplingParams(max_tokens=6, temperature=0, ignore_eos=True)


@pytest.fixture(scope="module")
def gqa_base(tiny_base_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random Llama with 8 query heads sharing 2 key/value heads (GQA), tiny tokenizer."""
    tokenizer = load_tokenizer(tiny_base_dir)
    torch.manual_seed(0)
    model = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=64,
            intermediate_size=96,
            num_hidden_layers=2,
            num_attention_heads=8,
            num_key_value_heads=2,
            max_position_embeddings=128,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            tie_word_embeddings=False,
        )
    )
    out = tmp_path_factory.mktemp("gqa") / "base"
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def capture(engine: Engine) -> dict[int, list[torch.Tensor]]:
    seen: dict[int, list[torch.Tensor]] = {}
    engine.on_logits = lambda rows, logits: [
        seen.setdefault(r.id, []).append(logits[i].float().clone()) for i, r in enumerate(rows)
    ]
    return seen


def test_grouped_query_attention_matches_the_merged_model(gqa_base: Path, tmp_path: Path) -> None:
    names = {}
    for i, (rank, modules) in enumerate(
        [(4, ("q_proj", "k_proj", "v_proj")), (8, ("o_proj",)), (2, ("gate_proj", "down_proj"))]
    ):
        names[f"g{i}"] = make_adapter(
            gqa_base, tmp_path / f"g{i}", rank=rank, modules=modules, seed=i
        )
    model, tokenizer = load_base(gqa_base)
    engine = Engine(model, tokenizer, lambda n: names[n], EngineConfig(max_batch=4))
    seen = capture(engine)
    prompts = [[tokenizer.bos_token_id, 40 + i, 50 + 2 * i, 60, 70 + i][: 3 + i] for i in range(3)]
    # Cold adapters: each request joins the batch when its adapter has loaded.
    requests = [
        engine.submit(p, adapter=n, params=GREEDY) for p, n in zip(prompts, names, strict=True)
    ]
    run_manually(engine, requests)
    for prompt, name, request in zip(prompts, names, requests, strict=True):
        reference = merged(gqa_base, names[name])
        full = torch.tensor([prompt + request.tokens[:-1]])
        with torch.no_grad():
            ref = reference(full).logits[0, len(prompt) - 1 :]
        assert relative_error(torch.stack(seen[request.id]), ref) < 1e-4


def test_bfloat16_engine_stays_close_to_float32(
    tiny_base_dir: Path,
    adapters_dir: Path,
) -> None:
    """The dtype the GPU path uses (bf16 weights, cache and LoRA slots), run here on CPU."""
    model, tokenizer = load_base(tiny_base_dir, dtype=torch.bfloat16)
    engine = Engine(model, tokenizer, lambda n: adapters_dir / n, EngineConfig(max_batch=4))
    assert engine.slots.dtype == torch.bfloat16 and engine.model.k_cache[0].dtype == torch.bfloat16
    seen = capture(engine)
    prompt = [
        tokenizer.bos_token_id,
        *tokenizer("The river flows", add_special_tokens=False)["input_ids"],
    ]
    engine.generate([prompt], ["ad5"], SamplingParams(max_tokens=1, temperature=0))
    with torch.no_grad():
        ref = merged(tiny_base_dir, adapters_dir / "ad5")(torch.tensor([prompt])).logits[0, -1]
    assert relative_error(next(iter(seen.values()))[0], ref) < 3e-2


def test_the_native_model_names_what_it_does_not_run(tiny_base_dir: Path) -> None:
    model, _ = load_base(tiny_base_dir)
    model.config.model_type = "gpt2"
    with pytest.raises(ValidationError, match="gpt2") as info:
        check_architecture(model)
    assert info.value.field == "base" and "generic" in info.value.fix
