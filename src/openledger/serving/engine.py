"""The OpenLoRA engine: continuous batching of requests that each name their own adapter.

One step of the scheduler (``Engine.step``):

1. take new requests and cancellations;
2. admit waiting requests while cache rows are free and their adapter is in host memory
   (a cold adapter is loaded by a background thread meanwhile; the request waits, the
   others go on), pinning each adapter in a device slot;
3. prefill the admitted prompts in one padded batch (first token);
4. one decode step for every request that was already running (one token each);
5. stream the new text, finish requests (eos, stop sequence, max_tokens, context) and
   free their cache rows and slots, moving the last row into the hole so rows stay compact.

``Engine.start()`` runs steps on a background thread; tests may call ``step()`` directly.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from openledger.errors import OpenLedgerError, ValidationError
from openledger.serving.adapters import load_adapter
from openledger.serving.arch import native_spec
from openledger.serving.cache import AdapterCache
from openledger.serving.generic import WARNING, GenericModel, PeftSlots, load_raw_adapter
from openledger.serving.lora import LoraSlots, SlotsFull, slot_bytes
from openledger.serving.model import EngineModel
from openledger.serving.request import Completion, Event, Request
from openledger.serving.sampling import SamplingParams, choose_tokens

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineConfig:
    """How much the engine holds: rows, context, adapters per tier (0 slots: sized by memory)."""

    max_batch: int = 64
    max_ctx: int | None = None  # default: the model's max_position_embeddings
    device_slots: int = 0  # 0: from free GPU memory after the KV cache (CPU: 2 × max_batch)
    host_tier_bytes: int = 4 << 30  # adapters kept in host memory, by their tensors' bytes
    max_lora_rank: int = 64
    max_prefill_tokens: int = 8192
    load_workers: int = 2
    slot_memory_fraction: float = 0.8  # of the GPU memory free after the KV cache


def auto_slots(config: EngineConfig, per_slot: int, device: torch.device) -> int:
    """Device slots that fit: on CUDA ``slot_memory_fraction`` of the memory free once the
    model and the KV cache are allocated, divided by a slot's bytes at ``max_lora_rank``
    on every projection; on CPU 2 × max_batch (host memory is the host tier's budget)."""
    if config.device_slots > 0:
        return config.device_slots
    if device.type != "cuda":
        return 2 * config.max_batch
    free, _ = torch.cuda.mem_get_info(device)
    return max(config.max_batch, int(free * config.slot_memory_fraction) // max(per_slot, 1))


class Engine:
    """The base model once, adapters in tiers, requests batched continuously."""

    def __init__(
        self,
        hf_model: torch.nn.Module,
        tokenizer: Any,
        resolve: Callable[[str], Any],
        config: EngineConfig | None = None,
        *,
        loader: Callable[..., Any] | None = None,
    ) -> None:
        self.config = config = config or EngineConfig()
        self.tokenizer = tokenizer
        param = next(hf_model.parameters())
        self.model: EngineModel | GenericModel
        self.slots: LoraSlots | PeftSlots
        spec = native_spec(hf_model.config)
        if spec is not None:
            self.kind, self.warning = "native", None
            self.model = EngineModel(
                hf_model, max_batch=config.max_batch, max_ctx=config.max_ctx, lora=None
            )
            shape = self.model.shape
            groups = shape.groups(spec)
            per_slot = slot_bytes(groups, shape.layers, config.max_lora_rank, param.dtype)
            capacity = auto_slots(config, per_slot, param.device)  # after the KV cache
            self.slots = LoraSlots(
                capacity, groups, shape.layers, dtype=param.dtype, device=param.device
            )
            self.model.lora = self.slots
            fit = self.model.fit(config.max_lora_rank)
            default = lambda name, path: load_adapter(name, path, dtype=param.dtype, fit=fit)  # noqa: E731
        else:
            self.kind = "generic"
            self.warning = WARNING.format(model_type=hf_model.config.model_type)
            log.warning("%s", self.warning)
            capacity = config.device_slots or 2 * config.max_batch
            self.slots = PeftSlots(capacity, hf_model)
            self.model = GenericModel(
                hf_model, max_batch=config.max_batch, max_ctx=config.max_ctx, slots=self.slots
            )
            gfit = self.model.fit(config.max_lora_rank)
            default = lambda name, path: load_raw_adapter(name, path, fit=gfit, dtype=param.dtype)  # noqa: E731
        self.adapters = AdapterCache(
            resolve,
            loader or default,
            capacity_bytes=config.host_tier_bytes,
            workers=config.load_workers,
            on_ready=self._wake_up,
        )
        self.eos = {int(t) for t in _eos_ids(hf_model, tokenizer)}
        self._inbox: queue.SimpleQueue[Request] = queue.SimpleQueue()
        self._waiting: deque[Request] = deque()
        self._running: list[Request] = []  # index = cache row
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._stop = False
        self.observer: Callable[[Request, Event], None] | None = None  # on every request
        # requests whose adapter was / was not in the tier when first looked for
        self.device_hits = self.device_misses = self.host_hits = self.host_misses = 0
        self.steps = 0
        #: Called with (rows, logits) after every forward (tests compare logits with it).
        self.on_logits: Callable[[list[Request], torch.Tensor], None] | None = None

    @property
    def max_ctx(self) -> int:
        return self.model.max_ctx

    def tier(self, name: str) -> str:
        """Where an adapter is now: ``device`` (a slot), ``host`` (memory) or ``disk``."""
        if self.slots.slot_of(name) is not None:
            return "device"
        return "host" if name in self.adapters else "disk"

    # ------------------------------------------------------------------ client side

    def submit(
        self,
        prompt: list[int],
        *,
        adapter: str | None = None,
        params: SamplingParams | None = None,
        sink: Callable[[Event], None] | None = None,
    ) -> Request:
        params = params or SamplingParams()
        if not prompt:
            raise ValidationError(
                "the prompt is empty.",
                field="prompt",
                value="",
                fix="send at least one token of prompt.",
            )
        if len(prompt) >= self.max_ctx:
            raise ValidationError(
                f"the prompt has {len(prompt)} tokens; this model's context is {self.max_ctx} "
                "tokens and the prompt must leave room for at least one more.",
                field="prompt",
                value=len(prompt),
                fix=f"shorten the prompt to at most {self.max_ctx - 1} tokens.",
            )
        request = Request(list(prompt), adapter, params, self.tokenizer, sink)
        request.observer = self.observer
        if adapter is not None:
            self.adapters.request(adapter)
        self._inbox.put(request)
        self._wake_up()
        return request

    def generate(
        self,
        prompts: list[list[int]],
        adapters: list[str | None],
        params: SamplingParams | None = None,
    ) -> list[Completion]:
        """Submit all, run (or let the thread run) until all are done."""
        requests = [
            self.submit(p, adapter=a, params=params) for p, a in zip(prompts, adapters, strict=True)
        ]
        if self._thread is None:
            while not all(r.done for r in requests):
                if not self.step():
                    self._wake.wait(0.01)
                    self._wake.clear()
        return [r.wait() for r in requests]

    def start(self) -> None:
        if self._thread is None:
            self._stop = False
            self._thread = threading.Thread(target=self._loop, name="openlora-engine", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the loop; every request not yet finished ends as cancelled."""
        self._stop = True
        self._wake_up()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        self.adapters.close()
        while True:
            try:
                self._waiting.append(self._inbox.get_nowait())
            except queue.Empty:
                break
        for r in [*self._running, *self._waiting]:
            if not r.done:
                r.finish_reason = r.finish_reason or "cancelled"
                r.emit(Event("done", finish_reason=r.finish_reason))
        for r in self._running:
            self.slots.release(r.slot)
        self._running.clear()
        self._waiting.clear()

    def stats(self) -> dict[str, Any]:
        return {
            "running": len(self._running),
            "waiting": len(self._waiting) + self._inbox.qsize(),
            "free_rows": self.config.max_batch - len(self._running),
            "pinned_slots": self.slots.pinned,
            "device_adapters": len(self.slots.resident),
            "device_slots": self.slots.capacity,
            "device_slot_bytes": self.slots.nbytes,
            "host_adapters": len(self.adapters.resident),
            "host_tier_bytes": self.adapters.nbytes,
            "host_tier_capacity_bytes": self.adapters.capacity_bytes,
            "slot_loads": self.slots.loads,
            "device_hits": self.device_hits,
            "device_misses": self.device_misses,
            "device_loads": self.slots.loads,
            "host_hits": self.host_hits,
            "host_misses": self.host_misses,
            "host_loads": self.adapters.loads,
            "slot_evictions": self.slots.evictions,
            "steps": self.steps,
            "kv_cache_bytes": self.model.kv_bytes,
            "engine": self.kind,
        }

    # ------------------------------------------------------------------ the loop

    def _wake_up(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        if self.model.device.type == "cpu":
            # Subnormal floats run ~30x slower on x86; they never matter to a logit.
            torch.set_flush_denormal(True)
        while not self._stop:
            self._wake.clear()
            if not self.step():
                self._wake.wait(0.05)

    def step(self) -> bool:
        """One scheduler iteration; False when there was nothing to do."""
        while True:
            try:
                self._waiting.append(self._inbox.get_nowait())
            except queue.Empty:
                break
        self._drop_cancelled()
        before = len(self._running)
        admitted = self._admit()
        if not admitted and not before:
            return False
        self.steps += 1
        try:
            if admitted:
                self._prefill(admitted)
            if before:
                self._decode(before)
        except Exception as exc:  # a failed forward fails its batch, never the engine
            for r in list(self._running):
                r.finish_reason, r.error = "error", exc
            self._release_finished()
            return True
        self._release_finished()
        return True

    def _drop_cancelled(self) -> None:
        for r in [r for r in self._waiting if r.cancelled]:
            self._waiting.remove(r)
            r.finish_reason = "cancelled"
            r.emit(Event("done", finish_reason="cancelled"))
        for r in self._running:
            if r.cancelled and r.finish_reason is None:
                r.finish_reason = "cancelled"
        self._release_finished()

    def _admit(self) -> list[Request]:
        admitted: list[Request] = []
        budget = self.config.max_prefill_tokens
        for r in list(self._waiting):
            if len(self._running) >= self.config.max_batch:
                break
            if admitted and len(r.prompt) > budget:
                continue
            slot = self._slot_for(r)
            if slot is None:
                continue
            self._waiting.remove(r)
            if slot < 0:  # its adapter failed to load: already answered
                continue
            r.slot = slot
            self._running.append(r)
            admitted.append(r)
            budget -= len(r.prompt)
        return admitted

    def _slot_for(self, r: Request) -> int | None:
        """The device slot for the request's adapter; None to wait, -1 when it failed."""
        if r.adapter is None:
            return 0
        slot = self.slots.acquire_resident(r.adapter)
        first = not getattr(r, "_tiers_counted", False)  # each request counts once per tier
        r._tiers_counted = True  # type: ignore[attr-defined]
        if slot is not None:
            self.device_hits += first
            return slot
        adapter = self.adapters.get(r.adapter)
        if first:
            self.device_misses += 1
            self.host_hits += adapter is not None
            self.host_misses += adapter is None
        if adapter is None:
            error = self.adapters.take_error(r.adapter)
            if error is None:
                self.adapters.request(r.adapter)
                return None
            r.finish_reason = "error"
            r.emit(Event("error", error=error))
            return -1
        try:
            return self.slots.acquire(adapter)  # type: ignore[arg-type]
        except SlotsFull:
            return None
        except Exception as exc:  # this adapter cannot be placed: fail its request only
            if not isinstance(exc, OpenLedgerError):
                log.exception("placing adapter %r in a device slot failed", r.adapter)
            r.finish_reason = "error"
            r.emit(Event("error", error=exc))
            return -1

    def _prefill(self, batch: list[Request]) -> None:
        """Run the prompts of ``batch`` (the last ``b`` rows of ``_running``) into their
        cache rows, then sample each one's first token. ``b`` requests, ``T`` the longest
        prompt, ``V`` the vocabulary."""
        first_row = len(self._running) - len(batch)
        longest = max(len(r.prompt) for r in batch)
        ids = torch.zeros(len(batch), longest, dtype=torch.long)  # b × T, right-padded with 0
        for i, r in enumerate(batch):
            ids[i, : len(r.prompt)] = torch.tensor(r.prompt)
        lengths = torch.tensor([len(r.prompt) for r in batch])  # b
        device = self.model.device
        logits = self.model.prefill(
            ids.to(device),
            lengths.to(device),
            list(range(first_row, first_row + len(batch))),  # b cache rows
            [r.slot for r in batch],  # b adapter slots
        )  # b × V: each prompt's last-token logits
        for r in batch:
            r.length = len(r.prompt)
        self._accept(batch, logits)

    def _decode(self, n: int) -> None:
        """One token for each of the first ``n`` running rows: feed each its pending token
        at its position, sample the next."""
        batch = self._running[:n]
        device = self.model.device
        ids = torch.tensor([r.pending for r in batch], device=device)  # n
        positions = torch.tensor([r.length for r in batch], device=device)  # n
        logits = self.model.decode(ids, positions, [r.slot for r in batch])  # n × V
        for r in batch:
            r.length += 1
        self._accept(batch, logits)

    def _accept(self, batch: list[Request], logits: torch.Tensor) -> None:
        """Sample a token for each row of ``logits`` (len(batch) × V) whose request is
        still live, and advance it."""
        if self.on_logits is not None:
            self.on_logits(batch, logits)
        live = [i for i, r in enumerate(batch) if r.finish_reason is None]
        if not live:
            return
        chosen = choose_tokens(
            logits[live],  # live × V
            [batch[i].params for i in live],
            [batch[i].generator for i in live],
        )  # live token ids
        for i, token in zip(live, chosen, strict=True):
            self._advance(batch[i], token)

    def _advance(self, r: Request, token: int) -> None:
        if token in self.eos and not r.params.ignore_eos:
            r.stop_token = token
            return self._finish(r, "stop")
        r.tokens.append(token)
        r.pending = token
        r.emit(Event("token", text=r.stream.push(token), token=token))
        if r.stream.stopped:
            return self._finish(r, "stop")
        if len(r.tokens) >= r.params.max_tokens or r.length + 1 >= self.max_ctx:
            return self._finish(r, "length")
        return None

    def _finish(self, r: Request, reason: str) -> None:
        tail = r.stream.finish()
        if tail:
            r.emit(Event("token", text=tail))
        r.finish_reason = reason  # the end event follows once its row and slot are free

    def _release_finished(self) -> None:
        for row in range(len(self._running) - 1, -1, -1):
            r = self._running[row]
            if r.finish_reason is None:
                continue
            self.slots.release(r.slot)
            last = len(self._running) - 1
            if row != last:
                moved = self._running[last]
                self.model.move_row(last, row, moved.length)
                self._running[row] = moved
            self._running.pop()
            self.model.release_row(last)
            if r.error is not None:
                r.emit(Event("error", error=r.error))
            else:
                r.emit(Event("done", finish_reason=r.finish_reason))


def _eos_ids(model: Any, tokenizer: Any) -> list[int]:
    ids = getattr(model.generation_config, "eos_token_id", None)
    ids = ids if isinstance(ids, list) else [ids]
    if tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    return [i for i in ids if i is not None]


__all__ = ["Completion", "Engine", "EngineConfig", "Event", "Request"]
