"""`openledger chain ...`: the devnet and the contracts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from openledger.cli import context
from openledger.cli.format import fmt_open, out, print_json
from openledger.errors import ValidationError
from openledger.governance.keys import DAY, Key, parse_value
from openledger.node import Node

app = typer.Typer(help="Devnet lifecycle, deployed contracts and ABIs.", no_args_is_help=True)


def accounts_table(node: Node) -> Table:
    """The node's named accounts with their OPEN and ETH balances."""
    table = Table(title="Accounts")
    table.add_column("name")
    table.add_column("address", min_width=42, no_wrap=True)
    table.add_column("OPEN", justify="right")
    table.add_column("ETH", justify="right")
    token = node.contracts.token
    for name in node.accounts.names():
        address = node.accounts.address(name)
        eth = node.client.eth_balance(address)
        table.add_row(name, address, fmt_open(token.balance_of(address)), f"{eth / 10**18:,.4f}")
    return table


def print_addresses_and_balances() -> None:
    node = context.node()
    contracts = node.contracts
    table = Table(title=f"Contracts on chain {contracts.addresses.chain_id}")
    table.add_column("contract")
    table.add_column("address", min_width=42, no_wrap=True)
    for name, address in contracts.addresses.contracts.items():
        table.add_row(name, address)
    out.print(table)
    out.print(accounts_table(node))


@app.command()
def up() -> None:
    """Start the devnet (anvil on 127.0.0.1); deploy the contracts on its first start."""
    result = context.node().chain_up()
    verb = "deployed" if result.deployed_now else "found"
    out.print(
        f"devnet running at {result.status.url} (pid {result.status.pid}, block "
        f"{result.status.block_number}); contracts {verb}."
    )
    print_addresses_and_balances()


@app.command()
def down() -> None:
    """Stop the devnet; its state is kept in the node home."""
    stopped = context.node().devnet.down()
    out.print("devnet stopped; state saved." if stopped else "devnet was not running.")


@app.command()
def status() -> None:
    """Is the chain up, at which block, and where are the contracts."""
    node = context.node()
    if node.settings.is_devnet:
        st = node.devnet.status()
        if not st.running:
            out.print(
                f"devnet not running (would listen at {st.url}). Start it: openledger chain up"
            )
            raise typer.Exit(1)
        out.print(
            f"devnet running at {st.url}: pid {st.pid}, chain id {st.chain_id}, "
            f"block {st.block_number}"
        )
    else:
        node.client.check()
        out.print(
            f"chain {node.settings.rpc_url}: chain id {node.settings.chain_id}, "
            f"block {node.client.block_number()}"
        )
    print_addresses_and_balances()


@app.command()
def deploy(
    rpc: Annotated[
        str,
        typer.Option(
            "--rpc",
            help="JSON-RPC URL of the chain (an OP Stack L2 or any EVM chain).",
            show_default=False,
        ),
    ],
    chain_id: Annotated[
        int, typer.Option("--chain-id", help="The chain id it must have.", show_default=False)
    ],
    addresses: Annotated[
        Path | None,
        typer.Option(
            "--addresses",
            help="Where to write the addresses (default: <home>/chain/addresses-<chain id>.json).",
            show_default=False,
        ),
    ] = None,
    governance: Annotated[
        str,
        typer.Option(
            help="Governance timings: mainnet (1 day delay, 5 days voting, 2 days "
            "timelock) or devnet."
        ),
    ] = "mainnet",
    treasury: Annotated[
        str | None,
        typer.Option(
            help="Placeholder treasury for the "
            "constructor (the Timelock becomes the treasury "
            "at the handover)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Deploy the whole contract set from the operator key (governance handover included) to
    any EVM chain; resumable: if it is interrupted, run the same command again."""
    from openledger.chain.client import ChainClient
    from openledger.chain.deploy import DEVNET_GOVERNANCE, MAINNET_GOVERNANCE
    from openledger.chain.remote_deploy import Deployment

    if governance not in ("mainnet", "devnet"):
        raise ValidationError(
            f"Unknown governance timings {governance!r}.",
            field="--governance",
            value=governance,
            fix="use mainnet or devnet.",
        )
    node = context.node()
    path = addresses or node.settings.layout.chain_dir / f"addresses-{chain_id}.json"
    client = ChainClient(rpc, chain_id=chain_id, timeout=node.settings.rpc_timeout)
    client.check()  # before the password is asked for: a wrong URL or chain id says so first
    signer = node.accounts.signer("operator")
    say = (lambda _: None) if as_json else out.print
    report = Deployment(
        client,
        signer,
        path,
        treasury=treasury,
        governance=MAINNET_GOVERNANCE if governance == "mainnet" else DEVNET_GOVERNANCE,
        say=say,
    ).run()
    a = report.addresses
    doc = {
        "chain_id": a.chain_id,
        "addresses_file": str(path),
        "contracts": a.contracts,
        "deployer": a.deployer,
        "deployed_block": a.deployed_block,
        "gas": a.gas,
        "total_gas": sum(a.gas.values()),
        "cost_wei": str(report.cost_wei),
        "sent": report.sent,
        "found": report.found,
        "already_deployed": report.already_deployed,
    }
    if as_json:
        return print_json(doc)
    table = Table(title=f"OpenLedger on chain {a.chain_id} ({rpc})")
    for col in ("contract", "address", "gas"):
        table.add_column(col)
    for name, address in a.contracts.items():
        table.add_row(name, address, f"{a.gas.get(name, 0):,}")
    out.print(table)
    out.print(
        f"total gas {doc['total_gas']:,}; paid {report.cost_wei / 1e18:.6f} ETH "
        f"(L2 execution + L1 data fee); addresses in {path}"
    )
    out.print(
        f"use it: OPENLEDGER_CHAIN_URL={rpc} OPENLEDGER_CHAIN_ID={chain_id} "
        f"OPENLEDGER_ADDRESSES={path}"
    )


@app.command()
def advance(
    duration: Annotated[
        str, typer.Argument(help="How far: seconds, or 90s, 15m, 6h, 2d, 1w.", show_default=False)
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Move the devnet's clock forward and mine a block (devnet only): walk a proposal past
    its voting delay, voting period and timelock delay, or a reward root past its
    activation delay, without waiting."""
    seconds = int(parse_value(Key("DURATION", "", "", "seconds", 1, 365 * DAY), duration))
    doc = context.node().chain_advance(seconds)
    if as_json:
        print_json(doc)
        return
    when = dt.datetime.fromtimestamp(doc["timestamp"], dt.UTC).isoformat(timespec="seconds")
    out.print(
        f"devnet clock moved {doc['seconds']} s forward: block {doc['block']} at {when} "
        f"(timestamp {doc['timestamp']})."
    )


@app.command()
def abi(
    out_dir: Annotated[Path, typer.Argument(help="Directory for <Contract>.json ABI files.")],
) -> None:
    """Export the contracts' ABIs as JSON for other clients."""
    from openledger.chain.compile import export_abis

    for path in export_abis(out_dir):
        out.print(str(path))
