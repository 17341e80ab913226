"""The generic path: causal LMs the native engine does not run, through HF's forward and PEFT.

GPT-2 (Conv1D layers, learned positions) and GPT-NeoX (fused query_key_value, rotary) on
random-weight tiny configs: a batch of a base row and rows of two adapters, prompts of
different lengths, must give each row the merged model's greedy tokens and logits, with
the KV cache merged per adapter group and without it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import transformers

from openledger.errors import ValidationError
from openledger.factory.base import load_base, load_tokenizer
from openledger.serving.engine import Engine, EngineConfig
from openledger.serving.sampling import SamplingParams
from tests.serving.test_engine import hf_greedy, merged, relative_error, run_manually
from tests.tiny import make_adapter

GREEDY = SamplingParams(max_tokens=5, temperature=0, ignore_eos=True)

BASES = {
    "gpt2": (
        transformers.GPT2Config,
        {"n_embd": 64, "n_layer": 2, "n_head": 4, "n_positions": 128, "initializer_range": 0.1},
        [("c_attn",), ("c_attn", "c_fc", "mlp.c_proj")],
    ),
    "gpt_neox": (
        transformers.GPTNeoXConfig,
        {
            "hidden_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "intermediate_size": 96,
            "max_position_embeddings": 128,
            "initializer_range": 0.1,
        },
        [("query_key_value",), ("query_key_value", "dense_4h_to_h")],
    ),
}


def build(model_type: str, tokenizer_dir: Path, out: Path) -> Path:
    tokenizer = load_tokenizer(tokenizer_dir)
    cls, options, _ = BASES[model_type]
    config = cls(
        **options,
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    transformers.AutoModelForCausalLM.from_config(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="module", params=sorted(BASES))
def generic_base(
    request: pytest.FixtureRequest, tiny_base_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, Path]]:
    root = tmp_path_factory.mktemp(request.param)
    base = build(request.param, tiny_base_dir, root / "base")
    targets = BASES[request.param][2]
    adapters = {
        f"g{i}": make_adapter(base, root / f"g{i}", rank=4 * (i + 1), modules=t, seed=20 + i)
        for i, t in enumerate(targets)
    }
    return base, adapters


@pytest.mark.parametrize("cached", [True, False])
def test_generic_rows_equal_the_merged_model(
    generic_base: tuple[Path, dict[str, Path]], cached: bool
) -> None:
    base, adapters = generic_base
    model, tokenizer = load_base(base)
    engine = Engine(model, tokenizer, lambda n: adapters[n], EngineConfig(max_batch=4))
    assert engine.kind == "generic"
    assert model.config.model_type in engine.warning and "one forward per" in engine.warning
    engine.model.use_cache = cached
    seen: dict[int, list[torch.Tensor]] = {}
    engine.on_logits = lambda rows, logits: [
        seen.setdefault(r.id, []).append(logits[i].clone()) for i, r in enumerate(rows)
    ]
    g = torch.Generator().manual_seed(3)
    prompts = [
        [tokenizer.bos_token_id, *torch.randint(5, 400, (3 + 2 * i,), generator=g).tolist()]
        for i in range(4)
    ]
    names: list[str | None] = [None, "g0", "g1", "g0"]
    requests = [
        engine.submit(p, adapter=a, params=GREEDY) for p, a in zip(prompts, names, strict=True)
    ]
    run_manually(engine, requests)
    assert engine.stats()["running"] == 0 and engine.slots.loads == 2
    assert engine.model.use_cache is cached  # the merged cache worked: no fallback
    for prompt, name, request in zip(prompts, names, requests, strict=True):
        reference = load_base(base)[0] if name is None else merged(base, adapters[name])
        expected = hf_greedy(reference, prompt, 5)[0, len(prompt) :].tolist()
        assert request.tokens == expected, name
        full = torch.tensor([prompt + request.tokens[:-1]])
        with torch.no_grad():
            ref = reference(full).logits[0, len(prompt) - 1 :]
        assert relative_error(torch.stack(seen[request.id]), ref) < 1e-4, name


def test_generic_adapter_for_another_layout_is_refused(
    generic_base: tuple[Path, dict[str, Path]], adapters_dir: Path
) -> None:
    base, _ = generic_base
    model, tokenizer = load_base(base)
    engine = Engine(model, tokenizer, lambda n: adapters_dir / n, EngineConfig(max_batch=2))
    with pytest.raises(ValidationError, match=r"adapter_model\.safetensors.*does not have"):
        engine.adapters.load_now("ad0")  # a Llama adapter: q_proj is not a module here
