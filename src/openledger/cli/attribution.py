"""`openledger attribution build|show|register` and `openledger attribute`."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from openledger.cli import context
from openledger.cli.format import out

app = typer.Typer(help="Proof of Attribution indexes: build, show, register.", no_args_is_help=True)
Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _print_json(doc: Any) -> None:
    out.print_json(json.dumps(doc, default=str))


@app.command("build")
def build(
    model: Annotated[str, typer.Argument(help="Published model name or id.")],
    method: Annotated[str, typer.Option(help="Attribution method: gradient.")] = "gradient",
    proj_dim: Annotated[int, typer.Option(help="Projection dimension k.")] = 1024,
    checkpoints: Annotated[
        int, typer.Option(help="Checkpoints to ensemble: the adapter plus M-1 latest.")
    ] = 1,
    workers: Annotated[int, typer.Option(help="Parallel build processes.")] = 1,
    damping: Annotated[
        float | None, typer.Option(help="λ = damping · mean eigenvalue of ΦᵀΦ (default 0.1).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Projection seed (stored in the index).")] = 0,
    force: Annotated[bool, typer.Option(help="Discard an existing index and rebuild.")] = False,
    register: Annotated[
        bool, typer.Option(help="Post the index hash to ModelRegistry (signed by --as).")
    ] = False,
    as_: Annotated[str, typer.Option("--as", help="Model owner (with --register).")] = "operator",
    as_json: Json = False,
) -> None:
    """Build (or resume) a model's attribution index; shows progress, resumable."""
    node = context.node()
    meta = node.attribution.build(
        model,
        method=method,
        proj_dim=proj_dim,
        checkpoints=checkpoints,
        workers=workers,
        damping=damping,
        seed=seed,
        progress=not as_json,
        force=force,
    )
    if register:
        node.attribution.register(model, node.accounts.signer(as_))
    summary = {
        "model": meta["model"],
        "method": meta["method"],
        "index_hash": meta["index_hash"],
        "examples": meta["n_examples"],
        "proj_dim": meta["projection"]["k"],
        "checkpoints": len(meta["checkpoints"]),
        "lambda": [c["lambda"] for c in meta["checkpoints"]],
        "registered": register,
        "path": str(node.attribution.index_dir(meta["model"], method)),
    }
    if as_json:
        return _print_json(summary)
    out.print(
        f"index for {summary['model']!r}: {summary['examples']} examples × "
        f"k={summary['proj_dim']}, {summary['checkpoints']} checkpoint(s), "
        f"hash {summary['index_hash'][:18]}… in {summary['path']}"
        + (" (registered on chain)" if register else "")
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
    as_json: Json = False,
) -> None:
    """Which contributions made this completion likely."""
    result = context.node().attribution.attribute(model, prompt, completion, top=top)
    if as_json:
        return _print_json(result.to_dict())
    for note in result.notes:
        out.print(f"[yellow]note:[/] {note}")
    table = Table(title=f"Attribution ({result.method}) — {model}")
    for col in ("contribution", "contributor", "share", "score"):
        table.add_column(col, justify="right" if col in ("share", "score") else "left")
    for s in result.shares:
        table.add_row(str(s.contribution), s.contributor, f"{s.weight:.1%}", f"{s.score:.4g}")
    out.print(table)
    ev = Table(title=f"Top {len(result.evidence)} training examples")
    for col in ("record", "contribution", "score", "text"):
        ev.add_column(col)
    for e in result.evidence:
        ev.add_row(str(e.record), str(e.contribution), f"{e.score:.4g}", e.preview)
    out.print(ev)
    if not result.shares:
        out.print("no training example made this completion more likely (all unattributed)")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="attribution")
    root.command()(attribute)
