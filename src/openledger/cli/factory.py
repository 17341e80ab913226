"""`openledger factory …`: base models for the Model Factory."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from openledger.cli import context
from openledger.cli.format import out, print_json

app = typer.Typer(help="Model Factory: base models and fine-tuning.", no_args_is_help=True)


@app.callback()
def factory() -> None:
    """Model Factory: base models and fine-tuning."""


def default_tiny_base_dir() -> Path:
    """Where `tiny-base` saves by default: ``<home>/models/tiny-base``."""
    return context.settings().home / "models" / "tiny-base"


@app.command("tiny-base")
def tiny_base(
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Directory to save into (default <home>/models/tiny-base)."),
    ] = None,
    steps: Annotated[
        int | None, typer.Option(help="Pretraining steps (default 500, about a minute).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed (same seed → same weights).")] = 0,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing --out directory.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Build the offline default base: a byte-level BPE tokenizer and a small Llama.

    Trained on text every installation has (Python's documentation strings and the sample
    datanets), saved as a Hugging Face directory that `--base` accepts like a real model.
    """
    from openledger.errors import ValidationError
    from openledger.factory.tiny_base import build_tiny_base, read_build_info
    from openledger.factory.tiny_config import TinyBaseConfig

    config = TinyBaseConfig(seed=seed)
    if steps is not None:
        if steps <= 0:
            raise ValidationError(
                f"--steps {steps} is invalid: it must be positive.",
                field="--steps",
                value=steps,
                fix="pass --steps 1 or more (the default is 500).",
            )
        config = replace(config, steps=steps)
    target = out_dir if out_dir is not None else default_tiny_base_dir()
    path = build_tiny_base(target, config, progress=not as_json, overwrite=overwrite)
    info = read_build_info(path)
    if as_json:
        print_json({"path": str(path), **info})
        return
    out.print(f"tiny base saved to {path}", highlight=False)
    out.print(
        f"  {info['parameters']:,} parameters · vocab {info['vocab_size']:,} · "
        f"loss {info['initial_loss']:.2f} → {info['final_loss']:.2f} · "
        f"{info['seconds']:.1f} s",
        highlight=False,
    )
    out.print(f"  use it with --base {path}", highlight=False)
