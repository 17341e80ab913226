"""`openledger attribution build|show|register` and `openledger attribute`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from openledger.cli import context
from openledger.cli.format import out, print_json
from openledger.errors import OpenLedgerError, ValidationError

app = typer.Typer(help="Proof of Attribution indexes: build, show, register.", no_args_is_help=True)
Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _print_json(doc: Any) -> None:
    print_json(doc)


@app.command("build")
def build(
    model: Annotated[
        str | None, typer.Argument(help="Published model name or id (or use --datanet).")
    ] = None,
    method: Annotated[
        str | None,
        typer.Option(help="provenance | gradient | spans | rag (default: the model's policy)."),
    ] = None,
    datanet: Annotated[
        str | None, typer.Option(help="Index a datanet snapshot (DATANET[@V]) instead.")
    ] = None,
    base: Annotated[
        str | None, typer.Option(help="With --datanet --method spans: whose tokenizer.")
    ] = None,
    proj_dim: Annotated[int, typer.Option(help="gradient: projection dimension k.")] = 1024,
    checkpoints: Annotated[
        int, typer.Option(help="gradient: the adapter plus M-1 latest checkpoints.")
    ] = 1,
    workers: Annotated[int, typer.Option(help="gradient: parallel build processes.")] = 1,
    damping: Annotated[
        float | None, typer.Option(help="gradient: λ = damping · mean eigenvalue (0.3).")
    ] = None,
    seed: Annotated[int, typer.Option(help="gradient: projection seed (stored).")] = 0,
    merge: Annotated[bool, typer.Option(help="spans: compact the segments into one.")] = False,
    force: Annotated[bool, typer.Option(help="Discard an existing index and rebuild.")] = False,
    register: Annotated[
        bool, typer.Option(help="Post the model's index hash to ModelRegistry (signed by --as).")
    ] = False,
    as_: Annotated[str, typer.Option("--as", help="Model owner (with --register).")] = "operator",
    as_json: Json = False,
) -> None:
    """Build (or resume, or extend) an attribution index; shows progress."""
    node = context.node()
    if datanet is not None:
        summary = node.attribution.build_datanet(
            datanet, method=method or "spans", base=base, merge=merge, force=force
        )
    elif model is None:
        raise ValidationError(
            "Name a model, or a datanet with --datanet.",
            field="model",
            value=None,
            fix="e.g. `openledger attribution build my-model`.",
        )
    else:
        summary = node.attribution.build(
            model,
            method=method,
            proj_dim=proj_dim,
            checkpoints=checkpoints,
            workers=workers,
            damping=damping,
            seed=seed,
            progress=not as_json,
            force=force,
            merge=merge,
        )
    summary["registered"] = False
    if register and model is not None:
        node.attribution.register(model, node.accounts.signer(as_))
        summary["registered"] = True
    if as_json:
        return _print_json(summary)
    for one in summary.get("indexes", [summary]):
        _say_built(one, summary["registered"])


def _say_built(summary: dict[str, Any], registered: bool) -> None:
    what = summary.get("model") or summary.get("datanet")
    size = {
        "provenance": lambda d: f"{d['examples']} training examples",
        "gradient": lambda d: (
            f"{d['examples']} examples × k={d['proj_dim']}, {d['checkpoints']} checkpoint(s)"
        ),
        "spans": lambda d: (
            f"{d['documents']} documents, {d['tokens']:,} tokens in "
            f"{d['segments']} segment(s) (+{d['added_documents']})"
        ),
        "rag": lambda d: f"{d['chunks']} chunks",
    }[summary["method"]](summary)
    out.print(
        f"{summary['method']} index for {what!r}: {size}, hash "
        f"{summary['index_hash'][:18]}… in {summary['path']}"
        + (" (registered on chain)" if registered else "")
    )


@app.command("register")
def register_cmd(
    model: Annotated[str, typer.Argument(help="Published model name or id.")],
    as_: Annotated[str, typer.Option("--as", help="Model owner.")] = "operator",
) -> None:
    """Post the model's index hash to ModelRegistry."""
    node = context.node()
    doc = node.attribution.register(model, node.accounts.signer(as_))
    out.print(f"model {doc['name']!r}: index hash {doc['index_hash']} set on chain")


def attribute(
    model: Annotated[str, typer.Argument(help="Published model name or id.")],
    prompt: Annotated[str, typer.Option(help="The prompt the model was given.")],
    completion: Annotated[str, typer.Option(help="The text it generated.")],
    top: Annotated[int, typer.Option(help="How many top examples to show.")] = 10,
    plot: Annotated[
        Path | None, typer.Option(help="Also draw the shares as a bar chart (PNG).")
    ] = None,
    as_json: Json = False,
) -> None:
    """Which contributions made this completion likely (by the model's policy)."""
    node = context.node()
    result = node.attribution.attribute(model, prompt, completion, top=top)
    if plot is not None:
        from openledger.attribution.plot import plot_shares

        plot_shares(result, plot, account_names(node))
    if as_json:
        return _print_json(result.to_dict())
    for note in result.notes:
        out.print(f"[yellow]note:[/] {note}")
    method = result.method
    if method == "mix":
        method = ", ".join(f"{m} {w:.0%}" for m, w in result.params["policy"].items())
    table = Table(title=f"Attribution ({method}) — {model}")
    for col in ("contribution", "contributor", "share", "score"):
        table.add_column(col, justify="right" if col in ("share", "score") else "left")
    for s in result.shares:
        table.add_row(str(s.contribution), s.contributor, f"{s.weight:.1%}", f"{s.score:.4g}")
    table.add_row(
        "—", "unattributed (pro rata to approved records)", f"{result.unattributed:.1%}", ""
    )
    out.print(table)
    ev = Table(title=f"Top {len(result.evidence)} pieces of evidence")
    for col in ("method", "record", "contribution", "score", "text"):
        ev.add_column(col)
    for e in result.evidence:
        ev.add_row(
            str(e.detail.get("method", result.method)),
            str(e.record),
            str(e.contribution),
            f"{e.score:.4g}",
            e.preview,
        )
    out.print(ev)
    if not result.shares:
        out.print("no training example made this completion more likely (all unattributed)")
    if plot is not None:
        out.print(f"bar chart: {plot}")


def account_names(node: Any) -> dict[str, str]:
    """address → account name, for the accounts this node holds."""
    names = {}
    for name in node.accounts.names():
        try:
            names[node.accounts.address(name)] = name
        except OpenLedgerError:  # an account this node cannot read stays unnamed
            continue
    return names


rag_app = typer.Typer(
    help="Retrieval (RAG): index a datanet snapshot's chunks.", no_args_is_help=True
)


@rag_app.command("index")
def rag_index(
    datanet: Annotated[str, typer.Argument(help="DATANET or DATANET@VERSION.")],
    force: Annotated[bool, typer.Option(help="Rebuild even if up to date.")] = False,
    as_json: Json = False,
) -> None:
    """Embed the snapshot's chunks (all-MiniLM-L6-v2, offline) into a FAISS index."""
    summary = context.node().attribution.build_datanet(datanet, method="rag", force=force)
    if as_json:
        return _print_json(summary)
    out.print(
        f"rag index of {summary['datanet']}: {summary['chunks']} chunks, hash "
        f"{summary['index_hash'][:18]}… in {summary['path']}"
    )


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="attribution")
    root.add_typer(rag_app, name="rag")
    root.command()(attribute)
