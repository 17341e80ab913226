"""Dependencies shared by the route modules."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from openledger.node import Node


def get_node(request: Request) -> Node:
    return request.app.state.node


NodeDep = Annotated[Node, Depends(get_node)]
