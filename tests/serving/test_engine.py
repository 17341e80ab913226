"""The engine against the merged model: every row of a mixed batch is the request served
alone by its adapter merged into the base (W + s·BA), to 1e-4 relative in float32."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import torch
from peft import PeftModel

from openledger.errors import NotFoundError, ValidationError
from openledger.factory.base import load_base
from openledger.serving.adapters import load_adapter
from openledger.serving.engine import Engine, EngineConfig, Request
from openledger.serving.sampling import SamplingParams
from tests.tiny import make_adapter

GREEDY = SamplingParams(max_tokens=8, temperature=0, ignore_eos=True)


def prompts(tokenizer, n: int) -> list[list[int]]:
    texts = [f"Fact {i}: the river number {i} flows " + "north " * (i % 5) for i in range(n)]
    return [
        [tokenizer.bos_token_id] + tokenizer(t, add_special_tokens=False)["input_ids"]
        for t in texts
    ]


def make_engine(base: Path, adapters: Path, **config: object) -> Engine:
    model, tokenizer = load_base(base)
    return Engine(model, tokenizer, lambda name: adapters / name, EngineConfig(**config))


def merged(base: Path, adapter: Path) -> torch.nn.Module:
    model, _ = load_base(base)
    return PeftModel.from_pretrained(model, adapter).merge_and_unload().eval()


def hf_greedy(model: torch.nn.Module, prompt: list[int], n: int) -> torch.Tensor:
    ids = torch.tensor([prompt])  # bos is id 0: give the mask explicitly, never via pad id
    return model.generate(
        ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=n,
        do_sample=False,
        eos_token_id=None,
        pad_token_id=-1,
    )


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


def run_manually(engine: Engine, requests: list[Request], limit: int = 500) -> None:
    for _ in range(limit):
        if all(r.done for r in requests):
            return
        if not engine.step():
            time.sleep(0.005)
    raise AssertionError("the requests did not finish")


def test_mixed_batch_of_16_adapters_equals_each_merged_model(
    tiny_base_dir: Path,
    adapters_dir: Path,
) -> None:
    engine = make_engine(tiny_base_dir, adapters_dir, device_slots=16)
    names = [f"ad{i}" for i in range(16)]
    seen: dict[int, list[torch.Tensor]] = {}
    engine.on_logits = lambda rows, logits: [
        seen.setdefault(r.id, []).append(logits[i].clone()) for i, r in enumerate(rows)
    ]
    batch = prompts(engine.tokenizer, 16)
    for name in names:  # all warm: one prefill batch, then one decode batch of 16
        engine.adapters.load_now(name)
    requests = [
        engine.submit(p, adapter=n, params=GREEDY) for p, n in zip(batch, names, strict=True)
    ]
    run_manually(engine, requests)
    assert engine.slots.rank == 16  # ranks 2 … 16 share the pool, padded with zeros
    worst = 0.0
    for request, name, prompt in zip(requests, names, batch, strict=True):
        reference = merged(tiny_base_dir, adapters_dir / name)
        generated = hf_greedy(reference, prompt, 8)
        assert request.tokens == generated[0, len(prompt) :].tolist(), name
        full = torch.tensor([prompt + request.tokens[:-1]])
        with torch.no_grad():
            ref_logits = reference(full).logits[0, len(prompt) - 1 :]
        ours = torch.stack(seen[request.id])
        assert ours.shape == ref_logits.shape
        worst = max(worst, relative_error(ours, ref_logits))
    assert worst < 1e-4, worst


def test_requests_join_and_leave_between_steps(
    tiny_base_dir: Path,
    adapters_dir: Path,
) -> None:
    """Continuous batching: rows finish at different steps, new ones join, rows compact."""
    solo = make_engine(tiny_base_dir, adapters_dir)
    engine = make_engine(tiny_base_dir, adapters_dir, max_batch=6, device_slots=5)
    batch = prompts(engine.tokenizer, 12)
    names = [f"ad{(3 * i) % 16}" for i in range(12)]
    params = [
        SamplingParams(max_tokens=3 + i % 5, temperature=0, ignore_eos=True) for i in range(12)
    ]
    for name in set(names):
        engine.adapters.load_now(name)
    first = [engine.submit(batch[i], adapter=names[i], params=params[i]) for i in range(6)]
    for _ in range(3):
        engine.step()
    assert engine.stats()["running"] <= 6
    rest = [engine.submit(batch[i], adapter=names[i], params=params[i]) for i in range(6, 12)]
    run_manually(engine, first + rest)
    for i, request in enumerate(first + rest):
        expected = solo.generate([batch[i]], [names[i]], params[i])[0].tokens
        assert request.tokens == expected, i
        assert len(request.tokens) == params[i].max_tokens
    stats = engine.stats()
    assert stats["running"] == 0 and stats["free_rows"] == 6 and stats["pinned_slots"] == 0
    assert stats["slot_evictions"] > 0  # 8 adapters through 5 slots


def test_cold_adapter_loads_without_stalling_running_requests(
    tiny_base_dir: Path,
    adapters_dir: Path,
) -> None:
    gate = threading.Event()

    def slow_loader(name: str, path: Path):
        if name == "ad5":
            assert gate.wait(10)
        return load_adapter(name, path)

    model, tokenizer = load_base(tiny_base_dir)
    engine = Engine(
        model, tokenizer, lambda n: adapters_dir / n, EngineConfig(), loader=slow_loader
    )
    engine.adapters.load_now("ad1")
    long = SamplingParams(max_tokens=40, temperature=0, ignore_eos=True)
    warm = engine.submit(prompts(tokenizer, 1)[0], adapter="ad1", params=long)
    engine.step()
    cold = engine.submit(prompts(tokenizer, 2)[1], adapter="ad5", params=GREEDY)
    for _ in range(10):
        engine.step()
    assert len(warm.tokens) == 11  # one per step while ad5 is still loading
    assert cold.tokens == [] and engine.stats()["waiting"] == 1
    gate.set()
    run_manually(engine, [warm, cold])
    assert len(cold.tokens) == 8


def test_cancelled_request_frees_its_row_and_slot(
    tiny_base_dir: Path,
    adapters_dir: Path,
) -> None:
    engine = make_engine(tiny_base_dir, adapters_dir, max_batch=4)
    engine.adapters.load_now("ad2")
    request = engine.submit(
        prompts(engine.tokenizer, 1)[0],
        adapter="ad2",
        params=SamplingParams(max_tokens=200, ignore_eos=True),
    )
    for _ in range(3):
        engine.step()
    assert engine.stats()["running"] == 1 and engine.stats()["pinned_slots"] == 1
    request.cancel()
    engine.step()
    assert request.done and request.finish_reason == "cancelled"
    assert len(request.tokens) == 3
    stats = engine.stats()
    assert stats["running"] == 0 and stats["free_rows"] == 4 and stats["pinned_slots"] == 0
    assert list(request.events())[-1].finish_reason == "cancelled"


def test_seeded_sampling_is_reproducible_alone_and_in_a_batch(
    tiny_base_dir: Path,
    adapters_dir: Path,
) -> None:
    engine = make_engine(tiny_base_dir, adapters_dir)
    batch = prompts(engine.tokenizer, 6)
    params = SamplingParams(max_tokens=12, temperature=1.0, top_p=0.9, seed=7, ignore_eos=True)
    alone = engine.generate([batch[0]], ["ad4"], params)[0].tokens
    mixed = engine.generate(batch, ["ad4", "ad1", "ad2", None, "ad9", "ad4"], params)[0].tokens
    other_seed = engine.generate(
        [batch[0]],
        ["ad4"],
        SamplingParams(max_tokens=12, temperature=1.0, top_p=0.9, seed=8, ignore_eos=True),
    )[0].tokens
    assert alone == mixed
    assert other_seed != alone


def test_stop_sequences_and_eos_end_a_request(
    tiny_base_dir: Path,
    adapters_dir: Path,
) -> None:
    engine = make_engine(tiny_base_dir, adapters_dir)
    prompt = prompts(engine.tokenizer, 1)[0]
    sampled = SamplingParams(max_tokens=24, temperature=1.0, seed=3, ignore_eos=True)
    full = engine.generate([prompt], ["ad0"], sampled)[0]
    assert full.finish_reason == "length" and len(full.tokens) == 24
    stop = full.text.strip()[4:7]
    assert len(stop) == 3 and stop.strip(), full.text
    with_stop = SamplingParams(
        max_tokens=24, temperature=1.0, seed=3, ignore_eos=True, stop=("never appears \u2603", stop)
    )
    streamed = engine.submit(prompt, adapter="ad0", params=with_stop)
    run_manually(engine, [streamed])
    pieces = [e.text for e in streamed.events()]
    assert streamed.finish_reason == "stop"
    assert "".join(pieces) == full.text[: full.text.index(stop)]
    assert not any(stop in p for p in pieces)
    eos = engine.eos.copy().pop()
    stops_at_eos = SamplingParams(max_tokens=24, temperature=0)
    engine.on_logits = lambda rows, logits: logits[:, eos].fill_(1e9)
    ended = engine.generate([prompt], ["ad0"], stops_at_eos)[0]
    assert ended.finish_reason == "stop" and ended.tokens == [] and ended.text == ""


def test_base_rows_and_adapter_rows_share_a_batch(
    tiny_base_dir: Path,
    adapters_dir: Path,
) -> None:
    engine = make_engine(tiny_base_dir, adapters_dir)
    batch = prompts(engine.tokenizer, 2)
    base_model, _ = load_base(tiny_base_dir)
    together = engine.generate(batch, [None, "ad7"], GREEDY)
    reference = hf_greedy(base_model, batch[0], 8)
    assert together[0].tokens == reference[0, len(batch[0]) :].tolist()
    adapted = hf_greedy(merged(tiny_base_dir, adapters_dir / "ad7"), batch[1], 8)
    assert together[1].tokens == adapted[0, len(batch[1]) :].tolist()


def test_bad_input_is_refused_before_compute(
    tiny_base_dir: Path,
    adapters_dir: Path,
) -> None:
    engine = make_engine(tiny_base_dir, adapters_dir, max_ctx=32)
    with pytest.raises(ValidationError, match="32 tokens"):
        engine.submit(list(range(5, 45)), adapter="ad0")
    with pytest.raises(ValidationError, match="empty"):
        engine.submit([], adapter="ad0")
    missing = engine.submit([1, 5, 6], adapter="nope", params=GREEDY)
    run_manually(engine, [missing])
    with pytest.raises(NotFoundError, match="nope"):
        missing.wait()
    assert engine.stats()["running"] == 0


def test_background_thread_serves_concurrent_submitters(
    tiny_base_dir: Path,
    adapters_dir: Path,
) -> None:
    engine = make_engine(tiny_base_dir, adapters_dir)
    engine.start()
    try:
        batch = prompts(engine.tokenizer, 8)
        results: dict[int, list[int]] = {}

        def client(i: int) -> None:
            results[i] = engine.submit(batch[i], adapter=f"ad{i}", params=GREEDY).wait(30).tokens

        threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        engine.stop()
    solo = make_engine(tiny_base_dir, adapters_dir)
    for i in range(8):
        assert results[i] == solo.generate([batch[i]], [f"ad{i}"], GREEDY)[0].tokens


def test_stop_ends_every_open_request_and_a_failing_sink_only_cancels_its_own(
    tiny_base_dir: Path,
    adapters_dir: Path,
) -> None:
    engine = make_engine(tiny_base_dir, adapters_dir)
    batch = prompts(engine.tokenizer, 3)
    long = SamplingParams(max_tokens=200, temperature=0, ignore_eos=True)

    def broken(event: object) -> None:
        raise RuntimeError("client went away")

    for name in ("ad0", "ad1"):
        engine.adapters.load_now(name)
    bad = engine.submit(batch[0], adapter="ad0", params=long, sink=broken)
    good = engine.submit(batch[1], adapter="ad1", params=long)
    for _ in range(4):
        engine.step()
    assert bad.done and bad.finish_reason == "cancelled"
    assert not good.done and engine.stats()["running"] == 1
    waiting = engine.submit(batch[2], adapter="ad2", params=long)
    engine.stop()
    assert good.wait(5).finish_reason == "cancelled"
    assert waiting.wait(5).finish_reason == "cancelled"
    assert engine.stats()["pinned_slots"] == 0


ALL_SEVEN = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def test_all_seven_targets_ranks_4_to_64_and_dora_in_one_batch(
    tiny_base_dir: Path, tmp_path: Path
) -> None:
    """Ranks 4–64 on all seven projections, attention-only and MLP-only sets, a DoRA adapter
    and a base row in one batch: each row is its adapter merged into the base."""
    plan = [
        (4, ALL_SEVEN, False),
        (8, ALL_SEVEN[:4], False),
        (16, ALL_SEVEN[4:], False),
        (32, ALL_SEVEN, False),
        (64, ALL_SEVEN, False),
        (16, ALL_SEVEN, True),
    ]
    paths = {
        f"s{i}": make_adapter(
            tiny_base_dir, tmp_path / f"s{i}", rank=r, modules=m, seed=50 + i, rslora=i == 3, dora=d
        )
        for i, (r, m, d) in enumerate(plan)
    }
    model, tokenizer = load_base(tiny_base_dir)
    engine = Engine(model, tokenizer, lambda n: paths[n], EngineConfig(max_batch=8))
    seen: dict[int, list[torch.Tensor]] = {}
    engine.on_logits = lambda rows, logits: [
        seen.setdefault(r.id, []).append(logits[i].clone()) for i, r in enumerate(rows)
    ]
    names: list[str | None] = [*paths, None]
    batch = prompts(tokenizer, len(names))
    for name in paths:
        engine.adapters.load_now(name)
    requests = [
        engine.submit(p, adapter=n, params=GREEDY) for p, n in zip(batch, names, strict=True)
    ]
    run_manually(engine, requests)
    assert engine.slots.rank == 64
    for request, name, prompt in zip(requests, names, batch, strict=True):
        if name is None:
            reference = load_base(tiny_base_dir)[0]
        else:
            reference = merged(tiny_base_dir, paths[name])
        assert request.tokens == hf_greedy(reference, prompt, 8)[0, len(prompt) :].tolist(), name
        full = torch.tensor([prompt + request.tokens[:-1]])
        with torch.no_grad():
            ref = reference(full).logits[0, len(prompt) - 1 :]
        assert relative_error(torch.stack(seen[request.id]), ref) < 1e-4, name
