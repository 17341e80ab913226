"""An agent's configuration: what it runs, how, and what it may call (docs/agents.md).

Pure: no I/O, no torch. The configuration is stored as canonical JSON (sorted keys, no
spaces); its sha256 is the configuration hash committed in AgentRegistry, so anyone holding
the document can check it against the chain.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from openledger.errors import ValidationError

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,62}$")
AGENT_PREFIX = "agent/"
MAX_SYSTEM_PROMPT = 8_000  # characters
MAX_TOKENS = 4_096
MAX_CALLEES = 8  # AgentRegistry's limit, for agents and for models each
MAX_RETRIEVAL = 8
MAX_RETRIEVAL_K = 16


def check_name(name: str, *, field_name: str = "name") -> str:
    """An agent's name (``agent/`` prefix allowed and dropped)."""
    bare = name.removeprefix(AGENT_PREFIX)
    if not NAME_RE.match(bare):
        raise ValidationError(
            f"Agent name {name!r} is not allowed.",
            field=field_name,
            value=name,
            fix="use 2-63 lower-case letters, digits, '.', '-' or '_', starting with a "
            "letter or digit.",
        )
    return bare


@dataclass(frozen=True)
class Callee:
    """One thing an agent may call: a published model or another agent."""

    kind: str  # "model" | "agent"
    name: str

    @property
    def ref(self) -> str:
        return f"{AGENT_PREFIX}{self.name}" if self.kind == "agent" else self.name


def parse_callee(ref: str) -> Callee:
    """``agent/NAME`` is an agent; anything else names a published model."""
    ref = ref.strip()
    if ref.startswith(AGENT_PREFIX):
        return Callee("agent", check_name(ref, field_name="calls"))
    if not NAME_RE.match(ref):
        raise ValidationError(
            f"{ref!r} in calls is neither a model name nor agent/NAME.",
            field="calls",
            value=ref,
            fix="name a published model or an agent as agent/NAME.",
        )
    return Callee("model", ref)


@dataclass(frozen=True)
class AgentConfig:
    """What an agent runs: its model, system prompt and sampling defaults, the datanets it
    retrieves from, the models and agents it may call, and the most its own wallet may
    spend on those calls in one epoch (0: no cap)."""

    model: str
    system_prompt: str = ""
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 64
    retrieval: tuple[str, ...] = ()
    retrieval_k: int = 3
    calls: tuple[str, ...] = ()
    spend_cap: int = 0  # wei per epoch
    version: int = field(default=1)

    def __post_init__(self) -> None:
        def bad(name: str, value: Any, rule: str, fix: str) -> ValidationError:
            return ValidationError(f"{name} = {value!r} {rule}.", field=name, value=value, fix=fix)

        if not isinstance(self.model, str) or not NAME_RE.match(self.model):
            raise bad(
                "model",
                self.model,
                "is not a model name",
                "name a published model.",
            )
        if not isinstance(self.system_prompt, str) or len(self.system_prompt) > MAX_SYSTEM_PROMPT:
            raise bad(
                "system_prompt",
                f"{len(str(self.system_prompt))} characters",
                f"is longer than {MAX_SYSTEM_PROMPT} characters",
                "shorten the system prompt.",
            )
        if isinstance(self.temperature, bool) or not 0.0 <= float(self.temperature) <= 2.0:
            raise bad(
                "temperature",
                self.temperature,
                "is outside [0, 2]",
                "use 0 for greedy decoding or a value up to 2.",
            )
        if isinstance(self.top_p, bool) or not 0.0 < float(self.top_p) <= 1.0:
            raise bad("top_p", self.top_p, "is outside (0, 1]", "use e.g. 0.9, or 1.")
        if (
            isinstance(self.max_tokens, bool)
            or not isinstance(self.max_tokens, int)
            or not 1 <= self.max_tokens <= MAX_TOKENS
        ):
            raise bad(
                "max_tokens", self.max_tokens, f"is outside [1, {MAX_TOKENS}]", "use e.g. 64."
            )
        if len(self.retrieval) > MAX_RETRIEVAL or len(set(self.retrieval)) != len(self.retrieval):
            raise bad(
                "retrieval",
                list(self.retrieval),
                f"must be at most {MAX_RETRIEVAL} different datanets",
                "name each datanet once.",
            )
        for d in self.retrieval:
            if not isinstance(d, str) or not NAME_RE.match(d):
                raise bad(
                    "retrieval",
                    d,
                    "is not a datanet name",
                    "name a datanet.",
                )
        if (
            isinstance(self.retrieval_k, bool)
            or not isinstance(self.retrieval_k, int)
            or not 1 <= self.retrieval_k <= MAX_RETRIEVAL_K
        ):
            raise bad(
                "retrieval_k", self.retrieval_k, f"is outside [1, {MAX_RETRIEVAL_K}]", "use e.g. 3."
            )
        callees = [parse_callee(c) for c in self.calls]
        if len({c.ref for c in callees}) != len(callees):
            raise bad("calls", list(self.calls), "names a callee twice", "name each once.")
        for kind in ("agent", "model"):
            n = sum(c.kind == kind for c in callees)
            if n > MAX_CALLEES:
                raise bad(
                    "calls",
                    list(self.calls),
                    f"names {n} {kind}s, more than {MAX_CALLEES}",
                    f"call at most {MAX_CALLEES} {kind}s.",
                )
        if (
            isinstance(self.spend_cap, bool)
            or not isinstance(self.spend_cap, int)
            or self.spend_cap < 0
        ):
            raise bad(
                "spend_cap",
                self.spend_cap,
                "is not a wei amount of 0 or more",
                "use 0 for no cap, or the most its wallet may spend per epoch.",
            )
        object.__setattr__(self, "calls", tuple(c.ref for c in callees))

    @property
    def callees(self) -> list[Callee]:
        return [parse_callee(c) for c in self.calls]

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["temperature"] = float(self.temperature)
        doc["top_p"] = float(self.top_p)
        doc["retrieval"] = list(self.retrieval)
        doc["calls"] = list(self.calls)
        doc["spend_cap"] = str(self.spend_cap)  # wei exceed JSON's safe integers
        return doc

    def canonical(self) -> bytes:
        return json.dumps(
            self.to_json(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode("utf-8")

    def hash(self) -> str:
        """``0x`` + sha256 of the canonical JSON: the hash AgentRegistry records."""
        return "0x" + hashlib.sha256(self.canonical()).hexdigest()

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> AgentConfig:
        """A configuration from its JSON form (checked as when it was made)."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(doc) - known)
        if unknown:
            raise ValidationError(
                f"Unknown configuration field(s): {', '.join(unknown)}.",
                field=unknown[0],
                value=doc[unknown[0]],
                fix=f"use only {', '.join(sorted(known))}.",
            )
        if "model" not in doc:
            raise ValidationError(
                "The configuration names no model.",
                field="model",
                fix="name a published model.",
            )
        args = dict(doc)
        for key in ("retrieval", "calls"):
            if key in args:
                if not isinstance(args[key], list | tuple):
                    raise ValidationError(
                        f"{key} must be a list.",
                        field=key,
                        value=args[key],
                        fix=f'e.g. "{key}": ["name"].',
                    )
                args[key] = tuple(args[key])
        if "spend_cap" in args:
            try:
                args["spend_cap"] = int(str(args["spend_cap"]))
            except ValueError as exc:
                raise ValidationError(
                    "spend_cap is not a wei amount.",
                    field="spend_cap",
                    value=args["spend_cap"],
                    fix='give it in wei, e.g. "0".',
                ) from exc
        return cls(**args)
