"""The typed wrappers against the deployed contracts on anvil, one lifecycle per contract."""

import pytest
from eth_utils import keccak

from openledger.chain.bindings import DatanetRegistry
from openledger.chain.merkle import MerkleTree
from openledger.errors import TransactionRevertedError
from openledger.governance.devnet import as_timelock
from openledger.node import Node
from openledger.units import OPEN

pytestmark = pytest.mark.anvil


def advance(node: Node, seconds: int) -> None:
    node.client.rpc("evm_increaseTime", [seconds])
    node.client.rpc("evm_mine")


def test_token_supply_and_dev_grants(chain: Node) -> None:
    token = chain.contracts.token
    assert token.total_supply() == 10**9 * OPEN
    holders = [chain.accounts.address(n) for n in chain.accounts.names()]
    assert sum(token.balance_of(a) for a in holders) == token.total_supply()


def test_params_snapshot_and_owner_change(chain: Node) -> None:
    params = chain.contracts.params
    p = params.snapshot()
    assert (p.platform_bps, p.owner_bps, p.stakers_bps, p.contributors_bps) == (
        1000,
        2000,
        2000,
        5000,
    )
    assert p.min_stake == 10 * OPEN and p.max_files_per_day == 20
    assert p.min_deposit == OPEN
    # handed to governance at deploy: the Timelock owns ProtocolParams and is the treasury
    timelock = chain.contracts.timelock.address
    assert params.owner() == timelock == p.treasury
    operator = chain.accounts.signer("operator")
    with pytest.raises(TransactionRevertedError, match="caller is not the owner"):
        params.set_fee_split(operator, 1000, 1500, 2500, 5000)
    fns = params.contract.functions
    as_timelock(chain.contracts, fns.setFeeSplit(1000, 1500, 2500, 5000))
    q = params.snapshot()
    assert q.version > p.version and q.owner_bps == 1500
    with pytest.raises(TransactionRevertedError, match="must sum to 10000"):
        as_timelock(chain.contracts, fns.setFeeSplit(1000, 1500, 2500, 4999))
    as_timelock(chain.contracts, fns.setParam("min_deposit", 2 * OPEN))
    r = params.snapshot()
    assert r.version == q.version + 1 and r.min_deposit == params.get("min_deposit") == 2 * OPEN


def test_datanet_contribution_review_and_snapshot(chain: Node) -> None:
    c, acc = chain.contracts, chain.accounts
    owner, alice, v1, v2 = (acc.signer(n) for n in ("operator", "alice", "bob", "carol"))
    dn, _ = c.datanets.create_datanet(owner, "ipfs://dn", [v1.address, v2.address], 2, 20 * OPEN)
    assert c.datanets.datanet(dn).quorum == 2 and c.datanets.validators(dn) == [
        v1.address,
        v2.address,
    ]
    c.token.approve(alice, c.datanets.address, 50 * OPEN)
    before = c.token.balance_of(alice.address)
    cid, _ = c.datanets.contribute(alice, dn, keccak(b"records"), 3, 20 * OPEN)
    assert c.token.balance_of(alice.address) == before - 20 * OPEN
    c.datanets.review(v1, cid, True)
    assert c.datanets.contribution(cid).status == DatanetRegistry.PENDING
    c.datanets.review(v2, cid, True)
    contribution = c.datanets.contribution(cid)
    assert contribution.status == DatanetRegistry.APPROVED and contribution.approvals == 2
    with pytest.raises(TransactionRevertedError):
        c.datanets.withdraw_stake(alice, cid)  # still locked
    advance(chain, c.params.snapshot().stake_unlock_delay + 1)
    c.datanets.withdraw_stake(alice, cid)
    assert c.token.balance_of(alice.address) == before
    version, _ = c.datanets.commit_snapshot(owner, dn, keccak(b"snap"), 3, "blob://snap")
    assert version == 1 and c.datanets.snapshot(dn, 1)[:3] == (keccak(b"snap"), 3, "blob://snap")


