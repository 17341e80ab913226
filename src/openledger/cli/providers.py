"""`openledger provider pull | register | models | list | show | exit | withdraw | deploy`
(docs/providers.md). Run on the provider's own home: its operator key is the provider."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from openledger.cli import context
from openledger.cli.format import fmt_open, out, parse_open, print_json

app = typer.Typer(
    help="Compute providers: stake, serve models with your own engine and key, "
    "earn a compute share of the fees you serve.",
    no_args_is_help=True,
)

As = Annotated[
    str,
    typer.Option(
        "--as", help="Account that signs (default: this home's operator key, the provider's key)."
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
Gateway = Annotated[
    str,
    typer.Option(
        "--gateway",
        help="URL of the gateway node the models are pulled from, e.g. http://host:8000.",
    ),
]
Models = Annotated[list[str], typer.Option("--model", help="A model to serve (repeat).")]


def _show(doc: dict[str, Any]) -> None:
    state = "active" if doc["active"] else ("exited" if doc["registered_at"] else "not registered")
    out.print(f"[bold]{doc['address']}[/] — {state}, stake {fmt_open(int(doc['stake']))} OPEN")
    out.print(f"endpoint {doc['endpoint'] or '-'}; models {doc['model_ids'] or '-'}")
    if doc.get("unlock_at"):
        out.print(f"stake unlocks at {doc['unlock_at']} (unix time): openledger provider withdraw")


@app.command("pull")
def pull(
    names: Annotated[list[str], typer.Argument(help="Model names.")],
    gateway: Gateway,
    as_json: Json = False,
) -> None:
    """Download models from a gateway, each checked against ModelRegistry on chain."""
    cards = context.node().providers.pull(gateway, names)
    if as_json:
        return print_json(cards)
    for c in cards:
        out.print(f"pulled {c['name']} (#{c['id']}, adapter {c['adapter_sha256'][:16]}…)")


@app.command("register")
def register(
    endpoint: Annotated[str, typer.Option("--endpoint", help="URL gateways reach you at.")],
    models: Models,
    stake: Annotated[str, typer.Option("--stake", help="OPEN to stake (e.g. 100).")],
    gateway: Annotated[
        str | None, typer.Option("--gateway", help="Pull the models from this gateway first.")
    ] = None,
    as_: As = "operator",
    as_json: Json = False,
) -> None:
    """Register as a provider of the pulled models (each is loaded and tried first)."""
    node = context.node()
    if gateway:
        node.providers.pull(gateway, models)
    doc = node.providers.register(
        node.accounts.signer(as_), endpoint, models, parse_open(stake, field="--stake")
    )
    if as_json:
        return print_json(doc)
    _show(doc)
    out.print("serve them: openledger serve --provider --gateway GATEWAY_ADDRESS")


@app.command("models")
def set_models(models: Models, as_: As = "operator", as_json: Json = False) -> None:
    """Change the models you serve (pulled names; each is loaded and tried first)."""
    node = context.node()
    doc = node.providers.set_models(node.accounts.signer(as_), models)
    if as_json:
        return print_json(doc)
    _show(doc)


@app.command("list")
def list_(as_json: Json = False) -> None:
    """The registered providers (active and exited)."""
    docs = context.node().providers.list()
    if as_json:
        return print_json(docs)
    table = Table("provider", "state", "stake (OPEN)", "models", "endpoint")
    for d in docs:
        table.add_row(
            d["address"],
            "active" if d["active"] else "exited",
            fmt_open(int(d["stake"])),
            ",".join(map(str, d["model_ids"])),
            d["endpoint"],
        )
    out.print(table)


@app.command("show")
def show(
    address: Annotated[str | None, typer.Argument(help="Provider (default: you).")] = None,
    as_json: Json = False,
) -> None:
    """One provider as the registry holds it."""
    node = context.node()
    doc = node.providers.show(address or node.accounts.operator_address())
    if as_json:
        return print_json(doc)
    _show(doc)


@app.command("exit")
def exit_(as_: As = "operator", as_json: Json = False) -> None:
    """Stop being routed to; the stake unlocks after the registry's exit delay."""
    node = context.node()
    doc = node.providers.exit(node.accounts.signer(as_))
    if as_json:
        return print_json(doc)
    _show(doc)


@app.command("withdraw")
def withdraw(as_: As = "operator", as_json: Json = False) -> None:
    """Take the stake back once it has unlocked."""
    node = context.node()
    doc = node.providers.withdraw(node.accounts.signer(as_))
    if as_json:
        return print_json(doc)
    out.print(f"withdrew {fmt_open(int(doc['withdrawn']))} OPEN to {doc['address']}")


@app.command("deploy")
def deploy(as_: As = "operator", as_json: Json = False) -> None:
    """Deploy ProviderRegistry on a deployment made before providers existed (once)."""
    from openledger.chain.deploy import deploy_provider_registry

    node = context.node()
    address = deploy_provider_registry(
        node.client, node.accounts.signer(as_), node.settings.addresses_path
    )
    node.__dict__.pop("contracts", None)
    if as_json:
        return print_json({"address": address, "deployed": address is not None})
    out.print(
        f"ProviderRegistry deployed at {address}"
        if address
        else "ProviderRegistry is already deployed"
    )


def register_commands(root: typer.Typer) -> None:
    root.add_typer(app, name="provider")
