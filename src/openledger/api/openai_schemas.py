"""Request and response bodies of the OpenAI-compatible API (/v1), and their checks.

The request models accept what OpenAI's clients send. Sampling fields become one
``SamplingParams`` per choice (which validates them); fields this node cannot honour
(log probabilities, penalties, tools, …) are rejected when set to anything but their
neutral value, rather than silently ignored.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field

from openledger.errors import ValidationError
from openledger.serving.sampling import SamplingParams

MAX_N = 8
MAX_PROMPTS = 64

#: Fields OpenAI defines that this node does not implement, with the values that mean "off".
UNSUPPORTED: dict[str, tuple[Any, ...]] = {
    "best_of": (None, 1),
    "echo": (None, False),
    "logprobs": (None, False, 0),
    "top_logprobs": (None, 0),
    "suffix": (None, ""),
    "presence_penalty": (None, 0, 0.0),
    "frequency_penalty": (None, 0, 0.0),
    "logit_bias": (None, {}),
    "tools": (None, []),
    "tool_choice": (None, "none"),
    "functions": (None, []),
    "function_call": (None, "none"),
    "response_format": (None, {"type": "text"}),
}


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def now() -> int:
    return int(time.time())


# ---------------------------------------------------------------------------- requests


class StreamOptions(BaseModel):
    include_usage: bool = False


class SamplingRequest(BaseModel):
    """The fields completions and chat completions share."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(description="A model name from GET /v1/models.")
    temperature: float | None = Field(1.0, description="0 is greedy; up to 2.")
    top_p: float | None = Field(1.0, description="Nucleus sampling mass, in (0, 1].")
    n: int | None = Field(1, ge=1, le=MAX_N, description="Choices per prompt.")
    stream: bool | None = Field(False, description="Server-sent events, ending in [DONE].")
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = Field(None, description="Up to 4 stop sequences.")
    seed: int | None = Field(None, description="Choice i samples with seed + i.")
    user: str | None = None
    ignore_eos: bool = Field(False, description="Extension (as vLLM): generate past EOS.")

    def check_supported(self) -> None:
        """A 400 naming the first field set that this node does not implement."""
        extra = self.model_extra or {}
        for name, neutral in UNSUPPORTED.items():
            if name in extra and not any(extra[name] == v for v in neutral):
                raise ValidationError(
                    f"{name} is not supported by this node.",
                    field=name,
                    value=extra[name],
                    fix=f"leave {name} out of the request.",
                )

    @property
    def choices_per_prompt(self) -> int:
        return self.n or 1

    @property
    def include_usage(self) -> bool:
        return bool(self.stream and self.stream_options and self.stream_options.include_usage)

    def with_defaults(self, defaults: Any) -> Self:
        """This request with the sampling parameters of ``defaults`` (anything with
        ``temperature``, ``top_p`` and ``max_tokens``: an agent's configuration) where the
        caller set none."""
        given = self.model_fields_set
        update: dict[str, Any] = {}
        if "temperature" not in given:
            update["temperature"] = defaults.temperature
        if "top_p" not in given:
            update["top_p"] = defaults.top_p
        if not given & {"max_tokens", "max_completion_tokens"}:
            update["max_tokens"] = defaults.max_tokens
        return self.model_copy(update=update)

    def sampling(self, max_tokens: int, choice: int) -> SamplingParams:
        """The engine parameters of choice ``choice`` (seed + choice, so choices differ)."""
        stop = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        return SamplingParams(
            max_tokens=max_tokens,
            temperature=1.0 if self.temperature is None else self.temperature,
            top_p=1.0 if self.top_p is None else self.top_p,
            stop=tuple(stop),
            seed=None if self.seed is None else self.seed + choice,
            ignore_eos=self.ignore_eos,
        )


class CompletionRequest(SamplingRequest):
    prompt: str | list[str] = Field(description="A prompt, or a list of prompts.")
    max_tokens: int | None = Field(16, description="Tokens to generate per choice.")

    def prompts(self) -> list[str]:
        prompts = [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)
        if not prompts or len(prompts) > MAX_PROMPTS:
            raise ValidationError(
                f"prompt is a list of {len(prompts)} prompts; 1 to {MAX_PROMPTS} are accepted.",
                field="prompt",
                value=len(prompts),
                fix=f"send between 1 and {MAX_PROMPTS} prompts per request.",
            )
        return prompts


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart]
    name: str | None = None

    def as_template_input(self) -> dict[str, str]:
        role = "system" if self.role == "developer" else self.role
        if isinstance(self.content, str):
            return {"role": role, "content": self.content}
        return {"role": role, "content": "".join(part.text for part in self.content)}


class ChatCompletionRequest(SamplingRequest):
    messages: list[ChatMessage] = Field(min_length=1, description="The conversation so far.")
    max_tokens: int | None = Field(None, description="Deprecated name of max_completion_tokens.")
    max_completion_tokens: int | None = Field(
        None, description="Tokens to generate per choice (default: the rest of the context)."
    )

    @property
    def max_tokens_field(self) -> str:
        return "max_completion_tokens" if self.max_completion_tokens is not None else "max_tokens"

    @property
    def requested_max_tokens(self) -> int | None:
        if self.max_completion_tokens is not None:
            return self.max_completion_tokens
        return self.max_tokens


