"""factory.trainer: learning, checkpoints, resume equivalence (stop, crash, SIGKILL), early
stopping, metrics and the loss curve, on the tiny in-memory Llama."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from openledger.errors import ConflictError, ValidationError
from openledger.factory import trainer as trainer_mod
from openledger.factory.checkpoints import list_checkpoints
from openledger.factory.config import TrainConfig
from openledger.factory.data import build_examples, collate, lineage, split_eval
from openledger.factory.metrics import read_metrics
from openledger.factory.trainer import Trainer
from tests.factory.test_data import row, tiny_model, tiny_tokenizer

ROOT = Path(__file__).resolve().parents[2]
COLOURS = ["red", "blue", "green", "black"]


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    # A tiny model gains nothing from a second thread, and OpenMP threads spinning against
    # another busy process on a 2-core machine can slow a step down a hundredfold.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tok() -> Any:
    return tiny_tokenizer()


def facts(n: int = 48, texts: int = 16) -> list[dict[str, Any]]:
    """A learnable set: templated facts, repeated."""
    rows = [
        row(
            i,
            "prompt_completion",
            prompt=f"The colour of item {i % 8} is",
            completion=f" {COLOURS[i % 8 % 4]}.",
        )
        for i in range(n)
    ]
    rows += [row(n + i, text="The capital of France is Paris.") for i in range(texts)]
    return rows


def split(tok: Any, rows: list[dict[str, Any]], eval_split: float = 0.25) -> tuple[list, list]:
    return split_eval(build_examples(rows, tok, max_seq_len=64, snapshot="facts@1"), eval_split)


def cfg(**changes: Any) -> TrainConfig:
    base = {"lr": 3e-2, "epochs": 2, "batch_size": 4, "checkpoint_every": 4, "patience": None}
    return TrainConfig(**{**base, **changes})


def trainer(tok: Any, data: tuple[list, list], config: TrainConfig, work: Path, **kw: Any) -> Any:
    return Trainer(tiny_model(tok), tok, data[0], data[1], config, work, progress=False, **kw)


def adapter(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path / "adapter_model.safetensors"))


def assert_same_adapter(a: Path, b: Path) -> None:
    ta, tb = adapter(a), adapter(b)
    assert ta.keys() == tb.keys() and ta
    for key in ta:
        torch.testing.assert_close(ta[key], tb[key], atol=1e-6, rtol=0)


def assert_same_metrics(a: Path, b: Path) -> None:
    ra, rb = read_metrics(a), read_metrics(b)
    assert [r["step"] for r in ra] == [r["step"] for r in rb]
    for x, y in zip(ra, rb, strict=True):
        for key in ("train_loss", "eval_loss", "lr", "tokens"):
            if x[key] is None:
                assert y[key] is None
            else:
                assert y[key] == pytest.approx(x[key], abs=1e-6)


def eval_loss(model: Any, examples: list, pad_id: int) -> float:
    """Mean next-token loss per loss token, computed independently of the trainer."""
    b = collate(examples, pad_id)
    with torch.no_grad():
        logits = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits
    targets = b["labels"][:, 1:].reshape(-1)
    return torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]), targets, ignore_index=-100
    ).item()


# --------------------------------------------------------------------------- learning


def test_training_learns_and_leaves_adapter_metrics_curve_and_lineage(
    tok: Any, tmp_path: Path
) -> None:
    from peft import PeftModel

    data = split(tok, facts())
    config = cfg(epochs=4, checkpoint_every=5, keep_checkpoints=2)
    res = trainer(tok, data, config, tmp_path).run()

    spe = -(-len(data[0]) // 4)  # steps per epoch
    assert not res.interrupted and not res.stopped_early
    assert res.steps == res.total_steps == 4 * spe and res.epochs_done == 4
    assert res.best_eval_loss < res.base_eval_loss - 3  # it learns the facts
    assert res.adapter_eval_ppl < res.base_eval_ppl / 20
    assert res.tokens_per_s > 0 and res.train_tokens == 4 * sum(len(e) for e in data[0])

    # metrics: a base line at step 0, one line per step, an eval at each epoch's end
    rows = read_metrics(res.metrics_path)
    assert [r["step"] for r in rows] == list(range(4 * spe + 1))
    assert [r["step"] for r in rows if r["eval_loss"] is not None] == [
        0,
        *(spe * e for e in range(1, 5)),
    ]
    assert rows[0]["eval_loss"] == pytest.approx(res.base_eval_loss)
    assert all(r["train_loss"] > 0 and r["tokens_per_s"] > 0 for r in rows[1:])
    assert rows[-1]["eval_ppl"] == pytest.approx(res.adapter_eval_ppl)
    assert rows[1]["lr"] == pytest.approx(3e-2) and rows[-1]["lr"] < rows[1]["lr"]

    # the final adapter is a PEFT adapter that reproduces the reported eval loss
    assert (res.adapter_dir / "adapter_config.json").is_file()
    saved = json.loads((res.adapter_dir / "adapter_config.json").read_text())
    assert saved["r"] == 8 and sorted(saved["target_modules"]) == ["q_proj", "v_proj"]
    reloaded = PeftModel.from_pretrained(tiny_model(tok), str(res.adapter_dir)).eval()
    assert eval_loss(reloaded, data[1], tok.pad_token_id) == pytest.approx(
        res.adapter_eval_loss, abs=1e-4
    )

    # loss curve, result, lineage of every train and eval example
    assert res.loss_curve_path == tmp_path / "loss.png"
    assert res.loss_curve_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((tmp_path / "result.json").read_text())["steps"] == res.steps
    kept = json.loads(res.lineage_path.read_text())
    assert kept == {"train": lineage(data[0]), "eval": lineage(data[1])}
    assert {"example_id", "snapshot", "record", "contribution", "contributor"} <= set(
        kept["train"][0]
    )

    # checkpoint retention: the last two (every 5 steps, and the end), complete
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == [f"step-{res.steps // 5 * 5:06d}", f"step-{res.steps:06d}"]
    for name in names:
        files = {p.name for p in (tmp_path / "checkpoints" / name).iterdir()}
        assert files == {
            "adapter.safetensors",
            "best.safetensors",
            "optimizer.pt",
            "rng.pt",
            "state.json",
        }
    final = json.loads((tmp_path / "checkpoints" / names[-1] / "state.json").read_text())
    assert final["state"]["done"] and final["state"]["step"] == res.steps


def test_dora_trains_and_saves_a_dora_adapter(tok: Any, tmp_path: Path) -> None:
    data = split(tok, facts(24, 8))
    res = trainer(tok, data, cfg(method="dora", epochs=1), tmp_path).run()
    saved = json.loads((res.adapter_dir / "adapter_config.json").read_text())
    assert saved["use_dora"] is True
    assert any("magnitude" in k for k in adapter(res.adapter_dir))
    assert res.best_eval_loss < res.base_eval_loss


def test_trains_the_tiny_base_on_chat_and_prompts(tiny_base_dir: Path, tmp_path: Path) -> None:
    from openledger.factory.base import load_base

    model, base_tok = load_base(tiny_base_dir)
    rows = [
        row(
            i,
            "chat",
            messages=[
                {"role": "user", "content": f"Colour of item {i % 8}?"},
                {"role": "assistant", "content": COLOURS[i % 8 % 4]},
            ],
        )
        for i in range(32)
    ] + facts(16, 0)
    data = split_eval(build_examples(rows, base_tok, max_seq_len=64, snapshot="c@1"), 0.25)
    config = TrainConfig(lr=1e-2, epochs=2, batch_size=4, patience=None)
    res = Trainer(model, base_tok, *data, config, tmp_path, progress=False).run()
    assert res.completed and res.steps == res.total_steps
    assert res.best_eval_loss < res.base_eval_loss and res.base_eval_ppl < 1e6
    assert (res.adapter_dir / "adapter_model.safetensors").is_file()


# --------------------------------------------------------------------------- resume


@pytest.fixture(scope="module")
def uninterrupted(tok: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    work = tmp_path_factory.mktemp("uninterrupted")
    res = trainer(tok, split(tok, facts(40, 8)), cfg(eval_every=5), work).run()
    return work, res


def stop_after(k: int) -> Any:
    calls: list[int] = []

    def should_stop() -> bool:
        calls.append(1)
        return len(calls) >= k

    return should_stop


@pytest.mark.parametrize("method", ["lora", "dora"])
def test_stopped_and_resumed_equals_uninterrupted(
    tok: Any, tmp_path: Path, method: str, uninterrupted: tuple[Path, Any]
) -> None:
    data = split(tok, facts(40, 8))
    config = cfg(eval_every=5, method=method)
    if method == "lora":
        ref, ref_res = uninterrupted
    else:
        ref = tmp_path / "ref"
        ref_res = trainer(tok, data, config, ref).run()
    work = tmp_path / "work"
    stopped = trainer(tok, data, config, work).run(should_stop=stop_after(7))
    assert stopped.interrupted and stopped.adapter_dir is None and stopped.steps == 7
    assert [p.name for p in list_checkpoints(work)] == ["step-000004", "step-000007"]
    assert max(r["step"] for r in read_metrics(work / "metrics.jsonl")) == 7

    resumed = trainer(tok, data, config, work).run()  # a fresh model and Trainer
    assert resumed.steps == resumed.total_steps
    assert_same_adapter(ref / "adapter", work / "adapter")
    assert_same_metrics(ref / "metrics.jsonl", work / "metrics.jsonl")
    assert resumed.best_step == ref_res.best_step
    assert resumed.best_eval_loss == pytest.approx(ref_res.best_eval_loss, abs=1e-6)
    assert resumed.base_eval_loss == ref_res.base_eval_loss


def test_crash_while_writing_a_checkpoint_resumes_from_the_previous_one(
    tok: Any, tmp_path: Path, uninterrupted: tuple[Path, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    ref, _ = uninterrupted
    data = split(tok, facts(40, 8))
    config = cfg(eval_every=5)
    publish = trainer_mod._publish

    def crash_at_step_8(tmp: Path, final: Path) -> None:
        if final.name == "step-000008":
            raise RuntimeError("simulated crash: killed before the rename")
        publish(tmp, final)

    monkeypatch.setattr(trainer_mod, "_publish", crash_at_step_8)
    work = tmp_path / "work"
    with pytest.raises(RuntimeError, match="simulated crash"):
        trainer(tok, data, config, work).run()
    monkeypatch.setattr(trainer_mod, "_publish", publish)
    ckpts = work / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir() if p.name.startswith("step-")) == ["step-000004"]
    assert [p for p in ckpts.iterdir() if p.name.startswith(".tmp-step-000008")]
    assert max(r["step"] for r in read_metrics(work / "metrics.jsonl")) == 8

    trainer(tok, data, config, work).run()
    assert not [p for p in ckpts.iterdir() if p.name.startswith(".tmp")]
    assert_same_adapter(ref / "adapter", work / "adapter")
    assert_same_metrics(ref / "metrics.jsonl", work / "metrics.jsonl")


def test_unreadable_newest_checkpoint_falls_back_to_an_older_one(
    tok: Any, tmp_path: Path, uninterrupted: tuple[Path, Any]
) -> None:
    ref, _ = uninterrupted
    data = split(tok, facts(40, 8))
    config = cfg(eval_every=5)
    work = tmp_path / "work"
    trainer(tok, data, config, work).run(should_stop=stop_after(6))
    newest = work / "checkpoints" / "step-000006" / "adapter.safetensors"
    newest.write_bytes(newest.read_bytes()[:100])  # torn file
    trainer(tok, data, config, work).run()
    assert_same_adapter(ref / "adapter", work / "adapter")
    assert_same_metrics(ref / "metrics.jsonl", work / "metrics.jsonl")


CHILD = """
import os, signal, sys
from pathlib import Path
import torch
torch.set_num_threads(1)
sys.path.insert(0, {root!r})
from tests.factory.test_trainer import cfg, facts, split, tiny_model, tiny_tokenizer
from openledger.factory.trainer import Trainer

