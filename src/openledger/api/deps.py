"""Dependencies shared by the route modules."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from openledger.api.keys import HEADER, ApiPrincipal, bearer_secret
from openledger.node import Node


def get_node(request: Request) -> Node:
    return request.app.state.node


NodeDep = Annotated[Node, Depends(get_node)]


def get_principal(request: Request, node: NodeDep) -> ApiPrincipal:
    """The account of the request's ``Authorization: Bearer <key>``; AuthError (401) if none."""
    return node.api_keys.verify(bearer_secret(request.headers.get(HEADER)))


PrincipalDep = Annotated[ApiPrincipal, Depends(get_principal)]