# ---------------------------------------------------------------------------- responses


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


def usage(prompt_tokens: int, completion_tokens: int) -> Usage:
    return Usage(
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        total_tokens=prompt_tokens + completion_tokens,
    )


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = Field(description="The owner's address.")
    base: str
    price_in: str = Field(description="wei of OPEN per prompt token")
    price_out: str = Field(description="wei of OPEN per completion token")
    chain_id: int = Field(description="The model's id in the on-chain registry.")
    loaded: bool = Field(False, description="Its adapter is in memory (host or device tier).")
    tier: Literal["device", "host", "disk"] = Field(
        "disk", description="Where its adapter is: a device slot, host memory, or disk only."
    )
    warning: str | None = Field(
        None, description="Set when the base is served by the slower generic path."
    )
    agent: dict[str, Any] | None = Field(
        None,
        description="For an agent (id agent/NAME, chain_id its AgentRegistry id): the model it "
        "runs, its price per call in wei of OPEN (on top of the model's), its configuration "
        "hash and what it may call.",
    )


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
    serving: dict[str, Any] | None = Field(
        None, description="The engine: native or generic, its warning, the tiers' sizes."
    )


def model_card(
    model: dict[str, Any], status: dict[str, Any] | None = None, warning: str | None = None
) -> ModelCard:
    created = datetime.fromisoformat(model["created_at"])
    if created.tzinfo is None:  # SQLite hands back naive UTC
        created = created.replace(tzinfo=UTC)
    return ModelCard(
        id=model["name"],
        created=int(created.timestamp()),
        owned_by=model["owner"],
        base=model["base"],
        price_in=str(model["price_in"]),
        price_out=str(model["price_out"]),
        chain_id=int(model["id"]),
        warning=warning,
        **(status or {}),
    )


def agent_card(
    model: ModelCard,
    name: str,
    owner: str,
    chain_id: int,
    *,
    runs: str,
    price: str,
    config_hash: str,
    calls: list[str],
) -> ModelCard:
    """An agent's card, ``agent/NAME`` (docs/agents.md): the card of the model it ``runs``
    (its prices per token), under the agent's name, owner and AgentRegistry id, with the
    agent's price per call (wei of OPEN), configuration hash and calls in ``agent``."""
    agent = {"model": runs, "price": price, "config_hash": config_hash, "calls": calls}
    update = {"id": f"agent/{name}", "owned_by": owner, "chain_id": chain_id, "agent": agent}
    return model.model_copy(update=update)


class CompletionChoice(BaseModel):
    index: int
    text: str
    logprobs: None = None
    finish_reason: str | None


class Completion(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    index: int
    message: AssistantMessage
    logprobs: None = None
    finish_reason: str | None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage


def completion_chunk(
    head: dict[str, Any], index: int, text: str, finish_reason: str | None
) -> dict[str, Any]:
    """One ``text_completion`` stream chunk (``head``: id, created, model)."""
    choice = {"index": index, "text": text, "logprobs": None, "finish_reason": finish_reason}
    return {**head, "object": "text_completion", "choices": [choice]}


def chat_chunk(
    head: dict[str, Any], index: int, delta: dict[str, str], finish_reason: str | None
) -> dict[str, Any]:
    """One ``chat.completion.chunk`` (``head``: id, created, model)."""
    choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
    return {**head, "object": "chat.completion.chunk", "choices": [choice]}


def usage_chunk(
    head: dict[str, Any], obj: str, prompt_tokens: int, completion_tokens: int
) -> dict[str, Any]:
    """A stream's usage chunk (``stream_options.include_usage``): no choices, the usage."""
    return {
        **head,
        "object": obj,
        "choices": [],
        "usage": usage(prompt_tokens, completion_tokens).model_dump(),
    }


class _PaidFields(BaseModel):
    """What a paid response adds to OpenAI's fields."""

    receipt_id: str | None = Field(
        description="The first choice's receipt: its unguessable public id (GET /receipts/ID)."
    )
    receipt_ids: list[str | None] = Field(description="Each choice's receipt, by index.")
    attribution: dict[str, Any] = Field(description="The first choice's attribution.")
    attributions: list[dict[str, Any]] = Field(description="Each choice's attribution.")


class PaidCompletion(Completion, _PaidFields):
    pass


class PaidChatCompletion(ChatCompletion, _PaidFields):
    pass


__all__ = [
    "ChatCompletion",
    "ChatCompletionRequest",
    "ChatMessage",
    "Completion",
    "CompletionRequest",
    "ModelCard",
    "ModelList",
    "PaidChatCompletion",
    "PaidCompletion",
    "Usage",
    "agent_card",
    "chat_chunk",
    "completion_chunk",
    "model_card",
    "new_id",
    "now",
    "usage",
    "usage_chunk",
]
