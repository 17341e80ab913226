"""Sampling parameters, the next-token choice and text that streams without spilling a stop
sequence or half a character.

A request with ``temperature == 0`` is greedy. Otherwise the logits are divided by the
temperature, the smallest set of tokens whose probability reaches ``top_p`` is kept, and a
token is drawn by inverse CDF with one uniform number from the request's own generator,
seeded from ``seed``: the same request with the same seed gives the same tokens whichever
other requests share its batch.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

import torch

from openledger.errors import ValidationError

MAX_STOPS = 4
MAX_STOP_CHARS = 256


@dataclass(frozen=True)
class SamplingParams:
    max_tokens: int = 16
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    ignore_eos: bool = False

    def __post_init__(self) -> None:
        def bad(name: str, value: Any, rule: str, fix: str) -> ValidationError:
            return ValidationError(f"{name} = {value!r} {rule}.", field=name, value=value, fix=fix)

        if (
            isinstance(self.max_tokens, bool)
            or not isinstance(self.max_tokens, int)
            or self.max_tokens < 1
        ):
            raise bad(
                "max_tokens",
                self.max_tokens,
                "must be an integer of at least 1",
                "ask for 1 or more tokens, e.g. max_tokens=64.",
            )
        if not 0.0 <= float(self.temperature) <= 2.0:
            raise bad(
                "temperature",
                self.temperature,
                "is outside [0, 2]",
                "use 0 for greedy decoding or a value up to 2.",
            )
        if not 0.0 < float(self.top_p) <= 1.0:
            raise bad("top_p", self.top_p, "is outside (0, 1]", "use e.g. top_p=0.9, or 1.")
        if len(self.stop) > MAX_STOPS or any(not s or len(s) > MAX_STOP_CHARS for s in self.stop):
            raise bad(
                "stop",
                list(self.stop),
                f"must be at most {MAX_STOPS} non-empty strings of at most "
                f"{MAX_STOP_CHARS} characters",
                "shorten or drop stop sequences.",
            )
        if self.seed is not None and (
            isinstance(self.seed, bool)
            or not isinstance(self.seed, int)
            or not 0 <= self.seed < 2**63
        ):
            raise bad("seed", self.seed, "must be an integer in [0, 2^63)", "use e.g. seed=42.")

    @property
    def greedy(self) -> bool:
        return float(self.temperature) == 0.0

    def generator(self) -> torch.Generator:
        g = torch.Generator()
        g.manual_seed(self.seed if self.seed is not None else secrets.randbits(63))
        return g


def choose_tokens(
    logits: torch.Tensor, params: list[SamplingParams], generators: list[torch.Generator]
) -> list[int]:
    """One next token per row of ``logits`` (n × V, float32)."""
    chosen = logits.argmax(dim=-1).tolist()
    rows = [i for i, p in enumerate(params) if not p.greedy]
    if not rows:
        return chosen
    sub = logits[rows].cpu()
    temps = torch.tensor([float(params[i].temperature) for i in rows])[:, None]
    probs = torch.softmax(sub / temps, dim=-1)
    sorted_p, order = probs.sort(dim=-1, descending=True)
    cum = sorted_p.cumsum(dim=-1)
    top_p = torch.tensor([float(params[i].top_p) for i in rows])[:, None]
    # Keep a token while the mass before it is below top_p (the first token always stays).
    sorted_p = torch.where(cum - sorted_p < top_p, sorted_p, torch.zeros_like(sorted_p))
    cum = sorted_p.cumsum(dim=-1)
    u = torch.tensor([float(torch.rand((), generator=generators[i])) for i in rows])[:, None]
    pick = torch.searchsorted(cum, u * cum[:, -1:]).clamp_(max=cum.shape[1] - 1)
    for j, i in enumerate(rows):
        chosen[i] = int(order[j, pick[j, 0]])
    return chosen


@dataclass
class TextStream:
    """Incremental detokenisation with stop sequences.

    ``push(token)`` returns the text that is now safe to show: it never ends inside a
    multi-byte character (the tokenizer's replacement character) or with the beginning of
    a stop sequence; once a stop sequence appears the text before it is final.
    """

    tokenizer: Any
    stop: tuple[str, ...] = ()
    ids: list[int] = field(default_factory=list)
    text: str = ""  # decoded so far (may hold back a partial character)
    sent: int = 0  # characters of ``text`` already returned
    stopped: bool = False
    _prefix: int = 0
    _read: int = 0

    def push(self, token: int) -> str:
        self.ids.append(token)
        before = self.tokenizer.decode(
            self.ids[self._prefix : self._read], skip_special_tokens=True
        )
        after = self.tokenizer.decode(self.ids[self._prefix :], skip_special_tokens=True)
        if len(after) > len(before) and not after.endswith("\ufffd"):
            self.text += after[len(before) :]
            self._prefix, self._read = self._read, len(self.ids)
        return self._release(final=False)

    def finish(self) -> str:
        """Whatever is still held back, at the end of generation."""
        return self._release(final=True)

    def _release(self, *, final: bool) -> str:
        if self.stopped:
            return ""
        if self.stop:
            start = max(0, self.sent - max(len(s) for s in self.stop))
            hits = [i for i in (self.text.find(s, start) for s in self.stop) if i >= 0]
            if hits:
                self.text = self.text[: min(hits)]
                self.stopped = True
                final = True
        end = len(self.text) if final else len(self.text) - self._held()
        out = self.text[self.sent : end] if end > self.sent else ""
        self.sent = max(self.sent, end)
        return out

    def _held(self) -> int:
        """Characters at the end of ``text`` that may begin a stop sequence."""
        held = 0
        for s in self.stop:
            for k in range(min(len(s) - 1, len(self.text)), held, -1):
                if self.text.endswith(s[:k]):
                    held = k
                    break
        return held


__all__ = ["SamplingParams", "TextStream", "choose_tokens"]
