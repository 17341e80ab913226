"""The FastAPI application every stage adds its routes to."""

from __future__ import annotations

from fastapi import FastAPI

from openledger import __version__
from openledger.api.errors import install_error_handlers
from openledger.api.routes import (
    attribution,
    datanets,
    factory,
    governance,
    grants,
    health,
    ledger,
    openai,
)
from openledger.node import Node
from openledger.web import install_web


def create_app(node: Node) -> FastAPI:
    """Build the API over ``node``'s services (OpenAPI docs at /docs and /openapi.json)."""
    app = FastAPI(
        title="OpenLedger node",
        version=__version__,
        description="Datanets, model factory, OpenLoRA serving and proof of attribution, "
        "settled in OPEN on an EVM chain.",
    )
    app.state.node = node
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(datanets.router)
    app.include_router(factory.router)
    app.include_router(attribution.router)
    app.include_router(openai.router)
    app.include_router(ledger.router)
    app.include_router(governance.router)
    app.include_router(grants.router)
    install_web(app, node)  # the web app: /, /web/auth, /web/api, /web/static
    return app
