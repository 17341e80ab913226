"""RewardDistributor: root posting and activation delay, disabling, cumulative claims, gas."""

from __future__ import annotations

from typing import Any

import boa
import pytest

from .contract_helpers import (
    HOUR,
    OPEN,
    ZERO,
    ZERO32,
    MerkleTree,
    addr,
    deploy_system,
    events,
    h,
)

FUNDS = 10_000 * OPEN


@pytest.fixture
def funded(system: Any) -> Any:
    """The distributor holding FUNDS (as the escrow would send it)."""
    system.fund(system.distributor.address, FUNDS)
    return system.distributor


def post(system: Any, epoch: int, tree: MerkleTree, total: int | None = None) -> None:
    with boa.env.prank(system.operator):
        system.distributor.postRoot(
            epoch, tree.root, tree.total if total is None else total, h(f"head-{epoch}")
        )


def post_active(system: Any, epoch: int, tree: MerkleTree) -> None:
    post(system, epoch, tree)
    boa.env.time_travel(seconds=HOUR)


def claim(system: Any, tree: MerkleTree, account: str, caller: str | None = None) -> None:
    with boa.env.prank(caller or account):
        system.distributor.claim(account, tree.entries[account], tree.proof(account))


def tree_for(system: Any, a: int, b: int, c: int = 1) -> MerkleTree:
    return MerkleTree({system.alice: a, system.bob: b, system.carol: c, addr("dave"): 5})


# ---- deployment and roles -----------------------------------------------------------------


def test_constructor(factories: Any, system: Any, distributor: Any) -> None:
    assert distributor.token() == system.token.address
    assert distributor.params() == system.params.address
    assert distributor.operator() == system.operator
    assert distributor.owner() == system.deployer
    assert distributor.activeRoot() == ZERO32
    assert distributor.activeEpoch() == 0
    assert distributor.pendingRoot() == (0, ZERO32, 0)
    assert distributor.totalClaimed() == 0
    t, p, o = system.token.address, system.params.address, system.operator
    for args in ((ZERO, p, o), (t, ZERO, o), (t, p, ZERO)):
        with boa.reverts("RewardDistributor: zero address"):
            factories["RewardDistributor"].deploy(*args)


def test_set_operator(distributor: Any, system: Any) -> None:
    new = addr("new-operator")
    with boa.env.prank(system.operator), boa.reverts("RewardDistributor: caller is not the owner"):
        distributor.setOperator(new)
    with boa.env.prank(system.deployer):
        with boa.reverts("RewardDistributor: zero address"):
            distributor.setOperator(ZERO)
        distributor.setOperator(new)
    (ev,) = events(distributor, "OperatorChanged")
    assert (ev.old, ev.new) == (system.operator, new)
    assert distributor.operator() == new


def test_transfer_ownership(distributor: Any, system: Any) -> None:
    timelock = addr("timelock")
    with boa.env.prank(system.alice), boa.reverts("RewardDistributor: caller is not the owner"):
        distributor.transfer_ownership(timelock)
    with boa.env.prank(system.deployer):
        with boa.reverts("RewardDistributor: new owner is the zero address"):
            distributor.transfer_ownership(ZERO)
        distributor.transfer_ownership(timelock)
    assert distributor.owner() == timelock
    with boa.env.prank(system.deployer), boa.reverts("RewardDistributor: caller is not the owner"):
        distributor.setOperator(system.alice)


# ---- posting ------------------------------------------------------------------------------


def test_post_root_and_activation(funded: Any, system: Any) -> None:
    tree = tree_for(system, 10 * OPEN, 20 * OPEN)
    with boa.env.prank(system.operator):
        funded.postRoot(1, tree.root, tree.total, h("head-1"))
    (ev,) = events(funded, "RootPosted")
    ready_at = boa.env.timestamp + HOUR
    assert (ev.epoch, ev.root, ev.total, ev.receipts_head, ev.ready_at) == (
        1,
        tree.root,
        tree.total,
        h("head-1"),
        ready_at,
    )
    assert funded.epochs(1) == (tree.root, tree.total, h("head-1"), boa.env.timestamp)
    assert funded.pendingRoot() == (1, tree.root, ready_at)
    assert funded.activeRoot() == ZERO32 and funded.activeEpoch() == 0
    with boa.reverts("RewardDistributor: no active root"):
        claim(system, tree, system.alice)
    boa.env.time_travel(seconds=HOUR - 1)
    assert funded.activeRoot() == ZERO32
    boa.env.time_travel(seconds=1)
    assert funded.pendingRoot() == (0, ZERO32, 0)
    assert funded.activeRoot() == tree.root and funded.activeEpoch() == 1
    claim(system, tree, system.alice)
    assert funded.claimed(system.alice) == 10 * OPEN


