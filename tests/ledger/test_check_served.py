"""LedgerService.check_served: a receipt as served, checked as anyone could (by public id)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from openledger.auth.principal import Principal
from openledger.errors import AuthError, ForbiddenError, NotFoundError
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


def test_receipt_for_by_public_id_to_anyone_else_to_its_payer() -> None:
    payer = "0x" + "1" * 40
    doc = {"receipt": {"payer": payer}}
    ledger = SimpleNamespace(receipt=lambda ref: doc)
    assert LedgerService.receipt_for(ledger, PUBLIC, None) is doc
    with pytest.raises(AuthError) as err:
        LedgerService.receipt_for(ledger, "7", None)
    assert err.value.http_status == 401 and "rc_" in err.value.fix
    other = Principal("key", "0x" + "2" * 40, None, frozenset())
    with pytest.raises(ForbiddenError) as denied:
        LedgerService.receipt_for(ledger, "7", other)
    assert "receipt 7" in denied.value.message
    assert LedgerService.receipt_for(ledger, "7", Principal("key", payer, None, frozenset())) is doc
    operator = Principal("operator", OPERATOR, "operator", frozenset())
    assert LedgerService.receipt_for(ledger, "0x" + "ab" * 32, operator) is doc
