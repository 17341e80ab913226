"""Node-level commands: init, serve, accounts."""

from __future__ import annotations

from typing import Annotated

import typer

from openledger.chain.accounts import prompt_password
from openledger.cli import context
from openledger.cli.chain import accounts_table
from openledger.cli.format import out
from openledger.home import init_home


def init() -> None:
    """Create the node home: config, an encrypted operator keystore, named dev accounts."""
    settings = context.settings()
    password = "" if settings.layout.operator_keystore.exists() else prompt_password(confirm=True)
    result = init_home(settings, password)
    state = "created" if result.created else "already existed (keys kept)"
    out.print(f"node home {result.home} {state}")
    out.print(f"operator {result.operator}  (keystore {settings.layout.operator_keystore})")
    out.print(f"devnet accounts (use --as NAME): {', '.join(result.dev_accounts)}")


def accounts() -> None:
    """The node's named accounts with their OPEN and ETH balances."""
    out.print(accounts_table(context.node()))


def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
) -> None:
    """Run the node: the JSON API, the job worker and, on the devnet, the chain."""
    import uvicorn

    from openledger.api.app import create_app
    from openledger.factory.worker import JobWorker

    node = context.node()
    if node.settings.is_devnet:
        node.chain_up()
    app = create_app(node)
    worker = JobWorker(node.jobs)
    worker.start()
    try:
        uvicorn.run(app, host=host or node.settings.api_host, port=port or node.settings.api_port)
    finally:
        worker.stop()


def register(app: typer.Typer) -> None:
    app.command()(init)
    app.command()(accounts)
    app.command()(serve)