def test_post_root_reverts(funded: Any, system: Any) -> None:
    tree = tree_for(system, 10 * OPEN, 20 * OPEN)
    with boa.env.prank(system.alice), boa.reverts("RewardDistributor: caller is not the operator"):
        funded.postRoot(1, tree.root, tree.total, ZERO32)
    with boa.env.prank(system.operator):
        with boa.reverts("RewardDistributor: empty root"):
            funded.postRoot(1, ZERO32, 0, ZERO32)
        with boa.reverts("RewardDistributor: total exceeds funds"):
            funded.postRoot(1, tree.root, FUNDS + 1, ZERO32)
        funded.postRoot(5, tree.root, FUNDS, ZERO32)  # exactly what was received is fine
        with boa.reverts("RewardDistributor: root pending"):
            funded.postRoot(6, tree.root, tree.total, ZERO32)
    boa.env.time_travel(seconds=HOUR)
    with boa.env.prank(system.operator):
        for stale in (0, 4, 5):
            with boa.reverts("RewardDistributor: epoch not increasing"):
                funded.postRoot(stale, tree.root, tree.total, ZERO32)
        funded.postRoot(7, tree.root, tree.total, ZERO32)  # gaps are allowed
    assert funded.activeEpoch() == 5 and funded.pendingRoot()[0] == 7


def test_first_epoch_may_be_zero(funded: Any, system: Any) -> None:
    tree = tree_for(system, OPEN, OPEN)
    post_active(system, 0, tree)
    assert funded.activeEpoch() == 0 and funded.activeRoot() == tree.root
    with boa.env.prank(system.operator), boa.reverts("RewardDistributor: epoch not increasing"):
        funded.postRoot(0, tree.root, tree.total, ZERO32)


def test_total_counts_what_was_already_claimed(funded: Any, token: Any, system: Any) -> None:
    """received = balance + totalClaimed, so claims do not shrink the allowed total."""
    tree = MerkleTree({system.alice: FUNDS, system.bob: 0})
    post_active(system, 1, tree)
    claim(system, tree, system.alice)
    assert token.balanceOf(funded.address) == 0
    assert funded.totalClaimed() == FUNDS
    with boa.env.prank(system.operator):
        with boa.reverts("RewardDistributor: total exceeds funds"):
            funded.postRoot(2, tree.root, FUNDS + 1, ZERO32)
        funded.postRoot(2, tree.root, FUNDS, ZERO32)


def test_activation_delay_is_governable(funded: Any, system: Any) -> None:
    with boa.env.prank(system.deployer):
        system.params.setParam("root_activation_delay", 0)
    tree = tree_for(system, OPEN, OPEN)
    post(system, 1, tree)
    assert funded.activeRoot() == tree.root
    claim(system, tree, system.alice)
    with boa.env.prank(system.deployer):
        system.params.setParam("root_activation_delay", 2**129)
    with boa.env.prank(system.operator), boa.reverts("RewardDistributor: delay too long"):
        funded.postRoot(2, tree.root, tree.total, ZERO32)


# ---- disabling ------------------------------------------------------------------------------


def test_disable_root(funded: Any, system: Any) -> None:
    good = tree_for(system, 10 * OPEN, 20 * OPEN)
    bad = tree_for(system, 5_000 * OPEN, 20 * OPEN)
    post_active(system, 1, good)
    post(system, 2, bad)
    with boa.env.prank(system.operator), boa.reverts("RewardDistributor: caller is not the owner"):
        funded.disableRoot(2)
    with boa.env.prank(system.deployer):
        with boa.reverts("RewardDistributor: not the pending epoch"):
            funded.disableRoot(1)
        funded.disableRoot(2)
    (ev,) = events(funded, "RootDisabled")
    assert ev.epoch == 2
    assert funded.pendingRoot() == (0, ZERO32, 0)
    assert funded.epochs(2) == (ZERO32, 0, ZERO32, 0)
    boa.env.time_travel(seconds=2 * HOUR)
    assert funded.activeRoot() == good.root and funded.activeEpoch() == 1
    with boa.reverts("RewardDistributor: invalid proof"):
        claim(system, bad, system.alice)
    claim(system, good, system.alice)
    # the disabled epoch can be posted again, corrected
    fixed = tree_for(system, 12 * OPEN, 20 * OPEN)
    post_active(system, 2, fixed)
    claim(system, fixed, system.alice)
    assert funded.claimed(system.alice) == 12 * OPEN


