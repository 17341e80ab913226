"""Credentials as FastAPI dependencies, declared in the OpenAPI schema.

``Authorization: Bearer olk_…`` is an API key, ``Bearer olo_…`` the operator token (see
``principal``). ``Reader``, ``Writer`` and ``Inferrer`` give the request's principal once it
holds the ``read``, ``write`` or ``inference`` scope (401 without a credential, 403 without
the scope); ``MaybePrincipal`` is None for a request that sends none.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from openledger.auth.keys import HEADER, bearer_secret
from openledger.auth.operator_token import TOKEN_PREFIX
from openledger.auth.principal import SCOPES, Principal
from openledger.http.deps import NodeDep

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="An API key (`olk_…`, bound to one account, with scopes) or the node's "
    "operator token (`olo_…`, from <home>/operator.token).",
)
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]


def principal_of(request: Request, node: NodeDep) -> Principal:
    """The principal of the request's bearer credential; AuthError (401) when there is none
    or it is wrong."""
    secret = bearer_secret(request.headers.get(HEADER))
    if secret.startswith(TOKEN_PREFIX):
        node.operator_token.verify(secret)
        return Principal(
            kind="operator",
            address=node.accounts.operator_address(),
            account="operator",
            scopes=frozenset(SCOPES),
        )
    return node.api_keys.verify(secret)


def _any(request: Request, node: NodeDep, _: BearerDep) -> Principal:
    return principal_of(request, node)


def _reader(p: Annotated[Principal, Depends(_any)]) -> Principal:
    p.require("read")
    return p


def _writer(p: Annotated[Principal, Depends(_any)]) -> Principal:
    p.require("write")
    return p


def _inferrer(p: Annotated[Principal, Depends(_any)]) -> Principal:
    p.require("inference")
    return p


def _maybe(request: Request, node: NodeDep, _: BearerDep) -> Principal | None:
    if not request.headers.get(HEADER):
        return None
    p = principal_of(request, node)
    p.require("read")
    return p


AnyPrincipal = Annotated[Principal, Depends(_any)]
Reader = Annotated[Principal, Depends(_reader)]
Writer = Annotated[Principal, Depends(_writer)]
Inferrer = Annotated[Principal, Depends(_inferrer)]
MaybePrincipal = Annotated[Principal | None, Depends(_maybe)]


def only_own_account(request: Request) -> None:
    """On every route: ``?as=ACCOUNT`` with a bearer credential of another account is a 403
    (only the operator token names other accounts). Writes with a body name the account in
    the body's ``"as"``, checked by ``http.acting.actor`` the same way."""
    wanted = request.query_params.get("as")
    if not wanted or not request.headers.get(HEADER):
        return
    node = request.app.state.node
    principal = principal_of(request, node)
    if principal.kind == "operator":
        return
    if not node.accounts.refers_to(wanted, principal.address):  # an unknown name is not it
        raise principal.forbid(wanted[:64])
