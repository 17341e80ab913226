"""ProofService.proof_for: who may read a receipt's attribution proof, and with the tokens."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from openledger.auth.principal import SCOPES, Principal
from openledger.errors import AuthError, ForbiddenError
from openledger.ledger.receipts.ids import is_public_id
from openledger.ledger.verification.proofs import ProofService

PAYER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
OTHER = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
PUBLIC = "rc_" + "A" * 22


class Ledger:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def receipt(self, ref: str) -> dict[str, Any]:
        self.asked.append(ref)
        return {"id": PUBLIC, "receipt": {"payer": PAYER}}


@pytest.fixture
def proofs(monkeypatch: pytest.MonkeyPatch) -> ProofService:
    service = ProofService(SimpleNamespace(ledger=Ledger()))
    monkeypatch.setattr(
        service, "proof", lambda ref, *, with_query: {"ref": ref, "with_query": with_query}
    )
    return service


def _key(address: str, kind: str = "key") -> Principal:
    return Principal(kind=kind, address=address, account=None, scopes=frozenset(SCOPES))


def test_by_public_id_anyone_reads_it_and_only_the_payer_gets_the_tokens(
    proofs: ProofService,
) -> None:
    assert is_public_id(PUBLIC)
    assert proofs.proof_for(PUBLIC, None) == {"ref": PUBLIC, "with_query": False}
    assert proofs.proof_for(PUBLIC, _key(OTHER)) == {"ref": PUBLIC, "with_query": False}
    assert proofs.proof_for(PUBLIC, _key(PAYER.lower())) == {"ref": PUBLIC, "with_query": True}
    assert proofs.proof_for(PUBLIC, _key(OTHER, "operator")) == {"ref": PUBLIC, "with_query": True}


def test_by_sequence_number_only_the_payer_or_the_operator(proofs: ProofService) -> None:
    with pytest.raises(AuthError) as err:
        proofs.proof_for("7", None)
    assert (err.value.field, err.value.value) == ("receipt", "7")
    assert proofs.node.ledger.asked == []  # refused before anything is read
    with pytest.raises(ForbiddenError) as forbidden:
        proofs.proof_for("7", _key(OTHER))
    assert "cannot read for receipt 7" in forbidden.value.message
    # the proof is made for the receipt's public id, with the tokens
    assert proofs.proof_for("7", _key(PAYER)) == {"ref": PUBLIC, "with_query": True}
    assert proofs.proof_for("7", _key(OTHER, "operator")) == {"ref": PUBLIC, "with_query": True}
