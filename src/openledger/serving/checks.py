"""Can this adapter be served on that base? Checked from files alone, before publishing.

The base's ``config.json`` gives every adaptable linear's shape (native architectures from
their :class:`~openledger.serving.arch.DecoderShape`, any other causal LM by building it on
the ``meta`` device, which allocates nothing); the adapter is then read exactly as the
engine reads it, so what passes here loads there. DoRA passes: the engine serves it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from openledger.errors import ValidationError
from openledger.factory.base import is_local_ref
from openledger.serving.adapters import ADAPTER_CONFIG, ADAPTER_WEIGHTS, BaseFit, load_adapter
from openledger.serving.arch import DecoderShape, native_spec
from openledger.serving.generic import GenericFit, linear_shapes, load_raw_adapter


def base_config(base: str) -> Any:
    """The base's Hugging Face config (local directory, or a hub id already cached)."""
    from transformers import AutoConfig

    try:
        if is_local_ref(base):
            return AutoConfig.from_pretrained(Path(base).expanduser(), local_files_only=True)
        return AutoConfig.from_pretrained(base)
    except Exception as exc:  # OSError, ValueError, json errors: all "cannot read it"
        raise ValidationError(
            f"the base model {base!r} has no readable config.json ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}).",
            field="base",
            value=base,
            fix="point it at a Hugging Face model directory (or a cached hub id).",
        ) from exc


def engine_path(base: str) -> tuple[str, str]:
    """(``native`` or ``generic``, model_type) the engine will take for ``base``, read from
    its config alone; ("", "") when the config cannot be read."""
    try:
        config = base_config(base)
    except ValidationError:
        return "", ""
    return ("native" if native_spec(config) else "generic"), str(config.model_type)


def _same_base(named: str, base: str) -> bool:
    if is_local_ref(named) and is_local_ref(base):
        return Path(named).expanduser().resolve() == Path(base).expanduser().resolve()
    return named == base


def check_adapter(name: str, adapter_dir: Path, base: str, *, max_rank: int = 64) -> None:
    """Raise a ValidationError naming the file and the mismatch unless the engine can serve
    the adapter in ``adapter_dir`` on ``base``."""
    cfg_path = adapter_dir / ADAPTER_CONFIG
    try:
        named = json.loads(cfg_path.read_text(encoding="utf-8")).get("base_model_name_or_path")
    except (OSError, ValueError, AttributeError):
        named = None  # load_adapter below says what is wrong with the file
    if isinstance(named, str) and named and not _same_base(named, base):
        raise ValidationError(
            f"adapter {name!r} at {str(cfg_path)!r} was trained on {named!r}, not on the "
            f"base {base!r} it is published for.",
            field="adapter",
            value=name,
            fix="publish it for the base it was trained on (train again on this base).",
        )
    config = base_config(base)
    spec = native_spec(config)
    if spec is not None:
        shape = DecoderShape.from_config(config)
        fit = BaseFit(config.model_type, shape.layers, shape.target_shapes(spec), max_rank)
        load_adapter(name, adapter_dir, fit=fit)
        return
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    gfit = GenericFit(config.model_type, linear_shapes(model), max_rank)
    load_raw_adapter(name, adapter_dir, fit=gfit)


__all__ = ["ADAPTER_WEIGHTS", "base_config", "check_adapter", "engine_path"]
