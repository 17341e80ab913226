"""OpenToken: ERC-20, EIP-2612 permit with real EIP-712 signatures, ERC-5805 votes."""

from __future__ import annotations

from typing import Any

import boa
import pytest
from eth_abi import encode
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from .contract_helpers import DAY, OPEN, START_TIME, SUPPLY, ZERO, addr, events, signer

MAX = 2**256 - 1
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def sign_permit(
    token: Any,
    owner: LocalAccount,
    spender: str,
    value: int,
    deadline: int,
    nonce: int | None = None,
) -> tuple[int, bytes, bytes]:
    _, name, version, chain_id, verifying, _, _ = token.eip712Domain()
    message = {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Permit": [
                {"name": "owner", "type": "address"},
                {"name": "spender", "type": "address"},
                {"name": "value", "type": "uint256"},
                {"name": "nonce", "type": "uint256"},
                {"name": "deadline", "type": "uint256"},
            ],
        },
        "primaryType": "Permit",
        "domain": {
            "name": name,
            "version": version,
            "chainId": chain_id,
            "verifyingContract": str(verifying),
        },
        "message": {
            "owner": owner.address,
            "spender": spender,
            "value": value,
            "nonce": token.nonces(owner.address) if nonce is None else nonce,
            "deadline": deadline,
        },
    }
    signed = owner.sign_message(encode_typed_data(full_message=message))
    return signed.v, signed.r.to_bytes(32, "big"), signed.s.to_bytes(32, "big")


# ---- metadata and deployment --------------------------------------------------------------


def test_metadata(token: Any, system: Any) -> None:
    assert token.name() == "Open"
    assert token.symbol() == "OPEN"
    assert token.decimals() == 18
    assert token.totalSupply() == SUPPLY == 10**27
    assert token.CLOCK_MODE() == "mode=timestamp"
    assert token.clock() == boa.env.timestamp
    holders = [system.deployer, system.alice, system.bob, system.carol]
    assert sum(token.balanceOf(a) for a in holders) == SUPPLY


def test_constructor_mints_once_to_initial_holder(factories: Any) -> None:
    holder = addr("holder")
    t = factories["OpenToken"].deploy(holder)
    (ev,) = events(t, "Transfer")
    assert (ev.sender, ev.receiver, ev.value) == (ZERO, holder, SUPPLY)
    assert t.balanceOf(holder) == SUPPLY
    assert t.totalSupply() == SUPPLY


def test_constructor_rejects_zero_holder(factories: Any) -> None:
    with boa.reverts("OpenToken: initial holder is the zero address"):
        factories["OpenToken"].deploy(ZERO)


def test_no_mint_or_owner_functions(token: Any) -> None:
    names = {item.get("name") for item in token.abi if item.get("type") == "function"}
    for forbidden in ("mint", "set_minter", "is_minter", "burn", "burn_from", "owner"):
        assert forbidden not in names
    expected = {
        "name",
        "symbol",
        "decimals",
        "totalSupply",
        "balanceOf",
        "allowance",
        "transfer",
        "approve",
        "transferFrom",
        "permit",
        "nonces",
        "DOMAIN_SEPARATOR",
        "eip712Domain",
        "clock",
        "CLOCK_MODE",
        "delegates",
        "delegate",
        "getVotes",
        "getPastVotes",
        "getPastTotalSupply",
        "numCheckpoints",
        "checkpoints",
    }
    assert names == expected


# ---- ERC-20 -----------------------------------------------------------------------------


def test_transfer(token: Any, system: Any) -> None:
    a, b = system.alice, system.bob
    before_a, before_b = token.balanceOf(a), token.balanceOf(b)
    with boa.env.prank(a):
        assert token.transfer(b, 7 * OPEN) is True
    (ev,) = events(token, "Transfer")
    assert (ev.sender, ev.receiver, ev.value) == (a, b, 7 * OPEN)
    assert token.balanceOf(a) == before_a - 7 * OPEN
    assert token.balanceOf(b) == before_b + 7 * OPEN


def test_transfer_to_self_and_zero_amount(token: Any, system: Any) -> None:
    a = system.alice
    before = token.balanceOf(a)
    with boa.env.prank(a):
        token.transfer(a, before)
        token.transfer(system.bob, 0)
    assert token.balanceOf(a) == before


