"""LedgerService.check_served: a receipt as served, checked as anyone could (by public id)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from openledger.errors import NotFoundError
from openledger.ledger import service as ledger_service
from openledger.ledger.service import LedgerService

OPERATOR = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
PUBLIC = "rc_" + "A" * 22


def _ledger(docs: dict[str, dict[str, Any]]) -> Any:
    # check_served needs only receipt(): a stand-in for the rest of LedgerService
    return SimpleNamespace(receipt=lambda ref: docs[ref])


def test_a_receipt_that_proves_itself_and_one_that_does_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[tuple[Any, str]] = []

    def check(doc: dict[str, Any], operator: str) -> str:
        seen.append((doc, operator))
        return doc.get("problem", "")

    monkeypatch.setattr(ledger_service, "check_served", check)
    good = {"id": PUBLIC}
    out = LedgerService.check_served(_ledger({PUBLIC: good}), PUBLIC, OPERATOR)
    assert out == {"id": PUBLIC, "ok": True, "problem": "", "operator": OPERATOR}
    assert seen == [(good, OPERATOR)]
    bad = {"id": PUBLIC, "problem": "the link hash differs"}
    out = LedgerService.check_served(_ledger({PUBLIC: bad}), PUBLIC, OPERATOR)
    assert out == {
        "id": PUBLIC,
        "ok": False,
        "problem": "the link hash differs",
        "operator": OPERATOR,
    }


def test_only_by_public_id() -> None:
    with pytest.raises(NotFoundError) as err:
        LedgerService.check_served(_ledger({}), "7", OPERATOR)
    assert (err.value.field, err.value.value) == ("receipt", "7")
    assert err.value.message == "No receipt '7' by that public id."
