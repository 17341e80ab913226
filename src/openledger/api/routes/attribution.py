"""/models/{model}/attribute: Proof of Attribution for a completion, as JSON (an API key
with the ``inference`` scope: a query costs a backward pass)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from openledger.http.credentials import Inferrer
from openledger.http.deps import NodeDep

router = APIRouter(tags=["attribution"])


class AttributeRequest(BaseModel):
    prompt: Annotated[str, Field(max_length=100_000, description="The prompt the model was given")]
    completion: Annotated[str, Field(max_length=100_000, description="The text it generated")]
    top: int = Field(10, ge=1, le=1000, description="How many top training examples to return")


@router.post("/models/{model}/attribute")
def attribute(
    model: str, body: AttributeRequest, node: NodeDep, principal: Inferrer
) -> dict[str, Any]:
    """Which contributions made this completion likely (the model's attribution policy)."""
    result = node.attribution.attribute(model, body.prompt, body.completion, top=body.top)
    return result.to_dict()
