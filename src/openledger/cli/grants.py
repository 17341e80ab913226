"""OpenCircle grants from the command line: apply, list, show, approve, release, cancel."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from openledger.cli import context
from openledger.cli.format import fmt_open, out, parse_open, print_json

Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
As = Annotated[str, typer.Option("--as", help="Account that signs (operator, alice…).")]
Id = Annotated[int, typer.Argument(help="Grant id.")]

app = typer.Typer(
    help="OpenCircle grants, paid by milestone from the treasury.", no_args_is_help=True
)


def _json(doc: Any) -> None:
    print_json(doc)


def _print(doc: dict[str, Any]) -> None:
    if "proposal" in doc:
        p = doc["proposal"]
        out.print(
            f"proposal {p['id']} created: {p['description']} (vote with "
            f"`openledger gov vote {p['id']} for --as ACCOUNT`)"
        )
        return
    ms = ", ".join(fmt_open(int(m)) for m in doc["milestones"])
    out.print(
        f"grant {doc['id']} ({doc['status']}) {doc['tier']}: {fmt_open(int(doc['amount']))} "
        f"OPEN to {doc['applicant']}, released {fmt_open(int(doc['released']))} "
        f"(milestones {ms}; next #{doc['next_milestone'] + 1}) {doc['metadata_uri']}"
    )
    if doc.get("tx_hash"):
        out.print(f"  tx {doc['tx_hash']}")


@app.command()
def apply(
    as_: As,
    tier: Annotated[str, typer.Option("--tier", help="exploration, building or expansion.")],
    amount: Annotated[str, typer.Option("--amount", help="OPEN asked for.")],
    milestones: Annotated[
        str, typer.Option("--milestones", help="OPEN per milestone, comma-separated.")
    ],
    uri: Annotated[str, typer.Option("--uri", help="Metadata URI of the plan.")] = "",
    as_json: Json = False,
) -> None:
    """Apply for a grant; the tier's bounds and the milestones' sum are checked first."""
    node = context.node()
    parts = [parse_open(m, field="--milestones") for m in milestones.split(",") if m.strip()]
    doc = node.grants.apply(
        node.accounts.signer(as_), tier, parse_open(amount, field="--amount"), parts, uri
    )
    _json(doc) if as_json else _print(doc)


@app.command("list")
def list_(as_json: Json = False) -> None:
    """Every grant, newest first, and the tiers' bounds."""
    grants = context.node().grants
    docs = grants.grants()
    if as_json:
        return _json({"tiers": grants.tiers(), "grants": docs})
    tiers = ", ".join(
        f"{t['name']} {fmt_open(int(t['min']))}–{fmt_open(int(t['max']))}" for t in grants.tiers()
    )
    out.print(f"tiers (OPEN): {tiers}")
    t = Table(title="grants")
    for col in ("id", "status", "tier", "applicant", "amount", "released"):
        t.add_column(col)
    for d in docs:
        t.add_row(
            str(d["id"]),
            d["status"],
            d["tier"],
            d["applicant"],
            fmt_open(int(d["amount"])),
            fmt_open(int(d["released"])),
        )
    out.print(t)


@app.command()
def show(grant: Id, as_json: Json = False) -> None:
    """One grant."""
    doc = context.node().grants.grant(grant)
    _json(doc) if as_json else _print(doc)


@app.command()
def approve(grant: Id, as_: As, as_json: Json = False) -> None:
    """Propose approving a pending grant (its amount is escrowed from the treasury when the
    proposal is executed)."""
    node = context.node()
    doc = {"proposal": node.grants.propose_approval(node.accounts.signer(as_), grant)}
    _json(doc) if as_json else _print(doc)


@app.command()
def release(grant: Id, as_: As, as_json: Json = False) -> None:
    """Release the next milestone: directly as the committee, else as a proposal."""
    node = context.node()
    doc = node.grants.release(node.accounts.signer(as_), grant)
    _json(doc) if as_json else _print(doc)


@app.command()
def cancel(grant: Id, as_: As, as_json: Json = False) -> None:
    """Cancel a grant (unreleased funds go back to the treasury)."""
    node = context.node()
    doc = node.grants.cancel_grant(node.accounts.signer(as_), grant)
    _json(doc) if as_json else _print(doc)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="grants")
