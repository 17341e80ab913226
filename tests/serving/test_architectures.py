"""Every native architecture, row by row against Hugging Face with the adapter merged.

Each base is a random-weight tiny config built here (nothing downloaded) with the tiny
tokenizer; a batch mixes a base row with adapters of different ranks and target sets
(all of the architecture's targets in one of them, DoRA in another), and every row's
logits at every step must equal the merged model's on the same tokens, its greedy tokens
the merged model's ``generate``. Sliding windows are shorter than the prompts, so the
windowed layers really drop keys.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import transformers

from openledger.factory.base import load_base, load_tokenizer
from openledger.serving.arch import NATIVE
from openledger.serving.engine import Engine, EngineConfig
from openledger.serving.sampling import SamplingParams
from tests.serving.test_engine import hf_greedy, merged, relative_error, run_manually
from tests.tiny import make_adapter

STEPS = 6
GREEDY = SamplingParams(max_tokens=STEPS, temperature=0, ignore_eos=True)

COMMON = {
    "hidden_size": 64,
    "intermediate_size": 96,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 128,
    "initializer_range": 0.1,
    "tie_word_embeddings": False,
}

#: model_type -> (config class, its options beyond COMMON)
CONFIGS: dict[str, tuple[str, dict]] = {
    "mistral": ("MistralConfig", {"num_hidden_layers": 2, "sliding_window": 5}),
    "qwen2": ("Qwen2Config", {"num_hidden_layers": 2}),  # q/k/v biases
    "qwen3": ("Qwen3Config", {"num_hidden_layers": 2, "head_dim": 24}),  # q/k norms
    "gemma2": (
        "Gemma2Config",
        {
            "num_hidden_layers": 2,
            "head_dim": 16,
            "sliding_window": 5,
            "query_pre_attn_scalar": 24,
            "attn_logit_softcapping": 5.0,
            "final_logit_softcapping": 3.0,
        },
    ),
    "gemma3_text": (
        "Gemma3TextConfig",
        {
            "num_hidden_layers": 3,
            "head_dim": 16,
            "sliding_window": 5,
            "layer_types": ["sliding_attention", "full_attention", "sliding_attention"],
        },
    ),
    "phi3": ("Phi3Config", {"num_hidden_layers": 2, "partial_rotary_factor": 0.5}),
}


def build_base(model_type: str, tokenizer_dir: Path, out: Path) -> Path:
    tokenizer = load_tokenizer(tokenizer_dir)
    cls_name, extra = CONFIGS[model_type]
    special = {
        "vocab_size": len(tokenizer),
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    config = getattr(transformers, cls_name)(**COMMON, **extra, **special)
    if model_type == "qwen2":
        config.attention_bias = True
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config)
    if model_type == "qwen2":  # biases start at zero: make them count
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name.endswith("bias"):
                    p.normal_(0, 0.1)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def adapter_plan(model_type: str) -> list[tuple[int, tuple[str, ...], bool]]:
    """(rank, targets, dora) per adapter: all targets, a subset, and a DoRA one."""
    targets = NATIVE[model_type].targets
    return [(8, targets, False), (4, targets[:2] + targets[-1:], False), (16, targets[-3:], True)]


@pytest.mark.parametrize("model_type", sorted(CONFIGS))
def test_every_row_equals_the_merged_model(
    model_type: str, tiny_base_dir: Path, tmp_path: Path
) -> None:
    base = build_base(model_type, tiny_base_dir, tmp_path / "base")
    names: dict[str, Path] = {}
    for i, (rank, targets, dora) in enumerate(adapter_plan(model_type)):
        names[f"x{i}"] = make_adapter(
            base, tmp_path / f"x{i}", rank=rank, modules=targets, seed=10 + i, dora=dora
        )
    model, tokenizer = load_base(base)
    engine = Engine(model, tokenizer, lambda n: names[n], EngineConfig(max_batch=4))
    assert engine.kind == "native" and engine.warning is None
    seen: dict[int, list[torch.Tensor]] = {}
    engine.on_logits = lambda rows, logits: [
        seen.setdefault(r.id, []).append(logits[i].clone()) for i, r in enumerate(rows)
    ]
    g = torch.Generator().manual_seed(1)
    prompts = [
        [tokenizer.bos_token_id, *torch.randint(5, 400, (5 + 2 * i,), generator=g).tolist()]
        for i in range(4)
    ]
    adapters: list[str | None] = [None, *names]
    for name in names:
        engine.adapters.load_now(name)
    requests = [
        engine.submit(p, adapter=a, params=GREEDY) for p, a in zip(prompts, adapters, strict=True)
    ]
    run_manually(engine, requests)
    for prompt, name, request in zip(prompts, adapters, requests, strict=True):
        reference = load_base(base)[0] if name is None else merged(base, names[name])
        expected = hf_greedy(reference, prompt, STEPS)[0, len(prompt) :].tolist()
        assert request.tokens == expected, (model_type, name)
        full = torch.tensor([prompt + request.tokens[:-1]])
        with torch.no_grad():
            ref = reference(full).logits[0, len(prompt) - 1 :]
        error = relative_error(torch.stack(seen[request.id]), ref)
        assert error < 1e-4, (model_type, name, error)
