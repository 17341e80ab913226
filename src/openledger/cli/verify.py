"""`openledger verify receipt ID`: recompute a receipt's attribution from public artefacts,
from this node's home or from any node's API (``--node URL``)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from openledger.cli import context
from openledger.cli.format import out, print_json
from openledger.errors import OpenLedgerError

app = typer.Typer(help="Check what a node claims, from public artefacts.", no_args_is_help=True)


class VerifyFailedError(OpenLedgerError):
    http_status = 409


@app.command("receipt")
def receipt(
    ref: Annotated[str, typer.Argument(help="Receipt id (rc_…), sequence number or hash.")],
    node_url: Annotated[
        str | None,
        typer.Option("--node", help="Fetch from this node's API instead of the local home."),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="OPENLEDGER_TOKEN",
            help="With --node: the payer's API key or the operator token (the "
            "attributed tokens are private).",
        ),
    ] = None,
    rpc: Annotated[
        str | None,
        typer.Option(
            "--rpc",
            help="With --node: the chain RPC to read ModelRegistry from "
            "(default: this home's chain).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Rebuild the model's attribution index from its public artefacts and recompute the
    receipt's weights; says match or names every contribution that differs (exit 1)."""
    from openledger.ledger.verification.verify import verify_receipt

    settings = context.settings()
    if node_url is None:
        from openledger.ledger.verification.proofs import LocalSource

        source: Any = LocalSource(context.node())
    else:
        from openledger.ledger.verification.remote_source import RemoteSource

        source = RemoteSource(node_url, token=token, rpc_url=rpc or settings.rpc_url)
    v = verify_receipt(source, ref)
    doc = v.to_dict()
    if as_json:
        print_json(doc)
    else:
        table = Table(title=f"receipt {v.receipt} — model {v.model} ({v.method})")
        for col in ("", "check", "detail"):
            table.add_column(col)
        for c in v.checks:
            table.add_row("[green]✓[/]" if c.ok else "[red]✗[/]", c.name, c.detail)
        out.print(table)
        if v.weights:
            out.print(
                f"{len(v.weights)} contribution weights compared in {v.seconds:.2f} s: "
                + ("all equal" if not v.mismatches else f"{len(v.mismatches)} differ")
            )
    if not v.ok:
        first = next(c for c in v.checks if not c.ok)
        raise VerifyFailedError(
            f"receipt {v.receipt} does not verify: {first.name}: {first.detail}.",
            field=first.name,
            value=v.receipt,
            fix="the operator's claim and the public artefacts disagree: report it with this "
            "output (`openledger verify receipt ID --json`).",
        )
    if not as_json:
        out.print("[green]match[/]: the receipt's attribution is what the public artefacts give")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="verify")
