"""The node's serving service: published models → adapters of one engine.

It owns the engine (built on first use: the base model is loaded once), turns OpenAI-style
prompts and chat messages into tokens exactly as the Model Factory trained on them
(``bos + prompt`` for completions; the tokenizer's chat template, or the factory's
documented default, with the generation prompt for chat), and checks what a request asks
for before any compute: the model exists and was trained on the served base, the prompt
and ``max_tokens`` fit the context, the sampling parameters are valid.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from openledger.errors import NotFoundError, ValidationError
from openledger.factory.base import load_base
from openledger.factory.data import DEFAULT_CHAT_TEMPLATE
from openledger.factory.publish import ModelService
from openledger.serving.engine import Engine, EngineConfig, Event, Request
from openledger.serving.sampling import SamplingParams

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServeConfig:
    base: str | None = None  # default: the base most published models were trained on
    device: str = "auto"  # auto | cpu | cuda
    engine: EngineConfig = EngineConfig()


def pick_device(name: str) -> tuple[torch.device, torch.dtype]:
    """float32 on CPU; bfloat16 on CUDA (``auto`` takes CUDA when there is one)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ValidationError(
            "device 'cuda' was asked for but torch sees no CUDA device.",
            field="serve device",
            value=name,
            fix="use --device cpu (or auto).",
        )
    if name not in ("cpu", "cuda"):
        raise ValidationError(
            f"unknown device {name!r}.",
            field="serve device",
            value=name,
            fix="use auto, cpu or cuda.",
        )
    return torch.device(name), (torch.bfloat16 if name == "cuda" else torch.float32)


class ServingService:
    """Completions for published models, all adapters of one base on one engine."""

    def __init__(
        self,
        models: ModelService,
        config: ServeConfig | None = None,
        load: Callable[..., Any] = load_base,
    ) -> None:
        self.models = models
        self.config = config or ServeConfig()
        self._load = load
        self._engine: Engine | None = None
        self._base: str | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ the engine

    @property
    def base(self) -> str | None:
        """The base model this node serves (configured, or the one most models use)."""
        if self._base is None:
            self._base = self.config.base or self._majority_base()
        return self._base

    def _majority_base(self) -> str | None:
        bases = Counter(m["base"] for m in self._all_models())
        return bases.most_common(1)[0][0] if bases else None

    def _all_models(self) -> list[dict[str, Any]]:
        out, offset = [], 0
        while True:
            page = self.models.list(offset=offset, limit=500)
            out.extend(page["items"])
            offset += len(page["items"])
            if offset >= page["total"] or not page["items"]:
                return out

    @property
    def engine(self) -> Engine:
        with self._lock:
            if self._engine is None:
                base = self.base
                if base is None:
                    raise NotFoundError(
                        "this node has no model to serve yet.",
                        field="model",
                        value="",
                        fix="publish one (`openledger model publish`) or set [serve] base.",
                    )
                device, dtype = pick_device(self.config.device)
                model, tokenizer = self._load(base, dtype=dtype)
                model.to(device)
                self._engine = Engine(model, tokenizer, self._adapter_dir, self.config.engine)
                self._engine.start()
                # Warm the host tier in the background: the newest models first.
                newest = sorted(self.catalogue(), key=lambda m: m["created_at"], reverse=True)
                names = [m["name"] for m in newest[: self.config.engine.cpu_adapters]]
                self._engine.adapters.prefetch(names)
            return self._engine

    def close(self) -> None:
        with self._lock:
            if self._engine is not None:
                self._engine.stop()
                self._engine = None

    def _adapter_dir(self, name: str) -> Path:
        return Path(self.models.get(name)["adapter_dir"])

    # ------------------------------------------------------------------ the catalogue

    def catalogue(self) -> list[dict[str, Any]]:
        """The models this node serves: those trained on its base."""
        base = self.base
        return [m for m in self._all_models() if m["base"] == base]

    def model(self, name: str) -> dict[str, Any]:
        """A servable model, or 404 naming why it is not."""
        try:
            model = self.models.get(name)
        except NotFoundError:
            raise NotFoundError(
                f"the model {name!r} does not exist.",
                field="model",
                value=name,
                fix="list the models this node serves with GET /v1/models.",
            ) from None
        if model["base"] != self.base:
            raise NotFoundError(
                f"the model {name!r} is an adapter of {model['base']!r}; this node serves "
                f"adapters of {self.base!r}.",
                field="model",
                value=name,
                fix="send it to a node that serves its base, or pick one from GET /v1/models.",
            )
        return model

    # ------------------------------------------------------------------ requests

    def tokenizer(self) -> Any:
        return self.engine.tokenizer

    def encode_prompt(self, prompt: str) -> list[int]:
        tok = self.tokenizer()
        ids = tok(prompt, add_special_tokens=False)["input_ids"] if prompt else []
        bos = [tok.bos_token_id] if tok.bos_token_id is not None else []
        return bos + list(ids)

    def encode_chat(self, messages: list[dict[str, str]]) -> list[int]:
        tok = self.tokenizer()
        template = None if getattr(tok, "chat_template", None) else DEFAULT_CHAT_TEMPLATE
        text = tok.apply_chat_template(
            messages, chat_template=template, tokenize=False, add_generation_prompt=True
        )
        return list(tok(text, add_special_tokens=False)["input_ids"])

    def check_fits(self, prompt_tokens: int, max_tokens: int) -> None:
        ctx = self.engine.max_ctx
        if prompt_tokens + max_tokens > ctx:
            raise ValidationError(
                f"this model's maximum context length is {ctx} tokens; the request asks for "
                f"{prompt_tokens + max_tokens} ({prompt_tokens} in the prompt, {max_tokens} "
                "to generate).",
                field="max_tokens" if prompt_tokens < ctx else "prompt",
                value=prompt_tokens + max_tokens,
                fix=f"keep prompt tokens + max_tokens at or under {ctx}.",
            )

    def submit(
        self,
        model: str,
        prompt_ids: list[int],
        params: SamplingParams,
        sink: Callable[[Event], None] | None = None,
    ) -> Request:
        self.model(model)
        self.check_fits(len(prompt_ids), params.max_tokens)
        return self.engine.submit(prompt_ids, adapter=model, params=params, sink=sink)


__all__ = ["ServeConfig", "ServingService", "pick_device"]
