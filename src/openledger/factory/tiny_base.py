"""The offline default base model: a byte-level BPE tokenizer and a small Llama.

``openledger factory tiny-base`` builds it from text that is on every machine where the
package is installed, so the Model Factory works without downloading anything:

* **corpus** — the docstrings of the Python standard library (read from its source files
  with :mod:`ast`, in sorted order; nothing is imported), the help topics Python ships in
  ``pydoc_data``, and the package's own sample datanet files (about 2 MB of English);
* **tokenizer** — a byte-level BPE (vocab 2048) with the special tokens ``<|bos|>``,
  ``<|eos|>``, ``<|pad|>`` and the chat role markers ``<|system|>``, ``<|user|>``,
  ``<|assistant|>``; plain text is encoded as ``<|bos|> text`` (``add_special_tokens``);
* **model** — a Llama (4 layers, hidden 128, about 1 M parameters, tied embeddings, eager
  attention saved in config.json) pretrained with AdamW on packed 128-token sequences of
  ``<|bos|> document <|eos|>``; the build is deterministic for a given config and corpus.

The result is a plain Hugging Face directory (``config.json``, ``model.safetensors``,
``tokenizer.json`` …) loaded by :func:`openledger.factory.base.load_base` exactly like a
real model, plus ``openledger-tiny-base.json`` describing the build.

Chat template (the format every chat example is trained and served in)::

    <|bos|><|system|>\\n{system}<|eos|><|user|>\\n{prompt}<|eos|><|assistant|>\\n{reply}<|eos|>

Each message is its role marker, a newline, the content and ``<|eos|>``; with
``add_generation_prompt=True`` the text ends in ``<|assistant|>\\n`` so generation produces
the reply and stops at ``<|eos|>``.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from openledger.errors import ConflictError, ValidationError
from openledger.factory.corpus import (  # noqa: F401 - test_tiny_base reads the last three as tb.*
    default_corpus,
    pydoc_topics,
    sample_datanet_texts,
    stdlib_docstrings,
)
from openledger.factory.pretrain import _deterministic, _pretrain, pack_sequences
from openledger.factory.tiny_config import (
    ASSISTANT,
    BOS,
    EOS,
    PAD,
    SPECIAL_TOKENS,
    SYSTEM,
    USER,
    TinyBaseConfig,
)
from openledger.fsutil import fsync_dir, replace_dir

#: Jinja chat template: role marker, newline, content, ``<|eos|>`` per message.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] not in ['system', 'user', 'assistant'] %}"
    "{{ raise_exception('unknown role: ' + message['role']) }}"
    "{% endif %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + eos_token }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)

INFO_FILE = "openledger-tiny-base.json"


# ------------------------------------------------------------------------ tokenizer


def train_tokenizer(corpus: list[str], vocab_size: int = 2048, *, max_length: int = 512):
    """A byte-level BPE trained on ``corpus``, wrapped for transformers.

    Returns a ``PreTrainedTokenizerFast`` with bos/eos/pad set, the role markers as
    special tokens, ``<|bos|>`` prepended to encoded text and :data:`CHAT_TEMPLATE`.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    bos_id = tok.token_to_id(BOS)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A",
        pair=f"{BOS} $A {BOS} $B",
        special_tokens=[(BOS, bos_id)],
    )
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        additional_special_tokens=[SYSTEM, USER, ASSISTANT],
        model_max_length=max_length,
        clean_up_tokenization_spaces=False,
    )
    wrapped.chat_template = CHAT_TEMPLATE
    return wrapped


# ---------------------------------------------------------------------------- model


def llama_config(config: TinyBaseConfig, vocab_size: int, tokenizer: Any):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.layers,
        num_attention_heads=config.heads,
        num_key_value_heads=config.kv_heads,
        max_position_embeddings=config.max_position,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        attn_implementation="eager",
    )