def test_transfer_reverts(token: Any, system: Any) -> None:
    a = system.alice
    with boa.env.prank(a), boa.reverts("OpenToken: transfer to the zero address"):
        token.transfer(ZERO, 1)
    with boa.env.prank(a), boa.reverts("OpenToken: transfer amount exceeds balance"):
        token.transfer(system.bob, token.balanceOf(a) + 1)
    with boa.env.prank(addr("nobody")), boa.reverts("OpenToken: transfer amount exceeds balance"):
        token.transfer(system.bob, 1)


def test_approve_and_transfer_from(token: Any, system: Any) -> None:
    a, b, c = system.alice, system.bob, system.carol
    with boa.env.prank(a):
        assert token.approve(b, 10 * OPEN) is True
    (ev,) = events(token, "Approval")
    assert (ev.owner, ev.spender, ev.value) == (a, b, 10 * OPEN)
    assert token.allowance(a, b) == 10 * OPEN
    before = token.balanceOf(c)
    with boa.env.prank(b):
        assert token.transferFrom(a, c, 4 * OPEN) is True
    assert [type(e).__name__ for e in token.get_logs()] == ["Transfer"]
    assert token.allowance(a, b) == 6 * OPEN
    assert token.balanceOf(c) == before + 4 * OPEN
    with boa.env.prank(b), boa.reverts("OpenToken: insufficient allowance"):
        token.transferFrom(a, c, 6 * OPEN + 1)


def test_infinite_allowance_is_not_spent(token: Any, system: Any) -> None:
    a, b = system.alice, system.bob
    with boa.env.prank(a):
        token.approve(b, MAX)
    with boa.env.prank(b):
        token.transferFrom(a, b, 5 * OPEN)
    assert token.allowance(a, b) == MAX


def test_transfer_from_reverts(token: Any, system: Any) -> None:
    a, b = system.alice, system.bob
    with boa.env.prank(b), boa.reverts("OpenToken: insufficient allowance"):
        token.transferFrom(a, b, 1)
    with boa.env.prank(a):
        token.approve(b, MAX)
    with boa.env.prank(b), boa.reverts("OpenToken: transfer amount exceeds balance"):
        token.transferFrom(a, b, token.balanceOf(a) + 1)
    with boa.env.prank(b), boa.reverts("OpenToken: transfer to the zero address"):
        token.transferFrom(a, ZERO, 1)


def test_approve_zero_spender_reverts(token: Any, system: Any) -> None:
    with boa.env.prank(system.alice), boa.reverts("OpenToken: approve to the zero address"):
        token.approve(ZERO, 1)


# ---- EIP-2612 / EIP-712 -----------------------------------------------------------------


def test_domain_separator(token: Any) -> None:
    fields, name, version, chain_id, verifying, salt, extensions = token.eip712Domain()
    assert (fields, name, version) == (b"\x0f", "Open", "1")
    assert verifying == token.address and salt == b"\x00" * 32 and extensions == []
    type_hash = keccak(
        text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
    )
    expected = keccak(
        encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [type_hash, keccak(text="Open"), keccak(text="1"), chain_id, token.address],
        )
    )
    assert token.DOMAIN_SEPARATOR() == expected


def test_permit_with_real_signature(token: Any, system: Any) -> None:
    owner = signer("permit-owner")
    system.fund(owner.address, 100 * OPEN)
    spender = system.bob
    deadline = boa.env.timestamp + DAY
    v, r, s = sign_permit(token, owner, spender, 30 * OPEN, deadline)
    assert token.nonces(owner.address) == 0
    with boa.env.prank(system.carol):  # anyone may submit the signature
        token.permit(owner.address, spender, 30 * OPEN, deadline, v, r, s)
    (ev,) = events(token, "Approval")
    assert (ev.owner, ev.spender, ev.value) == (owner.address, spender, 30 * OPEN)
    assert token.allowance(owner.address, spender) == 30 * OPEN
    assert token.nonces(owner.address) == 1
    with boa.env.prank(spender):
        token.transferFrom(owner.address, spender, 30 * OPEN)
    assert token.balanceOf(owner.address) == 70 * OPEN
    # the same signature cannot be replayed (the nonce moved on)
    with boa.reverts("OpenToken: invalid signature"):
        token.permit(owner.address, spender, 30 * OPEN, deadline, v, r, s)


def test_permit_deadline_is_inclusive(token: Any, system: Any) -> None:
    owner = signer("permit-owner")
    deadline = boa.env.timestamp + 10
    v, r, s = sign_permit(token, owner, system.bob, 1, deadline)
    boa.env.time_travel(seconds=10)
    token.permit(owner.address, system.bob, 1, deadline, v, r, s)
    assert token.allowance(owner.address, system.bob) == 1


