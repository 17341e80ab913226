"""Payable inference from the command line: credit, epochs, rewards, claims, audit, receipts."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from openledger.cli import context
from openledger.cli.format import fmt_open, out, parse_open, print_json
from openledger.errors import NotFoundError, OpenLedgerError

Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
As = Annotated[str, typer.Option("--as", help="Account that signs (operator, alice…).")]

epoch_app = typer.Typer(help="Settlement epochs: close, list, show.", no_args_is_help=True)
receipts_app = typer.Typer(help="Signed inference receipts.", no_args_is_help=True)


class AuditFailedError(OpenLedgerError):
    http_status = 409


def _print_json(doc: Any) -> None:
    print_json(doc)


def resolve(account: str) -> str:
    return context.node().accounts.resolve(account)


def _credit_line(c: dict[str, Any]) -> str:
    line = (
        f"credit of {context.label(c['account'])}: {fmt_open(int(c['available']))} OPEN available "
        f"(deposited {fmt_open(int(c['deposited']))}, charged {fmt_open(int(c['charged']))}, "
        f"withdrawn {fmt_open(int(c['withdrawn']))}"
    )
    if int(c["pending_withdrawal"]):
        line += f", {fmt_open(int(c['pending_withdrawal']))} reserved for a withdrawal"
    return line + ")"


def deposit(amount: str, as_: As, as_json: Json = False) -> None:
    """Deposit OPEN into the InferenceEscrow as inference credit (usable once synced)."""
    node = context.node()
    doc = node.escrow.deposit(node.accounts.signer(as_), parse_open(amount))
    if as_json:
        return _print_json(doc)
    out.print(f"deposited {amount} OPEN (tx {doc['tx_hash']})")
    out.print(_credit_line(doc))


def withdraw(
    as_: As,
    amount: Annotated[
        str | None, typer.Argument(help="Amount to request; omit to complete the request.")
    ] = None,
    as_json: Json = False,
) -> None:
    """Request a withdrawal of unspent credit (AMOUNT), or complete it after the delay."""
    node = context.node()
    signer = node.accounts.signer(as_)
    if amount is not None:
        doc = node.escrow.request_withdrawal(signer, parse_open(amount))
        if as_json:
            return _print_json(doc)
        out.print(
            f"withdrawal of {amount} OPEN requested (tx {doc['tx_hash']}); ready at "
            f"timestamp {doc['ready_at']}: run `openledger withdraw --as {as_}` then"
        )
    else:
        doc = node.escrow.withdraw(signer)
        if as_json:
            return _print_json(doc)
        out.print(f"withdrew {fmt_open(int(doc['paid']))} OPEN (tx {doc['tx_hash']})")
    out.print(_credit_line(doc))


def credit(
    account: Annotated[str, typer.Argument(help="Name or address.")], as_json: Json = False
) -> None:
    """An account's inference credit as the node sees it."""
    node = context.node()
    node.sync_chain()
    doc = node.ledger.credit(resolve(account))
    if as_json:
        return _print_json(doc)
    out.print(_credit_line(doc))


@epoch_app.command("close")
def epoch_close(as_json: Json = False) -> None:
    """Settle the receipts since the last epoch: collect fees, post the Merkle root."""
    doc = context.node().epochs.close()
    if as_json:
        return _print_json(doc)
    if doc.get("epoch") is None:
        out.print("no receipts since the last epoch: nothing to settle")
        return
    out.print(
        f"epoch {doc['epoch']} {doc['status']}: {doc['receipts']} receipts, fees "
        f"{fmt_open(int(doc['fees']))} OPEN, {doc['accounts']} accounts, root "
        f"{doc['root']}, receipts head {doc['receipts_head']}"
    )


