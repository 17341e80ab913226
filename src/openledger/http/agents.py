"""The fields of an agent's registration, as both faces take them (the JSON API's
``POST /agents`` and the web app's ``POST /web/api/agents``), and the configuration and
price they make."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from openledger.agents.config import AgentConfig
from openledger.http.bounds import Name, Text
from openledger.units import parse_open


class AgentFields(BaseModel):
    name: Name
    model: Name = Field(description="The published model it runs.")
    price: Name = Field("0", description="OPEN per call, on top of what the model costs.")
    system_prompt: Text = ""
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 64
    retrieval: Annotated[list[Name], Field(max_length=8)] = []
    retrieval_k: int = 3
    calls: Annotated[list[Name], Field(max_length=16)] = Field(
        [], description="Models (NAME) and agents (agent/NAME) it may call."
    )
    spend_cap: Name = Field("0", description="OPEN its wallet may spend per epoch (0: no cap).")

    def config(self) -> AgentConfig:
        return AgentConfig(
            model=self.model,
            system_prompt=self.system_prompt,
            temperature=self.temperature,
            top_p=self.top_p,
            max_tokens=self.max_tokens,
            retrieval=tuple(self.retrieval),
            retrieval_k=self.retrieval_k,
            calls=tuple(self.calls),
            spend_cap=parse_open(self.spend_cap, field="spend_cap"),
        )

    def price_wei(self) -> int:
        return parse_open(self.price, field="price")
