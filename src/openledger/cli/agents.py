"""`openledger agent create | list | show | fund | price | pause | resume | deploy`
(docs/agents.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from openledger.cli import context
from openledger.cli.format import fmt_open, out, parse_open, print_json

app = typer.Typer(
    help="Agents: a published model plus a configuration, registered on chain.",
    no_args_is_help=True,
)

As = Annotated[str, typer.Option("--as", help="Account that signs (operator, alice, …).")]
Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def _show(doc: dict[str, Any]) -> None:
    state = "active" if doc["active"] else "paused"
    out.print(
        f"[bold]agent/{doc['name']}[/] (#{doc['id']}) — {state}, owner "
        f"{context.label(doc['owner'])}"
    )
    model = doc["model"] or f"#{doc['model_id']}"
    out.print(
        f"model {model}; price {fmt_open(int(doc['price']))} OPEN per call; "
        f"call depth {doc['depth']}"
    )
    out.print(f"configuration {doc['config_hash']}")
    if doc.get("credit") is not None:
        c = doc["credit"]
        available = fmt_open(int(c["available"]))
        out.print(
            f"wallet {doc['wallet']}: {available} OPEN of credit available "
            f"(`openledger agent fund {doc['name']} AMOUNT` adds more)"
        )
    cfg = doc["config"]
    if cfg is None:
        out.print("  (not known on this node: registered elsewhere)")
        return
    if cfg["system_prompt"]:
        out.print(f"  system prompt: {cfg['system_prompt'][:200]!r}")
    out.print(
        f"  sampling: temperature {cfg['temperature']}, top_p {cfg['top_p']}, "
        f"max_tokens {cfg['max_tokens']}"
    )
    if cfg["retrieval"]:
        out.print(f"  retrieval: {', '.join(cfg['retrieval'])} (top {cfg['retrieval_k']})")
    out.print(f"  calls: {', '.join(cfg['calls']) or 'nothing'}")
    cap = int(cfg["spend_cap"])
    out.print(f"  spending cap: {fmt_open(cap) + ' OPEN per epoch' if cap else 'none'}")


@app.command("create")
def create(
    name: str,
    model: Annotated[str, typer.Option("--model", help="The published model it runs.")],
    price: Annotated[str, typer.Option(help="OPEN per call, on top of what it uses.")] = "0",
    system_prompt: Annotated[str, typer.Option(help="The system prompt.")] = "",
    system_prompt_file: Annotated[
        Path | None, typer.Option(help="Read the system prompt from this file.")
    ] = None,
    temperature: Annotated[float, typer.Option(help="Default temperature (0: greedy).")] = 0.0,
    top_p: Annotated[float, typer.Option(help="Default nucleus sampling mass.")] = 1.0,
    max_tokens: Annotated[int, typer.Option(help="Default completion length.")] = 64,
    retrieve: Annotated[
        list[str] | None, typer.Option("--retrieve", help="A datanet to retrieve from (repeat).")
    ] = None,
    retrieval_k: Annotated[int, typer.Option(help="Chunks retrieved per call.")] = 3,
    calls: Annotated[
        list[str] | None,
        typer.Option("--calls", help="A model or agent/NAME it may call (repeat)."),
    ] = None,
    spend_cap: Annotated[
        str, typer.Option(help="OPEN its wallet may spend on calls per epoch (0: no cap).")
    ] = "0",
    as_: As = "operator",
    as_json: Json = False,
) -> None:
    """Register an agent on chain (owned by --as) and keep its configuration here."""
    from openledger.agents.config import AgentConfig
    from openledger.errors import ValidationError

    if system_prompt_file is not None:
        if system_prompt:
            raise ValidationError(
                "Both --system-prompt and --system-prompt-file are given.",
                field="--system-prompt-file",
                value=str(system_prompt_file),
                fix="give one of them.",
            )
        try:
            system_prompt = system_prompt_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValidationError(
                f"Cannot read {system_prompt_file} ({exc}).",
                field="--system-prompt-file",
                value=str(system_prompt_file),
                fix="name a readable UTF-8 text file.",
            ) from exc
    config = AgentConfig(
        model=model,
        system_prompt=system_prompt,
        temperature=temperature,
        top_p=top_p,
        max_tokens=max_tokens,
        retrieval=tuple(retrieve or ()),
        retrieval_k=retrieval_k,
        calls=tuple(calls or ()),
        spend_cap=parse_open(spend_cap, field="--spend-cap"),
    )
    node = context.node()
    doc = node.agents.create(
        name, config, price=parse_open(price, field="--price"), signer=node.accounts.signer(as_)
    )
    if as_json:
        return print_json(doc)
    out.print(f"agent/{doc['name']} registered on chain as #{doc['id']} (tx {doc['tx_hash']})")


@app.command("list")
def list_(
    offset: int = 0,
    limit: Annotated[int, typer.Option(help="Page size.")] = 50,
    as_json: Json = False,
) -> None:
    """All agents, one page at a time."""
    node = context.node()
    node.sync_chain()
    page = node.agents.list(offset, limit)
    if as_json:
        return print_json(page)
    table = Table(title=f"Agents ({page['total']})")
    for col in ("id", "name", "model", "owner", "price (OPEN)", "depth", "state"):
        table.add_column(col)
    for a in page["items"]:
        table.add_row(
            str(a["id"]),
            f"agent/{a['name']}",
            a["model"] or f"#{a['model_id']}",
            context.label(a["owner"]),
            fmt_open(int(a["price"])),
            str(a["depth"]),
            "active" if a["active"] else "paused",
        )
    out.print(table)


@app.command("show")
def show(agent: str, as_json: Json = False) -> None:
    """An agent: owner, model, price, state, configuration."""
    node = context.node()
    node.sync_chain()
    doc = node.agents.get(agent)
    if doc["wallet"] is not None:
        doc["credit"] = node.ledger.credit(doc["wallet"])
    if as_json:
        return print_json(doc)
    _show(doc)


@app.command("fund")
def fund(
    agent: str,
    amount: Annotated[str, typer.Argument(help="OPEN to deposit for the agent's wallet.")],
    as_: As = "operator",
    as_json: Json = False,
) -> None:
    """Deposit OPEN into the escrow for the agent's own wallet (what pays for its calls)."""
    node = context.node()
    doc = node.agents.fund(
        agent, parse_open(amount, field="amount"), signer=node.accounts.signer(as_)
    )
    if as_json:
        return print_json(doc)
    out.print(
        f"agent/{doc['agent']}'s wallet {doc['wallet']} funded with "
        f"{fmt_open(int(doc['funded']))} OPEN; {fmt_open(int(doc['available']))} OPEN of "
        f"credit available (tx {doc['tx_hash']})"
    )