@epoch_app.command("list")
def epoch_list(as_json: Json = False) -> None:
    """Every epoch this node sealed."""
    items = context.node().epochs.list()
    if as_json:
        return _print_json(items)
    table = Table(title=f"epochs ({len(items)})")
    for col in ("epoch", "status", "receipts", "fees (OPEN)", "cumulative (OPEN)", "root"):
        table.add_column(col)
    for e in items:
        table.add_row(
            str(e["epoch"]),
            e["status"],
            str(e["receipts"]),
            fmt_open(int(e["fees"])),
            fmt_open(int(e["total"])),
            e["root"][:18] + "…",
        )
    out.print(table)


@epoch_app.command("show")
def epoch_show(number: int, as_json: Json = True) -> None:
    """One epoch as JSON."""
    _print_json(context.node().epochs.get(number))


def _names() -> dict[str, str]:
    node = context.node()
    names = {}
    for n in node.accounts.names():
        try:
            names[node.accounts.address(n)] = n
        except OpenLedgerError:
            continue
    return names


def rewards(
    account: Annotated[str, typer.Argument(help="Name or address.")], as_json: Json = False
) -> None:
    """What an account earned, by model, datanet and contribution; what it can claim."""
    node = context.node()
    address = resolve(account)
    doc = {**node.rewards.earnings(address), "claim": node.rewards.claimable(address)}
    if as_json:
        return _print_json(doc)
    out.print(
        f"{account} ({address}) earned {fmt_open(int(doc['earned']))} OPEN: "
        f"{fmt_open(int(doc['settled']))} settled, {fmt_open(int(doc['unsettled']))} in "
        "the open epoch"
    )
    for group, label in (
        ("by_model", "model"),
        ("by_datanet", "datanet"),
        ("by_contribution", "contribution"),
        ("by_role", "role"),
        ("by_source", "source"),
    ):
        if doc[group]:
            parts = ", ".join(f"{label} {k}: {fmt_open(int(v))}" for k, v in doc[group].items())
            out.print(f"  {parts}")
    c = doc["claim"]
    out.print(
        f"claimed {fmt_open(int(c['claimed']))} OPEN; claimable now "
        f"{fmt_open(int(c['claimable']))} OPEN (epoch {c['epoch']})"
    )
    if c.get("pending"):
        p = c["pending"]
        out.print(f"epoch {p['epoch']}'s root becomes claimable at timestamp {p['ready_at']}")


def claim(as_: As, as_json: Json = False) -> None:
    """Claim the account's unclaimed earnings from the RewardDistributor."""
    node = context.node()
    address = node.accounts.address(as_)
    doc = node.rewards.claim(address, node.accounts.signer(as_))
    if as_json:
        return _print_json(doc)
    if doc["tx_hash"] is None:
        out.print(
            f"nothing to claim for {as_}: {fmt_open(int(doc['claimed']))} OPEN claimed "
            f"of {fmt_open(int(doc['cumulative']))} OPEN earned in settled epochs"
        )
        return
    out.print(
        f"{as_} claimed {fmt_open(int(doc['paid']))} OPEN (epoch {doc['epoch']}, tx "
        f"{doc['tx_hash']}); {fmt_open(int(doc['claimed']))} OPEN claimed in all"
    )


