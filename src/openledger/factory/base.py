"""Base models: load a local Hugging Face directory or a hub id through ``from_pretrained``.

A base (``--base`` on the command line, ``base`` in the API) is either

* a local directory written by ``save_pretrained`` (a real model, or the offline default
  built by ``openledger factory tiny-base``), loaded with ``local_files_only=True``; or
* a hub id (``org/name``), loaded with the same ``from_pretrained(ref)`` call users make
  by hand. With ``HF_HUB_OFFLINE=1`` (or no network) and no cached copy it fails with a
  :class:`~openledger.errors.NotFoundError` that says how to get a base without one.

Every later step (training, serving, attribution) takes this one path, whether the base is
the tiny offline Llama or a real model.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from openledger.errors import NotFoundError, ValidationError

FIELD = "base"

TINY_BASE_HINT = "ask the node's operator to build the offline default (the tiny base)"

#: Files that hold weights, in the formats ``from_pretrained`` reads.
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)

#: Files a tokenizer may be saved as (any one of them makes a tokenizer loadable).
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
    "vocab.txt",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.jinja",
    "chat_template.json",
)

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")
_TRUE = {"1", "on", "yes", "true"}


def is_local_ref(ref: str | Path) -> bool:
    """True when ``ref`` names something on disk (or looks like a path), not a hub id."""
    if isinstance(ref, Path):
        return True
    text = str(ref)
    if Path(text).expanduser().exists():
        return True
    return text.startswith(("/", ".", "~")) or not _HUB_ID.match(text)


def hub_offline() -> bool:
    """Whether downloads from the Hugging Face Hub are switched off for this process."""
    if any(
        os.environ.get(v, "").strip().lower() in _TRUE
        for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    ):
        return True
    try:
        from huggingface_hub import constants
    except ImportError:  # pragma: no cover - huggingface_hub ships with transformers
        return False
    return bool(getattr(constants, "HF_HUB_OFFLINE", False))


def load_base(
    ref: str | Path,
    *,
    dtype: torch.dtype = torch.float32,
    attn_implementation: str | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a causal LM and its tokenizer from a local directory or a hub id.

    ``attn_implementation`` overrides the one in the model's config (the tiny base saves
    ``eager``, which per-example gradients need). The tokenizer always comes back with an
    eos and a pad token (pad falls back to eos), and the model's config and generation
    config carry the same ids. The model is in eval mode.
    """
    extra = {} if attn_implementation is None else {"attn_implementation": attn_implementation}
    if is_local_ref(ref):
        model, tokenizer = _load_local(Path(ref).expanduser(), dtype, extra)
    else:
        model, tokenizer = _load_hub(str(ref), dtype, extra)
    _ensure_special_tokens(model, tokenizer, ref)
    model.eval()
    return model, tokenizer