def test_disable_reverts(funded: Any, system: Any) -> None:
    tree = tree_for(system, OPEN, OPEN)
    with boa.env.prank(system.deployer), boa.reverts("RewardDistributor: not the pending epoch"):
        funded.disableRoot(0)
    post(system, 3, tree)
    boa.env.time_travel(seconds=HOUR)
    with boa.env.prank(system.deployer), boa.reverts("RewardDistributor: root already active"):
        funded.disableRoot(3)


def test_disable_first_root_allows_reposting_any_epoch(funded: Any, system: Any) -> None:
    tree = tree_for(system, OPEN, OPEN)
    post(system, 3, tree)
    with boa.env.prank(system.deployer):
        funded.disableRoot(3)
    post_active(system, 0, tree)
    assert funded.activeEpoch() == 0


# ---- claims ---------------------------------------------------------------------------------


def test_claim(funded: Any, token: Any, system: Any) -> None:
    a = system.alice
    tree = tree_for(system, 10 * OPEN, 20 * OPEN)
    post_active(system, 1, tree)
    before = token.balanceOf(a)
    claim(system, tree, a, caller=system.carol)  # anyone may claim for anyone
    (ev,) = events(funded, "Claimed")
    assert (ev.account, ev.amount, ev.cumulative) == (a, 10 * OPEN, 10 * OPEN)
    assert token.balanceOf(a) == before + 10 * OPEN
    assert funded.claimed(a) == 10 * OPEN
    assert funded.totalClaimed() == 10 * OPEN
    with boa.reverts("RewardDistributor: nothing to claim"):
        claim(system, tree, a)


def test_cumulative_claims_pay_the_difference(funded: Any, token: Any, system: Any) -> None:
    a, b = system.alice, system.bob
    t1 = tree_for(system, 10 * OPEN, 20 * OPEN)
    post_active(system, 1, t1)
    claim(system, t1, a)
    t2 = tree_for(system, 25 * OPEN, 30 * OPEN)
    post_active(system, 2, t2)
    # the old root's proof no longer works once the new root is in force
    with boa.reverts("RewardDistributor: invalid proof"):
        claim(system, t1, b)
    before_a, before_b = token.balanceOf(a), token.balanceOf(b)
    claim(system, t2, a)
    claim(system, t2, b)  # bob skipped epoch 1 and loses nothing
    assert token.balanceOf(a) == before_a + 15 * OPEN
    assert token.balanceOf(b) == before_b + 30 * OPEN
    assert funded.totalClaimed() == 55 * OPEN


def test_claim_under_a_ready_root_before_and_after_promotion(funded: Any, system: Any) -> None:
    t1 = tree_for(system, 10 * OPEN, 20 * OPEN)
    t2 = tree_for(system, 11 * OPEN, 21 * OPEN)
    post_active(system, 1, t1)  # ready, not yet promoted by a later postRoot
    claim(system, t1, system.alice)
    post(system, 2, t2)  # promotes epoch 1; epoch 2 pending
    assert funded.activeEpoch() == 1 and funded.activeRoot() == t1.root
    claim(system, t1, system.bob)
    with boa.reverts("RewardDistributor: invalid proof"):
        claim(system, t2, system.alice)
    boa.env.time_travel(seconds=HOUR)
    claim(system, t2, system.alice)
    assert funded.claimed(system.alice) == 11 * OPEN


def test_claim_reverts(funded: Any, system: Any) -> None:
    a, b = system.alice, system.bob
    tree = tree_for(system, 10 * OPEN, 20 * OPEN)
    with boa.reverts("RewardDistributor: no active root"):
        claim(system, tree, a)
    post_active(system, 1, tree)
    proof = tree.proof(a)
    with boa.reverts("RewardDistributor: invalid proof"):
        funded.claim(a, 10 * OPEN + 1, proof)  # more than the leaf says
    with boa.reverts("RewardDistributor: invalid proof"):
        funded.claim(b, 10 * OPEN, proof)  # someone else's leaf
    with boa.reverts("RewardDistributor: invalid proof"):
        funded.claim(a, 10 * OPEN, proof[:-1])
    with boa.reverts("RewardDistributor: invalid proof"):
        funded.claim(a, 10 * OPEN, [*proof, h("junk")])
    with boa.reverts("RewardDistributor: invalid proof"):
        funded.claim(a, 10 * OPEN, [])
    with boa.reverts("RewardDistributor: nothing to claim"):
        funded.claim(a, 0, proof)
    # an inner node is not a leaf (leaves are double-hashed)
    inner = tree.levels[1][0]
    with boa.reverts("RewardDistributor: invalid proof"):
        funded.claim(a, int.from_bytes(inner, "big"), tree.levels[1][1:2])
    claim(system, tree, a)
    with boa.reverts("RewardDistributor: nothing to claim"):
        claim(system, tree, a)


