"""The ``openledger`` command: a thin shell over the node's services.

Every ``openledger.errors`` failure is printed as one clear message (no traceback) and the
process exits non-zero. Its field, a domain word, is named as the command's option
(``cli/fields.py``): in the JSON document's ``field``, and before the message when the message
does not name the option itself.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import click
import typer
import typer._click.exceptions as typer_click
from rich.console import Console

from openledger.cli import agents as agents_cli
from openledger.cli import attribution as attribution_cli
from openledger.cli import chain as chain_cli
from openledger.cli import datanets as datanets_cli
from openledger.cli import factory as factory_cli
from openledger.cli import gov as gov_cli
from openledger.cli import grants as grants_cli
from openledger.cli import keys as keys_cli
from openledger.cli import ledger as ledger_cli
from openledger.cli import node as node_cli
from openledger.cli import providers as providers_cli
from openledger.cli import train as train_cli
from openledger.cli import verify as verify_cli
from openledger.cli.argv import check_numbers
from openledger.cli.context import set_settings
from openledger.cli.demo import demo
from openledger.cli.fields import cli_field, cli_fix
from openledger.cli.format import documents_written, json_mode, print_json, set_json_mode
from openledger.config import Settings
from openledger.errors import OpenLedgerError
from openledger.logs import check_format
from openledger.logs import configure as configure_logging

app = typer.Typer(
    name="openledger",
    help="OpenLedger node: datanets, model factory, OpenLoRA serving, proof of attribution.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True, soft_wrap=True)


def _print_version(value: bool) -> None:
    if value:
        from openledger.version import version_info, version_text

        print(version_text(version_info()))
        raise typer.Exit()


@app.callback()
def root(
    home: Annotated[
        Path | None,
        typer.Option("--home", envvar="OPENLEDGER_HOME", help="Node home directory."),
    ] = None,
    log_format: Annotated[
        str | None,
        typer.Option(
            "--log-format",
            envvar="OPENLEDGER_LOG_FORMAT",
            help="Logs as json (one object a line) or text; default: text on a terminal, "
            "JSON otherwise (`serve` logs every request).",
            show_default=False,
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            is_eager=True,
            callback=_print_version,
            help="Print the version, the git commit and the contract ABIs' hash, and exit.",
        ),
    ] = False,
) -> None:
    set_settings(Settings.load(home=home), log_format=check_format(log_format))
    if log_format is not None:  # asked for: every command logs so (serve does by default)
        configure_logging(log_format)


node_cli.register(app)
app.add_typer(chain_cli.app, name="chain")
datanets_cli.register(app)
app.add_typer(factory_cli.app, name="factory")
train_cli.register(app)
attribution_cli.register(app)
agents_cli.register(app)
providers_cli.register_commands(app)
app.add_typer(keys_cli.app, name="keys")
ledger_cli.register(app)
gov_cli.register(app)
grants_cli.register(app)
verify_cli.register(app)
app.command()(demo)


def quiet_libraries() -> None:
    """No library chatter on stderr: deprecation notices meant for developers (transformers'
    ``is_gradient_checkpointing`` FutureWarning, raised whenever PEFT wraps a model) and
    transformers' logger below errors. ``OPENLEDGER_DEBUG=1`` keeps them."""
    if os.environ.get("OPENLEDGER_DEBUG"):
        return
    import warnings

    for category in (FutureWarning, DeprecationWarning, PendingDeprecationWarning):
        warnings.filterwarnings("ignore", category=category)
    warnings.filterwarnings("ignore", message=r".*is_gradient_checkpointing.*")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    if "transformers" in sys.modules:  # already imported: its logger read the variable
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()


def _fail(code: int, doc: dict[str, object], text: str, fix: str | None = None) -> int:
    """Report a failure: one JSON document on stdout with ``--json``, else text on stderr."""
    if json_mode():
        if documents_written() == 0:  # a result already written stays the only document
            print_json({**doc, "exit_code": code})
        return code
    err.print(f"[bold red]error:[/] {text}", highlight=False)
    if fix:
        err.print(f"[bold]fix:[/] {fix}", highlight=False)
    return code


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    set_json_mode("--json" in args)
    quiet_libraries()
    try:
        check_numbers(args)
        result = app(args=argv, standalone_mode=False)
        return int(result) if isinstance(result, int) else 0
    except OpenLedgerError as exc:
        doc, text, fix = exc.to_dict(), exc.message, cli_fix(exc)
        if exc.field is not None:  # the domain's word as this command says it (--as)
            doc["field"] = flag = cli_field(exc.field, typer.main.get_command(app), args)
            if flag.startswith("--") and flag not in text:
                text = f"{flag}: {text}"
        if fix is not None:
            doc["fix"] = fix
        return _fail(exc.exit_code, doc, text, fix)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.Abort:
        return _fail(130, {"error": "Aborted", "message": "aborted"}, "aborted")
    except (click.ClickException, typer_click.ClickException) as exc:  # typer vendors click
        if not json_mode():
            exc.show()
            return exc.exit_code
        doc = {
            "error": "UsageError",
            "message": exc.format_message(),
            "fix": "see the command's --help.",
        }
        return _fail(exc.exit_code, doc, exc.format_message())
    except (OSError, ValueError, OverflowError) as exc:  # an argument no check foresaw
        if os.environ.get("OPENLEDGER_DEBUG"):
            raise
        fix = (
            "check the arguments (`--help`); set OPENLEDGER_DEBUG=1 for the traceback, and "
            "report it: every error should say what to do."
        )
        doc = {"error": type(exc).__name__, "message": str(exc), "fix": fix}
        return _fail(1, doc, f"{type(exc).__name__}: {exc}", fix)
    finally:
        set_json_mode(False)


def entrypoint() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entrypoint()
