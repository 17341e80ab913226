"""The web app (DESIGN §1's no-code face): static pages served by the node at ``/``, over
the same services and JSON API as the CLI, with Sign-In with Ethereum sessions.

``install_web(app, node)`` adds the sign-in routes (/web/auth), the web app's writes
(/web/api), the assets (/web/static) and the page (/).
"""

from __future__ import annotations

from fastapi import FastAPI

from openledger.node import Node


def install_web(app: FastAPI, node: Node) -> None:
    from openledger.web import auth, pages, wallet
    from openledger.web.routes import account, agents, datanets, factory, governance, market

    app.state.web_auth = auth.WebAuth(node.settings, node.accounts, node.db)
    app.include_router(auth.router)
    app.include_router(wallet.router)
    for module in (account, agents, datanets, factory, governance, market):
        app.include_router(module.router)
    pages.mount(app)
