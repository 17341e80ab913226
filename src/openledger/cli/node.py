"""Node-level commands: init, serve, accounts."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from openledger.cli import context
from openledger.cli.chain import accounts_table
from openledger.cli.format import fmt_open, out, print_json
from openledger.errors import NotFoundError, ValidationError

DEVICES = ("auto", "cpu", "cuda")


def init(
    import_keystore: Annotated[
        Path | None,
        typer.Option(
            "--import-keystore",
            help="Use this encrypted keystore (its password: "
            "OPENLEDGER_PASSWORD or the prompt) as the operator key.",
            exists=False,
            show_default=False,
        ),
    ] = None,
    private_key_env: Annotated[
        str | None,
        typer.Option(
            "--private-key-env",
            help="Take the operator's private key from this "
            "environment variable (stored encrypted with the password).",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create the node home: config, an encrypted operator keystore (new, or your funded
    key for a real chain), named dev accounts."""
    from openledger.chain.accounts import private_key_from_env, prompt_password
    from openledger.home import init_home

    if import_keystore is not None and private_key_env is not None:
        raise ValidationError(
            "--import-keystore and --private-key-env both name a key.",
            field="--import-keystore",
            value=str(import_keystore),
            fix="give one of them.",
        )
    if import_keystore is not None and not import_keystore.is_file():
        raise NotFoundError(
            f"No keystore file at {import_keystore}.",
            field="--import-keystore",
            value=str(import_keystore),
            fix="give the path of a keystore JSON file (geth / eth-account format).",
        )
    settings = context.settings()
    key = private_key_from_env(private_key_env) if private_key_env else None
    fresh = not settings.layout.operator_keystore.exists()
    password = prompt_password(confirm=import_keystore is None) if fresh else ""
    result = init_home(settings, password, keystore_file=import_keystore, private_key=key)
    if as_json:
        return print_json(
            {
                "home": str(result.home),
                "operator": result.operator,
                "created": result.created,
                "dev_accounts": result.dev_accounts,
                "token_written": result.token_written,
            }
        )
    state = "created" if result.created else "already existed (keys kept)"
    out.print(f"node home {result.home} {state}")
    out.print(f"operator {result.operator}  (keystore {settings.layout.operator_keystore})")
    out.print(f"devnet accounts (use --as NAME): {', '.join(result.dev_accounts)}")
    token = settings.layout.root / "operator.token"
    if result.token_written and not result.created:
        out.print(f"operator token written to {token} (mode 0600; this home had none)")
    else:
        out.print(f"operator token {token} ({'written' if result.token_written else 'kept'})")


accounts_app = typer.Typer(
    help="The node's named accounts: list them (the default), create one on the devnet.",
    invoke_without_command=True,
)


@accounts_app.callback()
def accounts(ctx: typer.Context) -> None:
    """The node's named accounts with their OPEN and ETH balances."""
    if ctx.invoked_subcommand is None:
        out.print(accounts_table(context.node()))


