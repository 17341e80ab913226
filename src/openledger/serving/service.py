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

from openledger.errors import NotFoundError, OpenLedgerError, ValidationError
from openledger.factory.base import base_fingerprint, load_base
from openledger.factory.data import render_chat
from openledger.factory.publish import ModelService
from openledger.serving.adapters import ADAPTER_WEIGHTS
from openledger.serving.checks import check_adapter, engine_path
from openledger.serving.engine import Engine, EngineConfig, Event, Request
from openledger.serving.generic import WARNING
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
        self._base_fingerprint: str | None = None
        self._path: tuple[str, str] | None = None  # (native | generic | "", model_type)
        self._lock = threading.Lock()
        self.request_observer: Callable[..., None] | None = None  # the node's metrics
        # the gateway role (providers.router.ProviderRouter): asked first for every request
        self.router: Any | None = None

    def observe(self, observer: Callable[..., None]) -> None:
        """Show every request's events to ``observer`` (the node's metrics) from now on."""
        self.request_observer = observer
        if self._engine is not None:
            self._engine.observer = observer

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
                        fix="publish a model first, or have the operator set [serve] base.",
                    )
                device, dtype = pick_device(self.config.device)
                model, tokenizer = self._load(base, dtype=dtype)
                model.to(device)
                self._engine = Engine(model, tokenizer, self._adapter_dir, self.config.engine)
                self._engine.observer = self.request_observer
                self._engine.start()
                self._engine.adapters.prefetch(self._warm_set())
            return self._engine

    def _warm_set(self) -> list[str]:
        """The newest models whose files fit the host tier, oldest of them first (so the
        newest end up most recently used): loaded in the background at start."""
        budget = self.config.engine.host_tier_bytes
        chosen: list[str] = []
        for m in sorted(self.catalogue(), key=lambda m: m["created_at"], reverse=True):
            try:
                size = (Path(m["adapter_dir"]) / ADAPTER_WEIGHTS).stat().st_size
            except OSError:
                continue  # a missing file is reported when the model is asked for
            if size > budget:
                break
            budget -= size
            chosen.append(m["name"])
        return chosen[::-1]

    def status(self, name: str) -> dict[str, Any]:
        """Where a model's adapter is (``device``, ``host`` or ``disk``) and whether it is
        loaded, without starting the engine."""
        engine = self._engine
        tier = engine.tier(name) if engine is not None else "disk"
        return {"loaded": tier != "disk", "tier": tier}

    def engine_info(self) -> dict[str, Any]:
        """The served base's engine path (``native`` or ``generic``, read from its config
        without loading weights), its warning and the tiers' sizes."""
        info: dict[str, Any] = {"base": self.base, "engine": None, "warning": None}
        engine = self._engine
        if engine is not None:
            info.update(engine=engine.kind, warning=engine.warning)
            stats = engine.stats()
            info["tiers"] = {
                k: stats[k]
                for k in (
                    "host_adapters",
                    "host_tier_bytes",
                    "host_tier_capacity_bytes",
                    "device_adapters",
                    "device_slots",
                    "device_slot_bytes",
                )
            }
        elif self.base is not None:
            if self._path is None:
                self._path = engine_path(self.base)
            kind, model_type = self._path
            if kind:
                info["engine"] = kind
                info["warning"] = (
                    WARNING.format(model_type=model_type) if kind == "generic" else None
                )
        if "tiers" not in info:
            info["tiers"] = {"host_tier_capacity_bytes": self.config.engine.host_tier_bytes}
        return info

    def check_publishable(self, name: str, adapter_dir: Path, base: str) -> None:
        """Refuse, before a model is published, an adapter this engine could not serve on
        ``base``: not LoRA/DoRA, unreadable, or not fitting the base (module, layer, shape,
        rank); the message names the file and the mismatch."""
        check_adapter(name, adapter_dir, base, max_rank=self.config.engine.max_lora_rank)

    def _fingerprint(self) -> str | None:
        if self._base_fingerprint is None and self.base is not None:
            try:
                self._base_fingerprint = base_fingerprint(self.base)
            except OpenLedgerError:
                self._base_fingerprint = ""
        return self._base_fingerprint or None

    def close(self) -> None:
        with self._lock:
            if self._engine is not None:
                self._engine.stop()
                self._engine = None

    def _adapter_dir(self, name: str) -> Path:
        """The adapter's directory (the engine's loader threads call this), refusing one
        trained on another copy of the base (its recorded fingerprint differs)."""
        model = self.models.get(name)
        path = Path(model["adapter_dir"])
        served = self._fingerprint()
        trained = model.get("base_fingerprint") or ""
        if served and trained.startswith("sha256:") and trained != served:
            raise ValidationError(
                f"adapter {name!r} at {str(path / ADAPTER_WEIGHTS)!r} cannot be served: it was "
                f"trained on a base with fingerprint {trained}, and this node serves "
                f"{self.base!r} with fingerprint {served}.",
                field="adapter",
                value=name,
                fix="serve it on the base it was trained on (set [serve] base), or retrain "
                "it on this base.",
            )
        return path

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
        """The token ids of ``messages`` in the chat template, generation prompt included
        (``factory.data.render_chat``): what the model is given for a chat."""
        tok = self.tokenizer()
        return list(tok(render_chat(tok, messages), add_special_tokens=False)["input_ids"])

    def chat_prompt_text(self, messages: list[dict[str, str]]) -> str:
        """The text the model continues for a chat (the template, generation prompt
        included), without the template's leading bos: the attributor puts bos before any
        prompt. What a chat's receipt is attributed against."""
        return render_chat(self.tokenizer(), messages, bos=False)

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
        """The request, run by a compute provider of the model when one is registered
        (``router``; it quacks as an engine request), else by this node's engine."""
        card = self.model(model)
        self.check_fits(len(prompt_ids), params.max_tokens)
        if self.router is not None:
            remote = self.router.submit(card, prompt_ids, params, self.tokenizer(), sink)
            if remote is not None:
                return remote
        return self.engine.submit(prompt_ids, adapter=model, params=params, sink=sink)


__all__ = ["ServeConfig", "ServingService", "pick_device"]
