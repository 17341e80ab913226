"""`openledger keys …`: API keys that let programs call the serving API as an account."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from openledger.cli import context
from openledger.cli.format import out, print_json

app = typer.Typer(help="API keys bound to the node's accounts.", no_args_is_help=True)

Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


@app.callback()
def keys() -> None:
    """API keys bound to the node's accounts (sent as `Authorization: Bearer olk_…`)."""


def _print_json(doc: Any) -> None:
    print_json(doc)


@app.command("create")
def create(
    as_: Annotated[str, typer.Option("--as", help="Account the key acts as (operator, alice…).")],
    label: Annotated[str, typer.Option(help="A note to tell keys apart.")] = "",
    scopes: Annotated[
        str, typer.Option(help="What the key may do: inference, read, write (comma-separated).")
    ] = "inference,read",
    as_json: Json = False,
) -> None:
    """Create a key for an account and print it, once."""
    doc = context.node().api_keys.create(as_, label, scopes)
    if as_json:
        return _print_json(doc)
    out.print(
        f"API key {doc['key_id']} for {doc['account']} ({doc['address']}), scopes "
        f"{','.join(doc['scopes'])}:"
    )
    out.print(doc["key"], highlight=False, markup=False)
    out.print("[bold yellow]Store it now: it is not shown again[/] (only its hash is kept).")


@app.command("list")
def list_(
    as_: Annotated[str | None, typer.Option("--as", help="Only this account's keys.")] = None,
    as_json: Json = False,
) -> None:
    """Keys with their account, label and last use (never the secrets)."""
    items = context.node().api_keys.list(as_)
    if as_json:
        return _print_json(items)
    table = Table(title=f"API keys ({len(items)})")
    for col in ("key id", "account", "address", "label", "created", "last used", "revoked"):
        table.add_column(col)
    for k in items:
        cells = (k["key_id"], k["account"], k["address"], k["label"])
        times = (k["created"], k["last_used"], k["revoked"])
        table.add_row(*map(escape, cells), *((t or "-")[:19] for t in times))
    out.print(table)


@app.command("revoke")
def revoke(key_id: str, as_json: Json = False) -> None:
    """Revoke a key at once (revoking it again changes nothing)."""
    doc = context.node().api_keys.revoke(key_id)
    if as_json:
        return _print_json(doc)
    out.print(f"API key {doc['key_id']} of {doc['account']} revoked at {doc['revoked']}")
