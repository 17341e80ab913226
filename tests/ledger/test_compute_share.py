"""A fee served by a compute provider: its compute share is carved from the platform part,
named in the receipt with the provider's statement, and the audit's checks of it."""

from __future__ import annotations

import pytest

from openledger.errors import ValidationError
from openledger.ledger.pricing.fees import Beneficiary, FeeSplit, Members, split_fee
from openledger.ledger.receipts.canonical import ReceiptSigner
from openledger.ledger.receipts.compute import check_compute, output_hash, statement_digest
from openledger.ledger.receipts.content import Charge, ComputeProof, Terms, price_charge

TREASURY, OWNER, PROVIDER = "0x" + "01" * 20, "0x" + "02" * 20, "0x" + "03" * 20
MEMBERS = [Beneficiary(1, 1, "0x" + "04" * 20, records=3, stake=10)]


@pytest.mark.parametrize("amount", [0, 1, 999, 10_000, 123_456_789_012_345_678])
def test_the_compute_share_comes_out_of_the_platform_part(amount: int) -> None:
    split = FeeSplit(1_000, 2_000, 2_000, 5_000, compute_bps=500)
    plain = split_fee(
        amount,
        split,
        treasury=TREASURY,
        owner=OWNER,
        contributions=MEMBERS,
        attribution={1: 600_000_000},
    )
    served = split_fee(
        amount,
        split,
        treasury=TREASURY,
        owner=OWNER,
        contributions=MEMBERS,
        attribution={1: 600_000_000},
        provider=PROVIDER,
    )
    by_role = {p.role: p.amount for p in served.payouts}
    compute = amount * 500 // 10_000
    assert by_role.get("compute", 0) == compute
    assert by_role.get("platform", 0) == plain.parts["platform"] - compute
    assert [p for p in served.payouts if p.role not in ("platform", "compute")] == [
        p for p in plain.payouts if p.role != "platform"
    ]
    assert sum(p.amount for p in served.payouts) + sum(served.pools.values()) == amount


def test_a_compute_share_above_the_platform_share_is_refused() -> None:
    with pytest.raises(ValidationError) as e:
        FeeSplit(1_000, 2_000, 2_000, 5_000, compute_bps=1_001)
    assert e.value.field == "compute_share_bps"


def test_the_receipt_names_the_provider_and_its_signed_statement() -> None:
    key = bytes([5] * 32)
    signer = ReceiptSigner(key)
    job, output = "0x" + "aa" * 32, output_hash([5, 6, 7], "length")
    proof = ComputeProof(signer.address, job, output, signer.sign(statement_digest(job, output)))
    split = FeeSplit(1_000, 2_000, 2_000, 5_000, version=3, compute_bps=400)
    terms = Terms(
        31337, TREASURY, split, TREASURY, "0xset", 1, "m", "ab" * 32, "tiny", OWNER, 10_000, 20_000
    )
    charge = Charge("0x" + "05" * 20, 10, 3, "0xreq", None, "2026-12-07T00:00:00", (), proof)
    priced = price_charge(terms, Members.of(MEMBERS), charge)
    import json

    body = json.loads(priced.text)
    assert body["compute"] == {
        "provider": signer.address,
        "job": job,
        "output": output,
        "signature": proof.signature,
        "bps": 400,
    }
    earned = {k[1]: v for k, v in priced.earnings if k[0] == signer.address}
    assert earned == {"compute": int(body["fee"]) * 400 // 10_000}
    assert check_compute(body["compute"]) == ""
    forged = {
        **body["compute"],
        "signature": ReceiptSigner(bytes([6] * 32)).sign(statement_digest(job, output)),
    }
    assert "not by the provider" in check_compute(forged)
    assert "lacks" in check_compute({"provider": signer.address})