def _load_local(
    path: Path, dtype: torch.dtype, extra: dict[str, str]
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    if not path.exists():
        raise NotFoundError(
            f"{FIELD} {str(path)!r}: no such directory.",
            field=FIELD,
            value=str(path),
            fix=f"pass a local Hugging Face model directory or a hub id, or {TINY_BASE_HINT}.",
        )
    _check_model_dir(path)
    try:
        with _quiet_transformers():
            model, info = AutoModelForCausalLM.from_pretrained(
                path, local_files_only=True, dtype=dtype, output_loading_info=True, **extra
            )
    except Exception as exc:  # safetensors, torch, config errors: all about the directory
        raise ValidationError(
            f"{FIELD} {str(path)!r} could not be loaded as a causal language model: "
            f"{_first_line(exc)}",
            field=FIELD,
            value=str(path),
            fix="check that the directory was written by `save_pretrained` and its weight "
            f"files are complete, or {TINY_BASE_HINT}.",
        ) from exc
    broken = sorted(info.get("missing_keys") or []) + sorted(info.get("mismatched_keys") or [])
    if broken or info.get("error_msgs"):
        detail = ", ".join(str(k) for k in broken[:5]) or "; ".join(info["error_msgs"][:2])
        more = f" (and {len(broken) - 5} more)" if len(broken) > 5 else ""
        raise ValidationError(
            f"{FIELD} {str(path)!r}: the weight files do not match config.json "
            f"(missing or mismatched: {detail}{more}).",
            field=FIELD,
            value=str(path),
            fix="re-save the model with `save_pretrained`, or name as the base the directory "
            "whose config.json belongs to these weights.",
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    except Exception as exc:
        raise ValidationError(
            f"{FIELD} {str(path)!r}: the tokenizer could not be loaded: {_first_line(exc)}",
            field=FIELD,
            value=str(path),
            fix="save the tokenizer into the same directory (`tokenizer.save_pretrained(dir)`).",
        ) from exc
    return model, tokenizer


def _check_model_dir(path: Path) -> None:
    """Name what is missing before transformers fails with a less helpful message."""

    def invalid(what: str, fix: str) -> ValidationError:
        return ValidationError(
            f"{FIELD} {str(path)!r} is not a Hugging Face model directory: {what}.",
            field=FIELD,
            value=str(path),
            fix=fix,
        )

    if not path.is_dir():
        raise invalid(
            "it is a file, not a directory",
            f"pass the directory that holds config.json and the weights, or {TINY_BASE_HINT}.",
        )
    config = path / "config.json"
    if not config.is_file():
        if (path / "adapter_config.json").is_file():
            raise invalid(
                "it holds a LoRA adapter (adapter_config.json), not a base model",
                "name the adapter's base model as the base (see base_model_name_or_path in "
                "adapter_config.json).",
            )
        raise invalid(
            "config.json is missing",
            f"pass a directory written by `save_pretrained`, or {TINY_BASE_HINT}.",
        )
    try:
        doc = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise invalid(
            f"config.json is not valid JSON ({_first_line(exc)})",
            "re-save the model with `save_pretrained`.",
        ) from exc
    if not isinstance(doc, dict) or "model_type" not in doc:
        raise invalid(
            "config.json has no model_type",
            "re-save the model with `save_pretrained`.",
        )
    if not any((path / name).is_file() for name in WEIGHT_FILES):
        raise invalid(
            f"no weight file ({', '.join(WEIGHT_FILES)})",
            "save the weights with `model.save_pretrained(dir)` into the same directory.",
        )
    if not any((path / name).is_file() for name in TOKENIZER_FILES[:6]):
        raise invalid(
            "no tokenizer files (tokenizer.json, tokenizer_config.json, tokenizer.model, ...)",
            "save the tokenizer into the same directory (`tokenizer.save_pretrained(dir)`).",
        )


def _load_hub(
    ref: str, dtype: torch.dtype, extra: dict[str, str]
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    offline = hub_offline()
    kwargs: dict[str, object] = {"local_files_only": True} if offline else {}
    try:
        with _quiet_transformers():
            model = AutoModelForCausalLM.from_pretrained(ref, dtype=dtype, **kwargs, **extra)
        tokenizer = AutoTokenizer.from_pretrained(ref, **kwargs)
    except (OSError, ValueError) as exc:
        if offline:
            message = (
                f"{FIELD} {ref!r} is a Hugging Face Hub id that is not in the local cache, "
                "and downloads are off (HF_HUB_OFFLINE=1)."
            )
        else:
            message = (
                f"{FIELD} {ref!r} could not be loaded from the Hugging Face Hub: {_first_line(exc)}"
            )
        raise NotFoundError(
            message,
            field=FIELD,
            value=ref,
            fix=f"pass a local Hugging Face directory, or {TINY_BASE_HINT}, or go online / "
            f"pre-download it (`huggingface-cli download {ref}`) and retry.",
        ) from exc
    return model, tokenizer


def _ensure_special_tokens(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, ref: str | Path
) -> None:
    _fill_tokenizer(tokenizer, (model.generation_config, model.config), ref)
    for cfg in (model.config, model.generation_config):
        if cfg is None:
            continue
        if getattr(cfg, "pad_token_id", None) is None:
            cfg.pad_token_id = tokenizer.pad_token_id
        if getattr(cfg, "eos_token_id", None) is None:
            cfg.eos_token_id = tokenizer.eos_token_id


def _fill_tokenizer(
    tokenizer: PreTrainedTokenizerBase, configs: tuple[object, ...], ref: str | Path
) -> None:
    """Give the tokenizer an eos (from the first config naming one) and a pad (eos)."""
    if tokenizer.eos_token is None:
        eos_id = None
        for cfg in configs:
            eos_id = eos_id if eos_id is not None else _first_id(getattr(cfg, "eos_token_id", None))
        if eos_id is None:
            raise ValidationError(
                f"{FIELD} {str(ref)!r}: the tokenizer has no eos token and the model config "
                "names none.",
                field=FIELD,
                value=str(ref),
                fix="set eos_token in tokenizer_config.json (or eos_token_id in config.json).",
            )
        tokenizer.eos_token = tokenizer.convert_ids_to_tokens(eos_id)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token


def load_tokenizer(ref: str | Path) -> PreTrainedTokenizerBase:
    """The tokenizer ``load_base(ref)`` returns, without loading the weights (for span
    indexes of models of any size)."""
    from transformers import AutoConfig, GenerationConfig

    if is_local_ref(ref):
        source: str | Path = Path(ref).expanduser()
        if not Path(source).exists():
            raise NotFoundError(
                f"{FIELD} {str(source)!r}: no such directory.",
                field=FIELD,
                value=str(source),
                fix=f"pass a local Hugging Face model directory or a hub id, or {TINY_BASE_HINT}.",
            )
        _check_model_dir(Path(source))
        kwargs: dict[str, object] = {"local_files_only": True}
    else:
        source, kwargs = str(ref), ({"local_files_only": True} if hub_offline() else {})
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
        config = AutoConfig.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as exc:
        raise NotFoundError(
            f"{FIELD} {str(ref)!r}: the tokenizer could not be loaded: {_first_line(exc)}",
            field=FIELD,
            value=str(ref),
            fix="pass a local Hugging Face directory with its tokenizer, or a cached hub id.",
        ) from exc
    try:
        generation = GenerationConfig.from_pretrained(source, **kwargs)
    except (OSError, ValueError):  # most models ship none; config.json is the fallback
        generation = None
    _fill_tokenizer(tokenizer, (generation, config), ref)
    return tokenizer


def _first_id(value: object) -> int | None:
    if isinstance(value, int):
        return value
    if isinstance(value, list | tuple) and value and isinstance(value[0], int):
        return value[0]
    return None


def base_fingerprint(ref: str | Path) -> str:
    """A stable id of a base model for lineage.

    A local directory: ``sha256:<hex>`` over the names, sizes and bytes of config.json, the
    tokenizer files and the weight files (sorted by name; other files such as build notes
    don't count). A hub id: ``hub:<id>``.
    """
    if not is_local_ref(ref):
        return f"hub:{ref}"
    path = Path(ref).expanduser()
    if not (path / "config.json").is_file():
        raise ValidationError(
            f"{FIELD} {str(path)!r} is not a Hugging Face model directory: config.json is missing.",
            field=FIELD,
            value=str(path),
            fix=f"pass a directory written by `save_pretrained`, or {TINY_BASE_HINT}.",
        )
    digest = hashlib.sha256()
    for file in _fingerprint_files(path):
        digest.update(f"{file.name}\0{file.stat().st_size}\0".encode())
        with file.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


def _fingerprint_files(path: Path) -> list[Path]:
    names = {"config.json", *TOKENIZER_FILES, *WEIGHT_FILES}
    files = [p for p in path.iterdir() if p.is_file() and p.name in names]
    # Sharded checkpoints: the shards the index names.
    files += [
        p
        for p in path.iterdir()
        if p.is_file()
        and p.name not in names
        and re.fullmatch(r"(model|pytorch_model)-\d+-of-\d+\.(safetensors|bin)", p.name)
    ]
    return sorted(files, key=lambda p: p.name)


def linear_module_names(model: nn.Module) -> list[str]:
    """The distinct leaf names of the model's linear layers, in model order.

    For a Llama: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, lm_head.
    These are the names ``--target-modules`` may use. GPT-2 style ``Conv1D`` layers count
    as linear (PEFT adapts them too).
    """
    try:
        from transformers.pytorch_utils import Conv1D

        kinds: tuple[type[nn.Module], ...] = (nn.Linear, Conv1D)
    except ImportError:  # pragma: no cover
        kinds = (nn.Linear,)
    seen: dict[str, None] = {}
    for name, module in model.named_modules():
        if name and isinstance(module, kinds):
            seen.setdefault(name.rsplit(".", 1)[-1], None)
    return list(seen)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Hide transformers' own per-call progress bars (loading/writing weights)."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    if was_enabled:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()