def test_zero_entitlement_cannot_claim(funded: Any, system: Any) -> None:
    tree = MerkleTree({system.alice: 0, system.bob: OPEN})
    post_active(system, 1, tree)
    with boa.reverts("RewardDistributor: nothing to claim"):
        claim(system, tree, system.alice)


def test_single_leaf_tree_has_empty_proof(funded: Any, system: Any) -> None:
    tree = MerkleTree({system.alice: OPEN})
    assert tree.proof(system.alice) == []
    post_active(system, 1, tree)
    claim(system, tree, system.alice)
    assert funded.claimed(system.alice) == OPEN


def test_claim_beyond_funds_reverts_in_the_token(funded: Any, system: Any) -> None:
    """A root may promise more than is left only if others already took theirs; the token
    refuses the overdraft and nothing is recorded."""
    tree = MerkleTree({system.alice: FUNDS, system.bob: FUNDS})
    with boa.env.prank(system.operator):
        funded.postRoot(1, tree.root, FUNDS, ZERO32)  # the operator lies about the total
    boa.env.time_travel(seconds=HOUR)
    claim(system, tree, system.alice)
    with boa.reverts("OpenToken: transfer amount exceeds balance"):
        claim(system, tree, system.bob)
    assert funded.claimed(system.bob) == 0
    assert funded.totalClaimed() == FUNDS


def test_claim_moves_delegated_votes(funded: Any, token: Any, system: Any) -> None:
    a = system.alice
    with boa.env.prank(a):
        token.delegate(a)
    votes = token.getVotes(a)
    tree = tree_for(system, 10 * OPEN, 20 * OPEN)
    post_active(system, 1, tree)
    claim(system, tree, a)
    assert token.getVotes(a) == votes + 10 * OPEN


def test_deep_tree(funded: Any, system: Any) -> None:
    accounts = [addr(f"acct-{i}") for i in range(100)]
    tree = MerkleTree({a: (i + 1) * OPEN for i, a in enumerate(accounts)})
    post_active(system, 1, tree)
    for a in (accounts[0], accounts[63], accounts[64], accounts[99]):
        claim(system, tree, a)
        assert funded.claimed(a) == tree.entries[a]
    assert len(tree.proof(accounts[0])) == 7


# ---- gas ------------------------------------------------------------------------------------


def _calldata_gas(data: bytes) -> int:
    return sum(4 if byte == 0 else 16 for byte in data)


def measure_claim_gas(factories: Any) -> tuple[int, int]:
    """Transaction gas of a first and a repeat claim by an account already holding OPEN,
    with a 4-level proof (16 leaves), in a fresh EVM whose journal is committed before each
    claim so cold/warm access and SSTORE costs are those of a real transaction."""
    with boa.swap_env(boa.Env()):
        system = deploy_system(factories)
        accounts = [system.alice] + [addr(f"leaf-{i}") for i in range(15)]
        system.fund(system.distributor.address, FUNDS)
        state = boa.env.evm.vm.state
        results = []
        for epoch, base in enumerate((10 * OPEN, 25 * OPEN), start=1):
            tree = MerkleTree({a: base + i for i, a in enumerate(accounts)})
            post_active(system, epoch, tree)
            args = (system.alice, tree.entries[system.alice], tree.proof(system.alice))
            assert len(args[2]) == 4
            state.lock_changes()
            boa.env._reset_access_counters()
            with boa.env.prank(system.bob):
                system.distributor.claim(*args)
            computation = system.distributor._computation
            calldata = system.distributor.claim.prepare_calldata(*args)
            results.append(21_000 + _calldata_gas(calldata) + computation.get_gas_used())
        return results[0], results[1]


def test_claim_gas(factories: Any) -> None:
    first, repeat = measure_claim_gas(factories)
    print(f"claim gas: first {first}, repeat {repeat}")
    # a first claim pays 20,000 for the account's fresh `claimed` slot
    assert first <= 75_000
    assert repeat <= 60_000


def test_token_returning_false(factories: Any, false_token: Any, system: Any) -> None:
    with boa.env.prank(addr("false-token-distributor-deployer")):  # a fresh address for it
        dist = factories["RewardDistributor"].deploy(
            false_token.address, system.params.address, system.operator
        )
    false_token.mint(dist.address, FUNDS)
    tree = MerkleTree({system.alice: OPEN, system.bob: OPEN})
    with boa.env.prank(system.operator):
        dist.postRoot(1, tree.root, tree.total, ZERO32)
    boa.env.time_travel(seconds=HOUR)
    false_token.set_fail(True)
    with boa.reverts("RewardDistributor: transfer failed"):
        dist.claim(system.alice, OPEN, tree.proof(system.alice))
    assert dist.claimed(system.alice) == 0 and dist.totalClaimed() == 0
