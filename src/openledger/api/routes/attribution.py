"""/models/{model}/attribute: Proof of Attribution for a completion, as JSON."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from openledger.api.deps import NodeDep

router = APIRouter(tags=["attribution"])


class AttributeRequest(BaseModel):
    prompt: str = Field(description="The prompt the model was given")
    completion: str = Field(description="The text it generated")
    top: int = Field(10, description="How many top training examples to return")


@router.post("/models/{model}/attribute")
def attribute(model: str, body: AttributeRequest, node: NodeDep) -> dict[str, Any]:
    """Which contributions made this completion likely (the model's gradient index)."""
    result = node.attribution.attribute(model, body.prompt, body.completion, top=body.top)
    return result.to_dict()
