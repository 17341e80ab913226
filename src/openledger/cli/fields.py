"""A service's error names its field in the domain's words (``account``, ``method``); the CLI
says it in the words of the command that ran: the option that takes it (``--as``,
``--method``), or the argument's own name. Where a command helps with the fix, the CLI adds it
(``COMMANDS``).

The command is found by walking ``argv`` through the command groups, and only the options
that this command (or a group above it) declares are named, so ``name`` is ``--name`` for
``model publish`` but stays ``name`` for ``agent create NAME``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from openledger.errors import OpenLedgerError

# A domain word whose option says something else. A word whose option is ``--`` plus the word
# (``method`` -> ``--method``, ``price_in`` -> ``--price-in``) needs no entry.
FLAGS = {"account": "--as", "retrieval": "--retrieve"}

# The command that helps with a fix, by the error's type and domain field.
COMMANDS = {
    ("NotFoundError", "account"): "`openledger accounts` lists them",
    ("NotFoundError", "key_id"): "`openledger keys list` shows them",
    ("AccessDueError", "access"): "`--pay` pays it",
    ("PaymentRequiredError", "credit"): "`openledger deposit AMOUNT --as ACCOUNT`",
    ("ContractNotDeployedError", "AgentRegistry"): "`openledger agent deploy --as operator`",
    ("ValidationError", "votes"): "`openledger delegate ADDRESS --as HOLDER`",
    ("ValidationError", "withdrawal"): "`openledger withdraw AMOUNT --as ACCOUNT`",
    ("ConflictError", "withdrawal"): "`openledger withdraw --as ACCOUNT`",
}


def _path_params(root: Any, argv: Sequence[str]) -> list[Any]:
    """The parameters of ``root`` and of every command group and command that ``argv``
    reaches (the values of a group's options are skipped, not taken for commands)."""
    params: list[Any] = list(root.params)
    cmd, skip = root, False
    for tok in argv:
        if skip:
            skip = False
            continue
        commands = getattr(cmd, "commands", None)
        if commands is None:  # a command, not a group: the rest are its own arguments
            break
        if tok.startswith("-"):
            opt = next((p for p in cmd.params if tok.split("=", 1)[0] in p.opts), None)
            skip = opt is not None and "=" not in tok and not getattr(opt, "is_flag", False)
            continue
        if tok not in commands:
            break
        cmd = commands[tok]
        params.extend(cmd.params)
    return params


def cli_field(field: str, root: Any, argv: Sequence[str]) -> str:
    """``field`` (a domain word) as the command ``argv`` runs calls it."""
    params = _path_params(root, argv)
    if any(p.param_type_name == "argument" and p.name == field for p in params):
        return field
    opts = {o for p in params if p.param_type_name == "option" for o in p.opts}
    for flag in (FLAGS.get(field), "--" + field.replace("_", "-")):
        if flag in opts:
            return flag
    return field


def cli_fix(exc: OpenLedgerError) -> str | None:
    """``exc``'s fix, with the command that helps where there is one."""
    command = COMMANDS.get((type(exc).__name__, exc.field or ""))
    if command is None or exc.fix is None:
        return exc.fix
    return f"{exc.fix.rstrip('.')} ({command})."
