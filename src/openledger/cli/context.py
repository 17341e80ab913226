"""The settings chosen by the root command and the node built from them."""

from __future__ import annotations

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
    if "node" not in _state:
        _state["node"] = Node(settings())
    return _state["node"]  # type: ignore[return-value]
