"""The settings chosen by the root command and the node built from them."""

from __future__ import annotations

from openledger.api.operator_token import read_token
from openledger.config import Settings
from openledger.node import Node

_state: dict[str, object] = {}


def set_settings(settings: Settings) -> None:
    _state.clear()
    _state["settings"] = settings


def settings() -> Settings:
    found = _state.get("settings")
    return found if isinstance(found, Settings) else Settings.load()


def node() -> Node:
    """The node of the chosen home. The CLI signs as the node's own accounts (``--as``), so
    it holds the home's operator token first: a home without one, or with one other users
    can read, is refused (``openledger init`` writes it, mode 0600)."""
    if "node" not in _state:
        read_token(settings().home)
        _state["node"] = Node(settings())
    return _state["node"]  # type: ignore[return-value]