def test_permit_reverts(token: Any, system: Any) -> None:
    owner = signer("permit-owner")
    other = signer("someone-else")
    bob = system.bob
    deadline = boa.env.timestamp + DAY
    v, r, s = sign_permit(token, owner, bob, 5, deadline)
    # expired
    boa.env.time_travel(seconds=DAY + 1)
    with boa.reverts("OpenToken: expired deadline"):
        token.permit(owner.address, bob, 5, deadline, v, r, s)
    deadline = boa.env.timestamp + DAY
    v, r, s = sign_permit(token, owner, bob, 5, deadline)
    # a different value, spender, owner or deadline than signed
    with boa.reverts("OpenToken: invalid signature"):
        token.permit(owner.address, bob, 6, deadline, v, r, s)
    with boa.reverts("OpenToken: invalid signature"):
        token.permit(owner.address, system.carol, 5, deadline, v, r, s)
    with boa.reverts("OpenToken: invalid signature"):
        token.permit(other.address, bob, 5, deadline, v, r, s)
    with boa.reverts("OpenToken: invalid signature"):
        token.permit(owner.address, bob, 5, deadline + 1, v, r, s)
    # signed by someone else
    v2, r2, s2 = sign_permit(token, other, bob, 5, deadline, nonce=0)
    with boa.reverts("OpenToken: invalid signature"):
        token.permit(owner.address, bob, 5, deadline, v2, r2, s2)
    # a future nonce
    v3, r3, s3 = sign_permit(token, owner, bob, 5, deadline, nonce=1)
    with boa.reverts("OpenToken: invalid signature"):
        token.permit(owner.address, bob, 5, deadline, v3, r3, s3)
    # the malleable twin (n - s, flipped v) of a valid signature
    s_int = int.from_bytes(s, "big")
    twin_s = (SECP256K1_N - s_int).to_bytes(32, "big")
    with boa.reverts("OpenToken: invalid signature"):
        token.permit(owner.address, bob, 5, deadline, 55 - v, r, twin_s)
    # garbage: ecrecover yields the zero address; owner zero must not pass
    with boa.reverts("OpenToken: invalid signature"):
        token.permit(ZERO, bob, 5, deadline, 29, r, s)
    # the genuine one still works, exactly once
    token.permit(owner.address, bob, 5, deadline, v, r, s)
    assert token.allowance(owner.address, bob) == 5


def test_permit_zero_spender_reverts(token: Any) -> None:
    owner = signer("permit-owner")
    deadline = boa.env.timestamp + DAY
    v, r, s = sign_permit(token, owner, ZERO, 5, deadline)
    with boa.reverts("OpenToken: approve to the zero address"):
        token.permit(owner.address, ZERO, 5, deadline, v, r, s)


# ---- votes ------------------------------------------------------------------------------


def test_no_votes_until_delegation(token: Any, system: Any) -> None:
    a = system.alice
    assert token.delegates(a) == ZERO
    assert token.getVotes(a) == 0
    assert token.numCheckpoints(a) == 0
    with boa.env.prank(a):
        token.delegate(a)
    changed = events(token, "DelegateChanged")
    assert [(e.delegator, e.fromDelegate, e.toDelegate) for e in changed] == [(a, ZERO, a)]
    (votes,) = events(token, "DelegateVotesChanged")
    balance = token.balanceOf(a)
    assert (votes.delegate, votes.previousVotes, votes.newVotes) == (a, 0, balance)
    assert token.delegates(a) == a
    assert token.getVotes(a) == balance
    assert token.numCheckpoints(a) == 1
    assert token.checkpoints(a, 0) == (boa.env.timestamp, balance)


def test_checkpoint_out_of_range(token: Any, system: Any) -> None:
    with boa.reverts("OpenToken: checkpoint out of range"):
        token.checkpoints(system.alice, 0)