@app.command("price")
def price(
    agent: str,
    amount: Annotated[str, typer.Argument(help="OPEN per call (0: free).")],
    as_: As = "operator",
    as_json: Json = False,
) -> None:
    """Set an agent's price per call (its owner only)."""
    node = context.node()
    doc = node.agents.set_price(
        agent, parse_open(amount, field="price"), signer=node.accounts.signer(as_)
    )
    if as_json:
        return print_json(doc)
    out.print(f"agent/{doc['name']} now costs {fmt_open(int(doc['price']))} OPEN per call")


@app.command("pause")
def pause(agent: str, as_: As = "operator", as_json: Json = False) -> None:
    """Stop an agent taking calls (its owner only)."""
    _set_active(agent, False, as_, as_json)


@app.command("resume")
def resume(agent: str, as_: As = "operator", as_json: Json = False) -> None:
    """Let a paused agent take calls again (its owner only)."""
    _set_active(agent, True, as_, as_json)


def _set_active(agent: str, active: bool, as_: str, as_json: bool) -> None:
    node = context.node()
    doc = node.agents.set_active(agent, active, signer=node.accounts.signer(as_))
    if as_json:
        return print_json(doc)
    out.print(f"agent/{doc['name']} {'resumed' if active else 'paused'}")


@app.command("deploy")
def deploy(as_: As = "operator", as_json: Json = False) -> None:
    """Deploy AgentRegistry on a deployment made before agents existed (once)."""
    from openledger.agents.service import deploy_registry

    node = context.node()
    address = deploy_registry(node.client, node.accounts.signer(as_), node.settings.addresses_path)
    for name in ("contracts", "sync"):
        node.__dict__.pop(name, None)
    if as_json:
        return print_json({"address": address, "deployed": address is not None})
    out.print(
        f"AgentRegistry deployed at {address}" if address else "AgentRegistry is already deployed"
    )


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="agent")