@accounts_app.command("create")
def accounts_create(
    name: Annotated[str, typer.Argument(help="Name for --as (lowercase, e.g. ivan).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Devnet only: make a new account NAME and fund it like the dev accounts (10,000 ETH,
    1,000,000 OPEN); its key is kept in the node home (mode 0600)."""
    doc = context.node().create_account(name)
    if as_json:
        return print_json(doc)
    out.print(
        f"account {name} {doc['address']} created with {fmt_open(int(doc['open']))} OPEN "
        f"and {int(doc['eth']) // 10**18:,} ETH; use it with --as {name}"
    )


def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
    device: Annotated[
        str | None,
        typer.Option(
            help="Where the OpenLoRA engine runs: auto, cpu or cuda (default: the "
            "serve.device setting, auto)."
        ),
    ] = None,
    max_batch: Annotated[
        int | None,
        typer.Option(help="Requests decoded together (default: serve.max_batch, 64)."),
    ] = None,
    base: Annotated[
        str | None,
        typer.Option(help="Base model whose adapters are served (default: the most used one)."),
    ] = None,
    provider: Annotated[
        bool,
        typer.Option(
            "--provider",
            help="Run as a compute provider: serve the pulled models' "
            "jobs for the gateways given with --gateway, signed with this home's key "
            "(docs/providers.md).",
        ),
    ] = False,
    gateway: Annotated[
        list[str] | None,
        typer.Option(
            "--gateway",
            help="With --provider: a gateway's operator address whose jobs are served (repeat).",
        ),
    ] = None,
) -> None:
    """Run the node: the JSON API, the OpenAI-compatible /v1, the job worker and, on the
    devnet, the chain (or, with --provider, a compute provider)."""
    import uvicorn

    from openledger.app import create_app
    from openledger.factory.worker import JobWorker
    from openledger.heap import freeze_startup_heap
    from openledger.ledger.settlement.loop import SettlementLoop
    from openledger.logs import configure as configure_logging

    if device is not None and device not in DEVICES:
        raise ValidationError(
            f"unknown device {device!r}.",
            field="--device",
            value=device,
            fix="use auto, cpu or cuda.",
        )
    if max_batch is not None and max_batch < 1:
        raise ValidationError(
            f"--max-batch {max_batch} is below 1.",
            field="--max-batch",
            value=max_batch,
            fix="use 1 or more.",
        )
    configure_logging(context.log_format())
    overrides = {"serve_device": device, "serve_max_batch": max_batch, "serve_base": base}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if overrides:
        context.set_settings(replace(context.settings(), **overrides))
    if provider or gateway:
        return _serve_provider(host, port, gateway or [])
    node = context.node()
    try:
        engine = node.serving.engine  # load the base now, not on the first request
        out.print(
            f"OpenLoRA: adapters of {node.serving.base} on {engine.model.device}, "
            f"batch {engine.config.max_batch}, context {engine.max_ctx} tokens"
        )
    except NotFoundError:
        out.print("OpenLoRA: no model published yet; /v1 serves once one is.")
    try:
        if node.settings.is_devnet:
            node.chain_up()
        app = create_app(node)
    except BaseException:
        node.serving.close()
        raise
    freeze_startup_heap()  # the node, models and app are built: the collector skips them
    worker = JobWorker(node.jobs)
    worker.start()
    settlement = SettlementLoop(node.sync_chain, node.epochs)
    if node.settings.addresses_path.exists():
        settlement.start()  # credit from deposits, epochs closed when due
    bind_host, bind_port = host or node.settings.api_host, port or node.settings.api_port
    out.print(f"Web app: http://{bind_host}:{bind_port}/  (JSON API docs: /docs)")
    try:
        uvicorn.run(app, host=bind_host, port=bind_port, log_config=None, access_log=False)
    finally:
        settlement.stop()
        worker.stop()
        node.close()


def _serve_provider(host: str | None, port: int | None, gateways: list[str]) -> None:
    """``serve --provider``: the provider app over this home's pulled models and key."""
    import uvicorn

    from openledger.chain.addr import is_address, to_checksum_address
    from openledger.providers.jobs import JobChecker
    from openledger.providers.server import create_provider_app

    if not gateways:
        raise ValidationError(
            "a provider serves the jobs of the gateways it names; none given.",
            field="--gateway",
            value=None,
            fix="add --gateway ADDRESS (the gateway's operator address).",
        )
    for g in gateways:
        if not is_address(g):
            raise ValidationError(
                f"--gateway {g[:60]!r} is not an address.",
                field="--gateway",
                value=g[:60],
                fix="give the gateway's 0x… operator address.",
            )
    accepted = [to_checksum_address(g) for g in gateways]
    node = context.node()
    signer = node.receipt_signer()
    serving = node.provider_serving
    models = [m["name"] for m in serving.catalogue()]
    if not models:
        raise NotFoundError(
            "this provider has pulled no model.",
            field="models",
            value=None,
            fix="openledger provider pull NAME --gateway URL, then register.",
        )
    engine = serving.engine  # load the base and warm the adapters before any job
    out.print(f"provider {signer.address}: {', '.join(models)} on {engine.model.device}")
    app = create_provider_app(serving, signer, JobChecker(accepted))
    bind_host, bind_port = host or node.settings.api_host, port or node.settings.api_port
    out.print(f"serving jobs of {', '.join(accepted)} at http://{bind_host}:{bind_port}/provider")
    try:
        uvicorn.run(app, host=bind_host, port=bind_port, log_config=None, access_log=False)
    finally:
        node.close()


def register(app: typer.Typer) -> None:
    app.command()(init)
    app.add_typer(accounts_app, name="accounts")
    app.command()(serve)