def audit(
    epoch: Annotated[int, typer.Option("--epoch", help="The epoch to recompute.")],
    attribution: Annotated[
        bool,
        typer.Option(
            "--attribution",
            help="Also recompute the receipts' attribution weights "
            "from the public artefacts (docs/attribution-verify.md).",
        ),
    ] = False,
    sample: Annotated[
        int | None,
        typer.Option(
            "--sample",
            min=1,
            help="With --attribution: recompute K receipts (a "
            "sample anyone can redraw; default all, up to 100).",
        ),
    ] = None,
    as_json: Json = False,
) -> None:
    """Recompute an epoch from its receipts (hashes, signatures, chain, split, Merkle root)
    and compare it with the root on chain; with --attribution, recompute the receipts'
    attribution too. Exits non-zero when anything differs."""
    node = context.node()
    report = node.auditor.audit(epoch)
    if not report.sealed:
        last = report.last_sealed
        raise NotFoundError(
            f"Epoch {epoch} was never sealed on this node, so there is nothing to audit"
            + (f" (the last sealed epoch is {last})." if last else " (none is sealed yet)."),
            field="--epoch",
            value=epoch,
            fix="audit a sealed epoch (`openledger epoch list`); `openledger epoch close` "
            "seals the receipts since the last one.",
        )
    doc = report.to_dict()
    weights = None
    if attribution:
        from openledger.ledger.verification.proofs import audit_attribution

        weights = audit_attribution(node, epoch, sample=sample)
        doc["attribution"] = {k: v for k, v in weights.items() if k != "results"}
    if as_json:
        _print_json(doc)
    else:
        out.print(
            f"epoch {epoch}: {report.receipts} receipts checked; root {report.root}; "
            f"on chain {report.chain_root}"
        )
        for p in report.problems:
            out.print(f"  [red]✗[/] {p}", highlight=False)
        if weights is not None:
            out.print(
                f"attribution: {weights['checked']} of {weights['receipts']} receipts "
                "recomputed from the public artefacts"
            )
            for f in weights["failed"]:
                for c in f["checks"]:
                    out.print(
                        f"  [red]✗[/] {f['receipt']}: {c['name']}: {c['detail']}", highlight=False
                    )
    if not report.ok:
        raise AuditFailedError(
            f"the audit of epoch {epoch} failed: {len(report.problems)} problem(s); the first: "
            f"{report.problems[0]}.",
            field="epoch",
            value=epoch,
            fix="the receipts named above were altered, removed or reordered after signing; "
            "restore them from a backup, then audit again.",
        )
    if weights is not None and not weights["ok"]:
        f = weights["failed"][0]
        raise AuditFailedError(
            f"the attribution of {len(weights['failed'])} receipt(s) of epoch {epoch} does not "
            f"recompute; the first: {f['receipt']}: {f['checks'][0]['name']}: "
            f"{f['checks'][0]['detail']}.",
            field="attribution",
            value=epoch,
            fix="the weights the operator signed are not what the public artefacts give: "
            "report it with `openledger verify receipt ID --json`.",
        )
    if not as_json:
        out.print(
            "[green]✓[/] every receipt, signature and the root match"
            + (" and every attribution recomputes" if weights is not None else "")
        )


@receipts_app.command("show")
def receipt_show(
    ref: Annotated[str, typer.Argument(help="Receipt id or hash.")], as_json: Json = True
) -> None:
    """One receipt: body, hash, operator signature, epoch."""
    _print_json(context.node().ledger.receipt(ref))


@receipts_app.command("list")
def receipt_list(
    payer: Annotated[str | None, typer.Option(help="Only this payer (name or address).")] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20,
    as_json: Json = False,
) -> None:
    """The newest receipts."""
    doc = context.node().ledger.receipts(payer=resolve(payer) if payer else None, limit=limit)
    if as_json:
        return _print_json(doc)
    names = _names()
    table = Table(title=f"receipts ({doc['total']})")
    for col in ("id", "payer", "model", "fee (OPEN)", "epoch", "hash"):
        table.add_column(col)
    for r in doc["items"]:
        table.add_row(
            str(r["id"]),
            names.get(r["payer"], r["payer"]),
            str(r["model_id"]),
            fmt_open(int(r["fee"])),
            str(r["epoch"] or "open"),
            r["hash"][:18] + "…",
        )
    out.print(table)


def register(app: typer.Typer) -> None:
    app.command()(deposit)
    app.command()(withdraw)
    app.command()(credit)
    app.command()(rewards)
    app.command()(claim)
    app.command()(audit)
    app.add_typer(epoch_app, name="epoch")
    app.add_typer(receipts_app, name="receipts")
