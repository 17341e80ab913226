"""What decides the tiny base: its special tokens and its build config.

It sits below both halves of the build, ``tiny_base`` (tokenizer, model, files) and
``pretrain`` (the training loop), so neither imports the other for it.
"""

from __future__ import annotations

from dataclasses import dataclass

from openledger.errors import ValidationError
from openledger.factory.corpus import DEFAULT_MAX_CORPUS_CHARS

BOS, EOS, PAD = "<|bos|>", "<|eos|>", "<|pad|>"
SYSTEM, USER, ASSISTANT = "<|system|>", "<|user|>", "<|assistant|>"
SPECIAL_TOKENS = (BOS, EOS, PAD, SYSTEM, USER, ASSISTANT)
ROLE_TOKENS = {"system": SYSTEM, "user": USER, "assistant": ASSISTANT}


@dataclass(frozen=True)
class TinyBaseConfig:
    """Everything that decides the tiny base (same config + corpus → same weights)."""

    vocab_size: int = 2048
    hidden_size: int = 128
    layers: int = 4
    heads: int = 4
    kv_heads: int = 4
    intermediate_size: int = 352
    max_position: int = 512
    seq_len: int = 128
    batch_size: int = 8
    steps: int = 500
    lr: float = 3e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 20
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    seed: int = 0
    max_corpus_chars: int = DEFAULT_MAX_CORPUS_CHARS

    def validate(self) -> None:
        checks: list[tuple[str, bool, str]] = [
            ("vocab_size", self.vocab_size >= 256 + len(SPECIAL_TOKENS), "at least 262"),
            ("hidden_size", self.hidden_size > 0, "positive"),
            ("layers", self.layers > 0, "positive"),
            (
                "heads",
                self.heads > 0 and self.hidden_size % self.heads == 0,
                "positive and a divisor of hidden_size",
            ),
            (
                "kv_heads",
                self.kv_heads > 0 and self.heads % self.kv_heads == 0,
                "positive and a divisor of heads",
            ),
            ("intermediate_size", self.intermediate_size > 0, "positive"),
            (
                "seq_len",
                1 < self.seq_len <= self.max_position,
                "greater than 1 and at most max_position",
            ),
            ("batch_size", self.batch_size > 0, "positive"),
            ("steps", self.steps > 0, "positive"),
            ("lr", self.lr > 0, "positive"),
            ("warmup_steps", self.warmup_steps >= 0, "zero or more"),
        ]
        for name, ok, rule in checks:
            if not ok:
                raise ValidationError(
                    f"tiny-base {name}={getattr(self, name)!r} is invalid: it must be {rule}.",
                    field=name,
                    value=getattr(self, name),
                    fix=f"choose a {name} that is {rule}.",
                )