def test_rejection_slashes_to_treasury(chain: Node) -> None:
    c, acc = chain.contracts, chain.accounts
    owner, alice, v1 = (acc.signer(n) for n in ("operator", "alice", "bob"))
    dn, _ = c.datanets.create_datanet(owner, "ipfs://dn", [v1.address], 1, 10 * OPEN)
    c.token.approve(alice, c.datanets.address, 10 * OPEN)
    cid, _ = c.datanets.contribute(alice, dn, keccak(b"spam"), 1, 10 * OPEN)
    treasury = c.params.snapshot().treasury
    t0 = c.token.balance_of(treasury)
    c.datanets.review(v1, cid, False)
    rejected = c.datanets.contribution(cid)
    assert rejected.status == DatanetRegistry.REJECTED and rejected.slashed == 5 * OPEN
    assert c.token.balance_of(treasury) == t0 + 5 * OPEN


def test_model_registry(chain: Node) -> None:
    c = chain.contracts
    dev = chain.accounts.signer("dave")
    mid, _ = c.models.register_model(
        dev,
        "tiny-llama",
        keccak(b"adapter"),
        [keccak(b"snap")],
        keccak(b"index"),
        10**15,
        2 * 10**15,
        "ipfs://m",
    )
    m = c.models.model(mid)
    assert (m.owner, m.base_model, m.price_out) == (dev.address, "tiny-llama", 2 * 10**15)
    assert c.models.snapshot_roots(mid) == [keccak(b"snap")]
    c.models.set_prices(dev, mid, 1, 2)
    assert c.models.model(mid).price_in == 1
    with pytest.raises(TransactionRevertedError):
        c.models.set_prices(chain.accounts.signer("erin"), mid, 5, 5)


def test_escrow_to_distributor_to_claim(chain: Node) -> None:
    """Deposit, collect an epoch's fees, post a root, claim with an OZ-compatible proof."""
    c, acc = chain.contracts, chain.accounts
    operator, user = acc.signer("operator"), acc.signer("erin")
    c.token.approve(user, c.escrow.address, 100 * OPEN)
    with pytest.raises(TransactionRevertedError) as err:
        c.escrow.deposit(user, OPEN - 1)
    assert "below minimum deposit" in (err.value.reason or "")
    c.escrow.deposit(user, 100 * OPEN)
    assert c.escrow.balance_of(user.address) == 100 * OPEN
    assert c.escrow.total_deposited() == 100 * OPEN
    c.escrow.collect(operator, 1, 0, [user.address], [40 * OPEN])
    assert c.escrow.is_collected(1, 0) and c.escrow.balance_of(user.address) == 60 * OPEN
    assert c.escrow.total_collected() == 40 * OPEN and c.escrow.total_withdrawn() == 0
    with pytest.raises(TransactionRevertedError):
        c.escrow.collect(operator, 1, 0, [user.address], [1])  # same batch twice

    earners = {
        acc.address("alice"): 25 * OPEN,
        acc.address("bob"): 10 * OPEN,
        acc.address("carol"): 5 * OPEN,
    }
    tree = MerkleTree.from_amounts(earners)
    posted = c.rewards.post_root(operator, 1, tree.root, 40 * OPEN, keccak(b"head"))
    posted_at = chain.client.w3.eth.get_block(posted.block_number)["timestamp"]
    assert c.rewards.epochs(1) == (tree.root, 40 * OPEN, keccak(b"head"), posted_at)
    assert c.rewards.epochs(2) == (b"\x00" * 32, 0, b"\x00" * 32, 0)
    alice = acc.signer("alice")
    with pytest.raises(TransactionRevertedError):
        c.rewards.claim(
            alice, alice.address, 25 * OPEN, tree.proof(alice.address)
        )  # not active yet
    advance(chain, c.params.snapshot().root_activation_delay + 1)
    before = c.token.balance_of(alice.address)
    c.rewards.claim(alice, alice.address, 25 * OPEN, tree.proof(alice.address))
    assert c.token.balance_of(alice.address) == before + 25 * OPEN
    assert c.rewards.claimed(alice.address) == 25 * OPEN
    assert c.rewards.total_claimed() == 25 * OPEN
    with pytest.raises(TransactionRevertedError):
        c.rewards.claim(alice, alice.address, 25 * OPEN, tree.proof(alice.address))  # twice
    with pytest.raises(TransactionRevertedError):  # a forged amount fails the proof
        c.rewards.claim(alice, acc.address("bob"), 20 * OPEN, tree.proof(acc.address("bob")))
