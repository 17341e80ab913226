"""The models a provider serves: pulled from a gateway into the provider's home.

Each model is a folder ``<home>/provider/models/<name>/`` with its adapter files and a
``model.json`` card (name, registry id, base, fingerprint, adapter hash, prices, owner); a
base given as files sits in ``<home>/provider/bases/<fingerprint>/``. ``PulledModels`` reads
them with the two methods ``ServingService`` asks of a model catalogue (``list``, ``get``),
so a provider's engine is the node's engine over another catalogue.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from openledger.errors import NotFoundError
from openledger.fsutil import write_atomic

CARD = "model.json"


class PulledModels:
    def __init__(self, root: Path) -> None:
        self.root = root  # <home>/provider
        self.models_dir = root / "models"
        self.bases_dir = root / "bases"

    def model_dir(self, name: str) -> Path:
        return self.models_dir / name

    def save(self, card: dict[str, Any]) -> None:
        """Record a pulled model (its files are already in ``card['adapter_dir']``)."""
        path = self.model_dir(card["name"]) / CARD
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(card, indent=2, sort_keys=True))

    def _all(self) -> list[dict[str, Any]]:
        if not self.models_dir.is_dir():
            return []
        cards = []
        for path in sorted(self.models_dir.glob(f"*/{CARD}")):
            cards.append(json.loads(path.read_text()))
        return sorted(cards, key=lambda c: c["id"])

    def list(self, offset: int = 0, limit: int = 50) -> dict[str, Any]:
        items = self._all()
        return {"items": items[offset : offset + limit], "total": len(items)}

    def get(self, ref: str | int) -> dict[str, Any]:
        for card in self._all():
            if card["name"] == ref or str(card["id"]) == str(ref):
                return card
        raise NotFoundError(
            f"this provider has not pulled a model {ref!r}.",
            field="model",
            value=ref,
            fix="the provider pulls it from its gateway first.",
        )
