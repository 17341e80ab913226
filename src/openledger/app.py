"""The HTTP app: the JSON API (``api/``) and the web app (``web/``) mounted over one node,
with the request guard, error handlers and observability in front of both. It sits above
both faces, which never import each other (README.md, "Layers")."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI

from openledger import __version__
from openledger.api.observability import install_observability
from openledger.api.ratelimit import Limits
from openledger.api.routes import (
    agents,
    attribution,
    datanets,
    factory,
    governance,
    grants,
    health,
    ledger,
    openai,
    proofs,
    providers,
    wallet,
)
from openledger.http.credentials import only_own_account
from openledger.http.errors import document_errors, install_error_handlers
from openledger.http.guard import RequestGuard, restore_recursion_limit
from openledger.node import Node
from openledger.web import install_web


def create_app(node: Node) -> FastAPI:
    """Build the API over ``node``'s services (OpenAPI docs at /docs and /openapi.json)."""
    restore_recursion_limit()
    app = FastAPI(
        title="OpenLedger node",
        version=__version__,
        description="Datanets, model factory, OpenLoRA serving and proof of attribution, "
        "settled in OPEN on an EVM chain. Reads are public; writes need an API key with the "
        "`write` scope, the operator token or a web session, and act for that account only "
        "(docs/security.md).",
        dependencies=[Depends(only_own_account)],
    )
    app.state.node = node
    s = node.settings
    app.state.limits = Limits.of(s)
    app.add_middleware(RequestGuard, settings=s)
    install_observability(app, node)  # request ids, request logs, metrics; GET /metrics
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(datanets.router)
    app.include_router(factory.router)
    app.include_router(attribution.router)
    app.include_router(openai.router)
    app.include_router(proofs.router)
    app.include_router(ledger.router)
    app.include_router(wallet.router)
    app.include_router(governance.router)
    app.include_router(grants.router)
    app.include_router(agents.router)
    app.include_router(providers.router)
    install_web(app, node)  # the web app: /, /web/auth, /web/api, /web/static

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_errors(FastAPI.openapi(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