tok = tiny_tokenizer()
data = split(tok, facts(40, 8))
steps = []
def should_stop():
    steps.append(1)
    if len(steps) == {kill_at}:
        os.kill(os.getpid(), signal.SIGKILL)
    return False
Trainer(tiny_model(tok), tok, data[0], data[1], cfg(eval_every=5), Path({work!r}),
        progress=False).run(should_stop=should_stop)
"""


def test_sigkill_and_resume_equals_uninterrupted(
    tok: Any, tmp_path: Path, uninterrupted: tuple[Path, Any]
) -> None:
    ref, _ = uninterrupted
    work = tmp_path / "work"
    script = textwrap.dedent(CHILD.format(root=str(ROOT), kill_at=6, work=str(work)))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    assert not (work / "adapter").exists()
    assert [p.name for p in list_checkpoints(work)] == ["step-000004"]
    assert max(r["step"] for r in read_metrics(work / "metrics.jsonl")) > 4  # to be dropped

    trainer(tok, split(tok, facts(40, 8)), cfg(eval_every=5), work).run()
    assert_same_adapter(ref / "adapter", work / "adapter")
    assert_same_metrics(ref / "metrics.jsonl", work / "metrics.jsonl")


def test_finished_run_is_not_trained_again(
    tok: Any, tmp_path: Path, uninterrupted: tuple[Path, Any]
) -> None:
    from rich.console import Console

    ref, ref_res = uninterrupted
    work = tmp_path / "work"
    data = split(tok, facts(40, 8))
    first = trainer(tok, data, cfg(eval_every=5), work).run()
    before = (work / "metrics.jsonl").read_bytes()
    out = io.StringIO()
    again = Trainer(
        tiny_model(tok),
        tok,
        data[0],
        data[1],
        cfg(eval_every=5),
        work,
        progress=True,
        console=Console(file=out),
    ).run()
    assert (work / "metrics.jsonl").read_bytes() == before
    assert again.steps == first.steps and again.best_eval_loss == first.best_eval_loss
    assert_same_adapter(work / "adapter", ref / "adapter")

    # starting over trains again, from the base
    fresh = trainer(tok, data, cfg(eval_every=5, lr=1e-2), work).run(resume=False)
    assert fresh.steps == first.steps and fresh.best_eval_loss != first.best_eval_loss


def test_progress_bar_shows_loss_tokens_per_second_and_eta(tok: Any, tmp_path: Path) -> None:
    from rich.console import Console

    out = io.StringIO()
    data = split(tok, facts(16, 4))
    Trainer(
        tiny_model(tok),
        tok,
        data[0],
        data[1],
        cfg(epochs=1),
        tmp_path,
        progress=True,
        console=Console(file=out, width=120, force_terminal=False),
    ).run()
    text = out.getvalue()
    assert "loss" in text and "tok/s" in text and "eta" in text


def test_resume_refuses_a_changed_configuration_or_data(tok: Any, tmp_path: Path) -> None:
    data = split(tok, facts(40, 8))
    trainer(tok, data, cfg(), tmp_path).run(should_stop=stop_after(4))
    with pytest.raises(ConflictError) as err:
        trainer(tok, data, cfg(lr=1e-3), tmp_path).run()
    assert err.value.field == "lr" and "lr=0.03" in err.value.fix
    with pytest.raises(ConflictError) as err:
        trainer(tok, split(tok, facts(44, 8)), cfg(), tmp_path).run()
    assert err.value.field == "data"
    # how often checkpoints are kept is not part of the maths
    res = trainer(tok, data, cfg(keep_checkpoints=1, checkpoint_every=100), tmp_path).run()
    assert res.steps == res.total_steps
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == [f"step-{res.steps:06d}"]


# --------------------------------------------------------------------------- early stopping


def test_early_stopping_keeps_the_best_adapter(tok: Any, tmp_path: Path) -> None:
    from peft import PeftModel

    # Train on one pattern and evaluate on another: the eval loss soon rises.
    train_rows = [row(i, text="aaa aaa aaa aaa aaa aaa") for i in range(40)]
    eval_rows = [row(100 + i, text=f"zebra quartz jumps {i}") for i in range(8)]
    train = build_examples(train_rows, tok, max_seq_len=64, snapshot="a@1")
    evals = build_examples(eval_rows, tok, max_seq_len=64, snapshot="a@1")
    config = cfg(lr=5e-2, epochs=3, eval_every=2, patience=2)
    res = trainer(tok, (train, evals), config, tmp_path).run()

    assert res.stopped_early and res.steps < res.total_steps
    assert res.steps == res.best_step + 2 * 2
    evals_seen = [r for r in read_metrics(res.metrics_path) if r["step"] and r["eval_loss"]]
    assert min(r["eval_loss"] for r in evals_seen) == pytest.approx(res.best_eval_loss)
    assert evals_seen[-1]["eval_loss"] > res.best_eval_loss
    assert res.adapter_eval_loss == res.best_eval_loss
    reloaded = PeftModel.from_pretrained(tiny_model(tok), str(res.adapter_dir)).eval()
    assert eval_loss(reloaded, evals, tok.pad_token_id) == pytest.approx(
        res.best_eval_loss, abs=1e-4
    )


def test_empty_train_split_is_refused(tok: Any, tmp_path: Path) -> None:
    _, evals = split(tok, facts(8, 0))
    with pytest.raises(ValidationError) as err:
        Trainer(tiny_model(tok), tok, [], evals, cfg(), tmp_path, progress=False)
    assert err.value.field == "train" and "eval_split" in err.value.fix


def test_eval_split_zero_trains_on_everything_without_evaluating(tok: Any, tmp_path: Path) -> None:
    train, evals = split(tok, facts(16, 0), eval_split=0.0)
    assert evals == [] and len(train) == 16
    res = trainer(tok, (train, evals), cfg(epochs=1, checkpoint_every=2), tmp_path).run()
    assert res.completed and res.adapter_dir is not None and res.eval_examples == 0
    assert res.base_eval_loss is None and res.base_eval_ppl is None
    assert res.best_eval_loss is None and res.adapter_eval_ppl is None
    rows = read_metrics(res.metrics_path)
    assert rows and all(r["eval_loss"] is None for r in rows)
    assert (res.adapter_dir / "adapter_model.safetensors").exists()