def test_transfers_move_delegated_votes(token: Any, system: Any) -> None:
    a, b, c = system.alice, system.bob, system.carol
    with boa.env.prank(a):
        token.delegate(c)  # alice's votes go to carol
    with boa.env.prank(b):
        token.delegate(b)
    va, vb = token.balanceOf(a), token.balanceOf(b)
    assert token.getVotes(c) == va and token.getVotes(b) == vb and token.getVotes(a) == 0
    with boa.env.prank(a):
        token.transfer(b, 100 * OPEN)
    moved = [
        (e.delegate, e.previousVotes, e.newVotes) for e in events(token, "DelegateVotesChanged")
    ]
    assert moved == [(c, va, va - 100 * OPEN), (b, vb, vb + 100 * OPEN)]
    assert token.getVotes(c) == va - 100 * OPEN
    assert token.getVotes(b) == vb + 100 * OPEN
    # transferFrom moves votes as well
    with boa.env.prank(b):
        token.approve(a, MAX)
    with boa.env.prank(a):
        token.transferFrom(b, system.deployer, 50 * OPEN)  # deployer has not delegated
    assert token.getVotes(b) == vb + 50 * OPEN
    # redelegate: the whole balance moves to the new delegatee; to zero drops the votes
    with boa.env.prank(b):
        token.delegate(c)
    assert token.getVotes(b) == 0
    assert token.getVotes(c) == token.balanceOf(a) + token.balanceOf(b)
    with boa.env.prank(a):
        token.delegate(ZERO)
    assert token.getVotes(c) == token.balanceOf(b)
    assert token.delegates(a) == ZERO


def test_same_timestamp_updates_one_checkpoint(token: Any, system: Any) -> None:
    a, b = system.alice, system.bob
    with boa.env.prank(a):
        token.delegate(a)
        token.transfer(b, 1)
        token.transfer(b, 2)
    assert token.numCheckpoints(a) == 1
    boa.env.time_travel(seconds=1)
    with boa.env.prank(a):
        token.transfer(b, 3)
    assert token.numCheckpoints(a) == 2


def test_get_past_votes_binary_search(token: Any, system: Any) -> None:
    a, b = system.alice, system.bob
    t0 = boa.env.timestamp
    with boa.env.prank(a):
        token.delegate(a)
    history = [(boa.env.timestamp, token.getVotes(a))]
    for i in range(1, 12):
        boa.env.time_travel(seconds=100 + i)
        with boa.env.prank(a):
            token.transfer(b, i * OPEN)
        history.append((boa.env.timestamp, token.getVotes(a)))
    assert token.numCheckpoints(a) == 12
    boa.env.time_travel(seconds=1)
    assert token.getPastVotes(a, t0 - 1) == 0
    assert token.getPastVotes(a, 0) == 0
    for k, (ts, votes) in enumerate(history):
        assert token.getPastVotes(a, ts) == votes
        assert token.checkpoints(a, k) == (ts, votes)
        if k + 1 < len(history):  # between two checkpoints: the earlier one counts
            assert token.getPastVotes(a, ts + 1) == votes
            assert token.getPastVotes(a, history[k + 1][0] - 1) == votes
    assert token.getPastVotes(b, history[-1][0]) == 0  # b never delegated


def test_votes_cannot_be_flash_borrowed(token: Any, system: Any) -> None:
    """Votes for a past timepoint ignore tokens received at or after it."""
    a, b = system.alice, system.bob
    with boa.env.prank(b):
        token.delegate(b)
    snapshot = boa.env.timestamp
    boa.env.time_travel(seconds=1)
    with boa.env.prank(a):
        token.transfer(b, 500_000 * OPEN)
    assert token.getPastVotes(b, snapshot) == 1_000_000 * OPEN
    assert token.getVotes(b) == 1_500_000 * OPEN


def test_future_lookup_reverts(token: Any, system: Any) -> None:
    now = token.clock()
    with boa.reverts("OpenToken: future lookup"):
        token.getPastVotes(system.alice, now)
    with boa.reverts("OpenToken: future lookup"):
        token.getPastVotes(system.alice, now + 1000)
    with boa.reverts("OpenToken: future lookup"):
        token.getPastTotalSupply(now)
    assert token.getPastVotes(system.alice, now - 1) == 0


def test_get_past_total_supply(token: Any) -> None:
    boa.env.time_travel(seconds=10)
    assert token.getPastTotalSupply(START_TIME - 1) == 0
    assert token.getPastTotalSupply(START_TIME) == SUPPLY
    assert token.getPastTotalSupply(boa.env.timestamp - 1) == SUPPLY


@pytest.mark.parametrize("amount", [0, 1, 12345 * OPEN])
def test_delegate_with_any_balance(token: Any, system: Any, amount: int) -> None:
    who = addr(f"holder-{amount}")
    if amount:
        system.fund(who, amount)
    with boa.env.prank(who):
        token.delegate(system.carol)
    assert token.getVotes(system.carol) == amount
    assert token.numCheckpoints(system.carol) == (1 if amount else 0)
