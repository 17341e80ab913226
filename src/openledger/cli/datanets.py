"""`openledger datanet …`, `contribute`, `review`, `approve`, `reject`, `stake withdraw`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from openledger.cli import context
from openledger.cli.format import fmt_open, out, parse_open, print_json
from openledger.datanets.formats import EXPORT_FORMATS

app = typer.Typer(help="Create, inspect, snapshot and export datanets.", no_args_is_help=True)
stake_app = typer.Typer(help="Contribution stakes.", no_args_is_help=True)

As = Annotated[str, typer.Option("--as", help="Account that signs (operator, alice, …).")]
Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _print_json(doc: Any) -> None:
    print_json(doc)


def _address(ref: str) -> str:
    return context.node().accounts.resolve(ref)


@app.command("create")
def create(
    name: str,
    validators: Annotated[str, typer.Option(help="Comma-separated addresses or account names.")],
    description: Annotated[str, typer.Option(help="What the datanet is for.")] = "",
    quorum: Annotated[int, typer.Option(help="Validators that must agree.")] = 1,
    min_stake: Annotated[str, typer.Option(help="Minimum stake per contribution, in OPEN.")] = "10",
    as_: As = "operator",
    as_json: Json = False,
) -> None:
    """Create a datanet on chain and in the store."""
    node = context.node()
    doc = node.datanets.create(
        name,
        description=description,
        validators=[_address(v.strip()) for v in validators.split(",") if v.strip()],
        quorum=quorum,
        min_stake=parse_open(min_stake, field="--min-stake"),
        signer=node.accounts.signer(as_),
    )
    if as_json:
        return _print_json(doc)
    out.print(f"datanet {doc['name']!r} created on chain as #{doc['id']} (tx {doc['tx_hash']})")


@app.command("list")
def list_(
    offset: int = 0,
    limit: Annotated[int, typer.Option(help="Page size.")] = 50,
    as_json: Json = False,
) -> None:
    """All datanets, one page at a time."""
    page = context.node().datanets.list(offset, limit)
    if as_json:
        return _print_json(page)
    table = Table(title=f"Datanets ({page['total']})")
    for col in ("id", "name", "owner", "validators", "quorum", "min stake", "description"):
        table.add_column(col)
    for d in page["items"]:
        cells = (d["id"], d["name"], context.label(d["owner"]), len(d["validators"]), d["quorum"])
        table.add_row(*map(str, cells), fmt_open(int(d["min_stake"])), d["description"][:60])
    out.print(table)


@app.command("show")
def show(datanet: str, as_json: Json = False) -> None:
    """A datanet: validators, contributions by status, records, snapshots, access prices."""
    node = context.node()
    doc = node.datanets.show(datanet)
    doc["access_prices"] = node.access.prices(datanet)
    if as_json:
        return _print_json(doc)
    out.print(f"[bold]{doc['name']}[/] (#{doc['id']}) — {doc['description']}")
    owner = context.label(doc["owner"])
    out.print(
        f"owner {owner}; quorum {doc['quorum']} of {len(doc['validators'])}; "
        f"min stake {fmt_open(int(doc['min_stake']))} OPEN"
    )
    for v in doc["validators"]:
        out.print(f"  validator {context.label(v)}")
    c = doc["contributions"]
    out.print(
        f"contributions: {c['pending']} pending, {c['approved']} approved, "
        f"{c['rejected']} rejected; {doc['approved_records']} approved records from "
        f"{doc['contributors']} contributor(s)"
    )
    for snap in doc["snapshots"]:
        out.print(f"  snapshot @{snap['version']}: {snap['records']} records, root {snap['root']}")
    p = doc["access_prices"]
    if int(p["export"]) or int(p["train"]):
        out.print(
            f"access: {p['export_open']} OPEN per export, {p['train_open']} OPEN per "
            "training job (contributors and the owner free)"
        )
    else:
        out.print("access: free (set a price with `openledger datanet price`)")


@app.command("snapshot")
def snapshot(datanet: str, as_: As = "operator", as_json: Json = False) -> None:
    """Freeze the approved contributions into a new versioned snapshot; commit its root."""
    node = context.node()
    doc = node.snapshots.snapshot(datanet, signer=node.accounts.signer(as_))
    if as_json:
        return _print_json(doc)
    out.print(
        f"snapshot {doc['datanet']}@{doc['version']}: {doc['record_count']} records from "
        f"{len(doc['contributions'])} contribution(s), root {doc['root']}"
    )


@app.command("price")
def price(
    datanet: str,
    export: Annotated[
        str | None, typer.Option("--export", help="OPEN per snapshot export (0: free).")
    ] = None,
    train: Annotated[
        str | None, typer.Option("--train", help="OPEN per training job on a snapshot.")
    ] = None,
    as_: As = "operator",
    as_json: Json = False,
) -> None:
    """Set the access prices of a datanet you own (on chain; at most max_access_price).
    Contributors and the owner always read it free; the fees go to its contributors and
    stakers through the epochs."""
    node = context.node()
    current = node.access.prices(datanet)
    if export is None and train is None:
        if as_json:
            return _print_json(current)
        return out.print(
            f"{current['datanet']}: {current['export_open']} OPEN per export, "
            f"{current['train_open']} OPEN per training job (bound "
            f"{fmt_open(int(current['max_access_price']))} OPEN)"
        )
    new_export = None if export is None else parse_open(export, field="--export")
    new_train = None if train is None else parse_open(train, field="--train")
    signer = node.accounts.signer(as_)
    plan = node.access.plan_set_prices(
        datanet, export=new_export, train=new_train, owner=signer.address
    )
    doc = plan.run(signer)
    if as_json:
        return _print_json(doc)
    out.print(
        f"{doc['datanet']}: {doc['export_open']} OPEN per export, {doc['train_open']} "
        f"OPEN per training job (tx {doc['tx_hash']})"
    )


def pay_first(ref: str, kind: str, account: str | None, pay: bool) -> int | None:
    """Show what ``account`` pays to ``kind`` the snapshot ``ref``, before anything is sent
    or read; pay it when ``pay`` (else refuse with the fix). The access id, or None when
    nothing was due."""
    from openledger.datanets.snapshots import parse_ref

    node = context.node()
    name, version = parse_ref(ref)
    address = _address(account) if account else None
    quote = node.access.quote(name, version, kind, address)
    where = f"{quote['datanet']}@{quote['version']}"
    what = "export" if kind == "export" else "training job"
    who = context.label(quote["account"])
    if not quote["due"]:
        if int(quote["price"]):
            why = {"paid": f"already paid (access #{quote['access']})"}.get(
                quote["reason"], f"free for its {quote['reason']}"
            )
            out.print(f"{where}: {quote['price_open']} OPEN per {what}; {who}: {why}")
        return None
    out.print(f"{where}: {quote['price_open']} OPEN per {what}, due from {who}")
    if not pay:
        node.access.admit(name, version, kind, address)  # the 402 with its fix
    signer = node.accounts.signer(account or "operator")
    doc = node.access.plan_pay(name, version, kind, signer.address).run(signer)
    out.print(
        f"paid {doc['amount_open']} OPEN (access #{doc['access']}, tx {doc['tx_hash']}); "
        "it reaches the snapshot's contributors and stakers at the next epoch"
    )
    return int(doc["access"])


@app.command("export")
def export(
    ref: Annotated[str, typer.Argument(help="DATANET or DATANET@VERSION (default: latest).")],
    format: Annotated[str, typer.Option(help=f"One of {', '.join(EXPORT_FORMATS)}.")] = "jsonl",
    out_path: Annotated[Path | None, typer.Option("--out", help="Output file.")] = None,
    as_: Annotated[
        str | None, typer.Option("--as", help="Account that exports (default: operator).")
    ] = None,
    pay: Annotated[
        bool, typer.Option("--pay", help="Pay the snapshot's export price if it is due.")
    ] = False,
) -> None:
    """Write a snapshot as a file that Hugging Face `datasets` loads. A priced snapshot
    shows its price first; it is exported after the account pays it (--pay), or free for
    its contributors and owner."""
    from openledger.datanets.formats import EXPORT_FORMATS as formats
    from openledger.errors import ValidationError

    if format not in formats:  # refused before any price is shown or paid
        raise ValidationError(
            f"Export format {format!r} is not supported.",
            field="format",
            value=format,
            fix=f"use one of: {', '.join(formats)}.",
        )
    target = out_path or Path(f"{ref.replace('@', '-v')}.{format}")
    pay_first(ref, "export", as_, pay)
    account = _address(as_) if as_ else None
    path = context.node().snapshots.export(ref, format, target, account=account)
    out.print(str(path))


def contribute(
    datanet: str,
    files: Annotated[list[Path], typer.Argument(help=".txt .md .jsonl .csv .parquet files")],
    stake: Annotated[str, typer.Option(help="Stake in OPEN.")],
    as_: As,
    column: Annotated[str | None, typer.Option(help="Text column of .csv/.parquet.")] = None,
    approve: Annotated[bool, typer.Option(help="Approve the stake for the registry.")] = True,
    as_json: Json = False,
) -> None:
    """Contribute files to a datanet with a stake (all records or none)."""
    node = context.node()
    result = node.contributions.contribute(
        datanet,
        files,
        stake=parse_open(stake, field="--stake"),
        signer=node.accounts.signer(as_),
        column=column,
        approve=approve,
    )
    if as_json:
        return _print_json(result.to_dict())
    out.print(
        f"contribution #{result.contribution_id} to {result.datanet!r}: "
        f"{result.record_count} records, stake {fmt_open(result.stake)} OPEN, "
        f"root {result.root} (tx {result.tx_hash})"
    )


def review(datanet: str, offset: int = 0, limit: int = 20, as_json: Json = False) -> None:
    """Pending contributions of a datanet with previews, for its validators."""
    page = context.node().reviews.pending(datanet, offset, limit)
    if as_json:
        for c in page["items"]:  # the names this node knows, beside the addresses
            c["contributor_name"] = context.names().get(c["contributor"].lower())
            for r in c["reviews"]:
                r["validator_name"] = context.names().get(r["validator"].lower())
        return _print_json(page)
    out.print(
        f"{page['total']} pending contribution(s); quorum {page['quorum']} of "
        f"{len(page['validators'])}"
    )
    for c in page["items"]:
        out.print(
            f"\n[bold]#{c['id']}[/] by {context.label(c['contributor'])}: "
            f"{c['record_count']} records, "
            f"stake {fmt_open(int(c['stake']))} OPEN at risk, "
            f"{c['approvals']} approve / {c['rejections']} reject"
        )
        for p in c["previews"]:
            out.print(f"   {p['location']}: {p['text']}", highlight=False)
        for r in c["reviews"]:
            verdict = "approved" if r["approve"] else "rejected"
            out.print(f"   {context.label(r['validator'])} {verdict}: {r['reason']}")


def _decide(contribution: int, as_: str, approve: bool, reason: str, as_json: bool) -> None:
    node = context.node()
    doc = node.reviews.review(
        contribution, signer=node.accounts.signer(as_), approve=approve, reason=reason
    )
    if as_json:
        return _print_json(doc)
    out.print(
        f"contribution #{doc['id']}: {doc['status']} ({doc['approvals']} approve, "
        f"{doc['rejections']} reject)"
        + (f"; {fmt_open(int(doc['slashed']))} OPEN slashed" if int(doc["slashed"]) else "")
    )


def approve(
    contribution: int, as_: As, reason: Annotated[str, typer.Option()] = "", as_json: Json = False
) -> None:
    """Approve a pending contribution (as one of the datanet's validators)."""
    _decide(contribution, as_, True, reason, as_json)


def reject(
    contribution: int,
    as_: As,
    reason: Annotated[str, typer.Option(help="Why (required).")] = "",
    as_json: Json = False,
) -> None:
    """Reject a pending contribution; at quorum its stake is slashed."""
    _decide(contribution, as_, False, reason, as_json)


@stake_app.command("withdraw")
def withdraw(contribution: int, as_: As, as_json: Json = False) -> None:
    """Withdraw an unlocked (approved) or unslashed (rejected) stake."""
    node = context.node()
    doc = node.reviews.withdraw(contribution, signer=node.accounts.signer(as_))
    if as_json:
        return _print_json(doc)
    out.print(f"withdrew {fmt_open(int(doc['amount']))} OPEN from contribution #{doc['id']}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="datanet")
    root.add_typer(stake_app, name="stake")
    root.command()(contribute)
    root.command()(review)
    root.command()(approve)
    root.command()(reject)
