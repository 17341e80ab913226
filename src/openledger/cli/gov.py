"""Governance from the command line: proposals, votes, the Timelock, delegation, handover."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from openledger.cli import context
from openledger.cli.format import fmt_open, out, parse_open, print_json
from openledger.governance.keys import parse_sets

Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
As = Annotated[str, typer.Option("--as", help="Account that signs (operator, alice…).")]
AsOperator = Annotated[str, typer.Option("--as", help="Account that signs.")]
Id = Annotated[int, typer.Argument(help="Proposal id.")]

app = typer.Typer(
    help="Governance: propose, vote, queue, execute (docs/governance.md).", no_args_is_help=True
)


def _json(doc: Any) -> None:
    print_json(doc)


def _votes(doc: dict[str, Any]) -> str:
    v = doc["votes"]
    quorum = f", quorum {fmt_open(int(doc['quorum']))}" if doc.get("quorum") else ""
    return (
        f"for {fmt_open(int(v['for']))}, against {fmt_open(int(v['against']))}, "
        f"abstain {fmt_open(int(v['abstain']))} OPEN{quorum}"
    )


def _print(doc: dict[str, Any]) -> None:
    out.print(f"proposal {doc['id']} ({doc['state']}): {doc['description']}")
    out.print(
        f"  proposer {doc['proposer']}; snapshot {doc['snapshot']}, voting ends "
        f"{doc['deadline']}" + (f", executable from {doc['eta']}" if doc["eta"] else "")
    )
    out.print(f"  votes: {_votes(doc)}")
    for call in doc["calls"]:
        out.print(f"  call: {call}")
    if doc.get("tx_hash"):
        out.print(f"  tx {doc['tx_hash']}")


@app.command()
def propose(
    as_: As,
    set_: Annotated[list[str], typer.Option("--set", help="KEY=VALUE (repeatable).")],
    description: Annotated[str, typer.Option("--description", help="What and why.")] = "",
    as_json: Json = False,
) -> None:
    """Propose parameter changes; unknown keys and out-of-range values are refused first."""
    node = context.node()
    doc = node.governance.propose(node.accounts.signer(as_), parse_sets(set_), description)
    _json(doc) if as_json else _print(doc)


@app.command()
def vote(
    proposal: Id,
    support: Annotated[str, typer.Argument(help="for, against or abstain.")],
    as_: As,
    as_json: Json = False,
) -> None:
    """Vote with the votes delegated to the account at the proposal's snapshot."""
    node = context.node()
    doc = node.governance.vote(node.accounts.signer(as_), proposal, support)
    if as_json:
        return _json(doc)
    out.print(f"voted {support} on proposal {proposal} with {fmt_open(int(doc['weight']))} OPEN")
    _print(doc)


@app.command()
def queue(proposal: Id, as_: AsOperator = "operator", as_json: Json = False) -> None:
    """Queue a succeeded proposal in the Timelock (anyone may)."""
    node = context.node()
    doc = node.governance.queue(node.accounts.signer(as_), proposal)
    _json(doc) if as_json else _print(doc)


@app.command()
def execute(proposal: Id, as_: AsOperator = "operator", as_json: Json = False) -> None:
    """Execute a queued proposal once the Timelock's delay has passed (anyone may)."""
    node = context.node()
    doc = node.governance.execute(node.accounts.signer(as_), proposal)
    _json(doc) if as_json else _print(doc)


@app.command()
def cancel(proposal: Id, as_: As, as_json: Json = False) -> None:
    """Cancel: the proposer while pending, the guardian any time before execution."""
    node = context.node()
    doc = node.governance.cancel(node.accounts.signer(as_), proposal)
    _json(doc) if as_json else _print(doc)


@app.command("list")
def list_(as_json: Json = False) -> None:
    """Every proposal, newest first."""
    docs = context.node().governance.list()
    if as_json:
        return _json(docs)
    if not docs:
        out.print("no proposals yet")
        return
    t = Table(title="proposals")
    for col in ("id", "state", "description", "votes", "deadline"):
        t.add_column(col)
    for d in docs:
        t.add_row(str(d["id"]), d["state"], d["description"], _votes(d), str(d["deadline"]))
    out.print(t)


@app.command()
def show(proposal: Id, as_json: Json = False) -> None:
    """One proposal: state, votes, quorum, times and its calls."""
    doc = context.node().governance.show(proposal)
    _json(doc) if as_json else _print(doc)


@app.command()
def keys(as_json: Json = False) -> None:
    """The governable keys, their current values, and the governance contracts."""
    doc = context.node().governance.settings()
    if as_json:
        return _json(doc)
    out.print(f"Governor {doc['governor']}, Timelock {doc['timelock']}, Grants {doc['grants']}")
    out.print(
        f"treasury {doc['treasury']} holds {fmt_open(int(doc['treasury_balance']))} OPEN; "
        f"handed over to governance: {'yes' if doc['handed_over'] else 'no'}"
    )
    t = Table(title="governable keys (gov propose --set KEY=VALUE)")
    for col in ("key", "value", "meaning"):
        t.add_column(col)
    for k, v in doc["keys"].items():
        t.add_row(k, v["shown"], v["help"])
    out.print(t)


@app.command()
def handover(
    as_: AsOperator = "operator",
    fund: Annotated[str, typer.Option("--fund", help="OPEN moved to the treasury.")] = "0",
    as_json: Json = False,
) -> None:
    """Hand this deployment to governance: the Timelock becomes the treasury and the owner of
    ProtocolParams, RewardDistributor and Grants (deploying them first if missing)."""
    node = context.node()
    done = node.gov_handover(as_, fund=parse_open(fund, field="--fund"))
    if as_json:
        return _json({"done": done})
    for step in done or ["nothing to do: already handed over"]:
        out.print(step)


def delegate(
    address: Annotated[str, typer.Argument(help="Delegatee: 0x address or account name.")],
    as_: As,
    as_json: Json = False,
) -> None:
    """Delegate the account's OPEN votes (to itself to vote; counts from the next second)."""
    node = context.node()
    doc = node.governance.delegate(node.accounts.signer(as_), node.accounts.resolve(address))
    if as_json:
        return _json(doc)
    out.print(
        f"{doc['delegator']} delegates {fmt_open(int(doc['balance']))} OPEN of votes to "
        f"{doc['delegatee']} (now {fmt_open(int(doc['votes']))} votes; tx {doc['tx_hash']})"
    )


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="gov")
    root.command()(delegate)