def build_tiny_base(
    out_dir: Path,
    config: TinyBaseConfig = TinyBaseConfig(),  # noqa: B008 - frozen dataclass
    *,
    corpus: list[str] | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> Path:
    """Train the tokenizer and the small Llama, save them as a Hugging Face directory.

    The directory is built in a temporary sibling and renamed into place, so ``out_dir`` is
    either the complete old one or the complete new one. An existing non-empty ``out_dir``
    raises :class:`~openledger.errors.ConflictError` unless ``overwrite``. Returns
    ``out_dir``; :func:`read_build_info` reads the build notes saved beside the model.
    """
    from transformers import GenerationConfig, LlamaForCausalLM

    config.validate()
    out_dir = Path(out_dir).expanduser().resolve()
    _check_target(out_dir, overwrite)
    started, cpu_started = time.perf_counter(), time.process_time()
    texts = default_corpus(config.max_corpus_chars) if corpus is None else list(corpus)
    texts = [t for t in texts if t and t.strip()]
    if not texts:
        raise ValidationError(
            "the tiny-base corpus is empty.",
            field="corpus",
            value=0,
            fix="pass a corpus with some text (or none, for the default).",
        )
    corpus_chars = sum(len(t) for t in texts)
    say = _say if progress else (lambda _msg: None)
    say(f"corpus: {len(texts):,} documents, {corpus_chars / 1e6:.2f} M characters")

    tokenizer = train_tokenizer(texts, config.vocab_size, max_length=config.max_position)
    vocab = len(tokenizer)
    say(f"tokenizer: byte-level BPE, {vocab:,} tokens")
    needed = config.steps * config.batch_size
    data = pack_sequences(texts, tokenizer, config.seq_len, needed, config.seed)

    with _deterministic(config.seed):
        model = LlamaForCausalLM(llama_config(config, vocab, tokenizer))
        params = sum(p.numel() for p in model.parameters())
        say(
            f"model: Llama, {config.layers} layers, hidden {config.hidden_size}, "
            f"{params / 1e6:.2f} M parameters"
        )
        losses = _pretrain(model, data, config, progress)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    tail = losses[-min(10, len(losses)) :]
    info = {
        "kind": "openledger-tiny-base",
        "config": asdict(config),
        "corpus": {
            "source": "default" if corpus is None else "given",
            "documents": len(texts),
            "characters": corpus_chars,
            "training_tokens": needed * config.seq_len,
        },
        "parameters": params,
        "vocab_size": vocab,
        "initial_loss": round(losses[0], 4),
        "final_loss": round(sum(tail) / len(tail), 4),
        "seconds": 0.0,
        "cpu_seconds": 0.0,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        tmp.mkdir(parents=True)
        _save(model, tokenizer, tmp)
        info["seconds"] = round(time.perf_counter() - started, 2)
        info["cpu_seconds"] = round(time.process_time() - cpu_started, 2)
        (tmp / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        _swap_into_place(tmp, out_dir, overwrite)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def _save(model: Any, tokenizer: Any, folder: Path) -> None:
    from openledger.factory.base import _quiet_transformers

    with _quiet_transformers():
        model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    # transformers does not write the attention implementation; from_pretrained reads it.
    cfg_path = folder / "config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    cfg["attn_implementation"] = "eager"
    cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    for file in folder.iterdir():
        with file.open("rb") as fh:
            os.fsync(fh.fileno())
    fsync_dir(folder)


def _check_target(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and not overwrite:
        if out_dir.is_dir() and not any(out_dir.iterdir()):
            return
        raise ConflictError(
            f"The folder {str(out_dir)!r} already exists; it was left untouched.",
            field="out",
            value=str(out_dir),
            fix="pass --overwrite to replace it, or choose another --out directory.",
        )


def _swap_into_place(tmp: Path, out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists():
        _check_target(out_dir, overwrite)
    replace_dir(tmp, out_dir)


def read_build_info(path: Path) -> dict[str, Any]:
    """The ``openledger-tiny-base.json`` notes of a tiny base directory."""
    return json.loads((Path(path) / INFO_FILE).read_text(encoding="utf-8"))


def _say(message: str) -> None:
    from rich.console import Console

    Console(stderr=True, highlight=False).print(f"[dim]tiny-base[/] {message}")
