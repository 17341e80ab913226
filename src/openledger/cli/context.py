"""The settings chosen by the root command and the node built from them."""

from __future__ import annotations

from openledger.auth.operator_token import read_token
from openledger.chain.accounts import AccountBook
from openledger.config import Settings
from openledger.errors import OpenLedgerError
from openledger.node import Node

_state: dict[str, object] = {}


def set_settings(settings: Settings, *, log_format: str | None = None) -> None:
    _state.clear()
    _state["settings"] = settings
    _state["log_format"] = log_format


def log_format() -> str | None:
    """``--log-format`` as given (None: the default, text on a terminal, JSON otherwise)."""
    found = _state.get("log_format")
    return found if isinstance(found, str) else None


def settings() -> Settings:
    found = _state.get("settings")
    return found if isinstance(found, Settings) else Settings.load()


def names() -> dict[str, str]:
    """Address -> name of every account this node's home names (operator, dev accounts,
    accounts made with `openledger accounts create`); empty when the home has none."""
    if "names" not in _state:
        found: dict[str, str] = {}
        try:
            book = AccountBook(settings())
            for name in book.names():
                try:
                    found[book.address(name).lower()] = name
                except OpenLedgerError:
                    continue
        except (OpenLedgerError, OSError, ValueError):
            pass
        _state["names"] = found
    return _state["names"]  # type: ignore[return-value]


def label(address: str | None) -> str:
    """``alice (0x7099…79C8)`` for an account the node knows, else the address as it is."""
    if not address:
        return str(address)
    name = names().get(str(address).lower())
    return f"{name} ({address[:6]}…{address[-4:]})" if name else str(address)


def node() -> Node:
    """The node of the chosen home. The CLI signs as the node's own accounts (``--as``), so
    it holds the home's operator token first: a home without one, or with one other users
    can read, is refused (``openledger init`` writes it, mode 0600)."""
    if "node" not in _state:
        read_token(settings().home)
        _state["node"] = Node(settings())
    return _state["node"]  # type: ignore[return-value]
