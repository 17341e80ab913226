"""Prepared wallet writes waiting in the node (web/wallet.py's PendingWrites), without a chain:
bound to the account, single use, expiring, and the hash count checked before any look-up."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from openledger.chain.calls import Call, Plan
from openledger.errors import NotFoundError, ValidationError
from openledger.web.sessions import Session
from openledger.web.wallet import PENDING_TTL_S, PendingWrites

ALICE = Session("0x" + "a1" * 20, None, 31337, 1e12)
BOB = Session("0x" + "b2" * 20, None, 31337, 1e12)


def _plan(finished: list[Any]) -> Plan:
    client: Any = SimpleNamespace(expected_chain_id=31337)
    call = Call(to="0x" + "cc" * 20, data="0x1234", label="delegate", contract="OpenToken")
    return Plan(client, ALICE.address, [call], lambda rs, sig: finished.append(rs) or {},
                what="delegate")  # fmt: skip


def test_an_offer_is_the_unsigned_transactions_for_the_account() -> None:
    book = PendingWrites(clock=lambda: 1000.0)
    offer = book.offer(ALICE, _plan([]))
    assert offer["txs"] == [{"from": ALICE.address, "to": "0x" + "cc" * 20, "data": "0x1234",
                             "value": "0x0", "chainId": hex(31337), "label": "delegate",
                             "contract": "OpenToken"}]  # fmt: skip
    assert offer["sign"] is None and offer["expires"] == 1000 + PENDING_TTL_S


def test_only_the_account_within_the_time_and_with_every_hash() -> None:
    now = [1000.0]
    book = PendingWrites(clock=lambda: now[0])
    finished: list[Any] = []
    pid = book.offer(ALICE, _plan(finished))["pending"]
    with pytest.raises(NotFoundError):  # another account cannot complete alice's write
        book.submit(BOB, pid, ["0x" + "11" * 32], None)
    with pytest.raises(ValidationError, match="takes 1 transaction"):
        book.submit(ALICE, pid, [], None)
    now[0] += PENDING_TTL_S + 1
    with pytest.raises(NotFoundError, match="expired"):
        book.submit(ALICE, pid, ["0x" + "11" * 32], None)
    assert finished == []
