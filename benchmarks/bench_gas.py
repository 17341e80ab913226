"""Gas of deployment and of every external call, measured on the pinned anvil.

Claim: a reward claim costs at most 60,000 gas (whole transaction, 21,000 intrinsic
included). Baseline quoted beside it: Balancer's Merkle distributor, 63,200 gas per single
claim (published figure; not re-run here). Writes benchmarks/results/gas.json.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
import socket
import tempfile
from pathlib import Path

from eth_account import Account
from eth_utils import keccak

from openledger.chain.merkle import MerkleTree
from openledger.config import Settings
from openledger.governance.devnet import as_timelock
from openledger.home import init_home
from openledger.node import Node
from openledger.units import OPEN

ROOT = Path(__file__).resolve().parents[1]

BALANCER_CLAIM_GAS = 63_200
TARGET_CLAIM_GAS = 60_000
EARNERS = 16  # leaves in the reward tree: a 4-level proof


def main() -> dict:
    password = "bench"
    with tempfile.TemporaryDirectory() as tmp:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        settings = Settings.load(
            env={"OPENLEDGER_HOME": str(Path(tmp) / "home"), "OPENLEDGER_CHAIN_PORT": str(port)}
        )
        init_home(settings, password)
        node = Node(settings, password_source=lambda: password)
        node.chain_up()
        try:
            result = measure(node)
        finally:
            node.devnet.down()
    out = ROOT / "benchmarks" / "results" / "gas.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


def measure(node: Node) -> dict:
    c, acc = node.contracts, node.accounts
    op = acc.signer("operator")
    alice, bob, carol, dave, erin = (
        acc.signer(n) for n in ("alice", "bob", "carol", "dave", "erin")
    )
    calls: dict[str, int] = {}

    def rec(name: str, result) -> None:
        calls[name] = result.gas_used

    def advance(seconds: int) -> None:
        node.client.rpc("evm_increaseTime", [seconds])
        node.client.rpc("evm_mine")

    p = c.params.snapshot()
    # OpenToken
    rec("OpenToken.transfer", c.token.transfer(alice, carol.address, OPEN))
    rec("OpenToken.approve", c.token.approve(alice, bob.address, OPEN))
    rec(
        "OpenToken.transferFrom",
        node.client.transact(
            c.token.contract.functions.transferFrom(alice.address, dave.address, OPEN), bob
        ),
    )
    rec("OpenToken.delegate", c.token.delegate(alice, alice.address))
    rec("OpenToken.transfer (delegated sender)", c.token.transfer(alice, carol.address, OPEN))
    # ProtocolParams: owned by the Timelock from deploy; the gas of the owner's call itself,
    # sent from the Timelock (devnet impersonation), as an executed proposal makes it
    fns = c.params.contract.functions
    rec("ProtocolParams.setParam", as_timelock(c, fns.setParam("min_stake", p.min_stake)))
    rec("ProtocolParams.setFeeSplit", as_timelock(c, fns.setFeeSplit(1000, 2000, 2000, 5000)))
    # DatanetRegistry
    dn, r = c.datanets.create_datanet(
        op, "ipfs://bench", [bob.address, carol.address], 2, 10 * OPEN
    )
    rec("DatanetRegistry.createDatanet (2 validators)", r)
    c.token.approve(alice, c.datanets.address, 100 * OPEN)
    cid, r = c.datanets.contribute(alice, dn, keccak(b"a"), 100, 10 * OPEN)
    rec("DatanetRegistry.contribute", r)
    rec("DatanetRegistry.review (not deciding)", c.datanets.review(bob, cid, True))
    rec("DatanetRegistry.review (deciding: approve)", c.datanets.review(carol, cid, True))
    cid2, _ = c.datanets.contribute(alice, dn, keccak(b"b"), 5, 10 * OPEN)
    c.datanets.review(bob, cid2, False)
    rec("DatanetRegistry.review (deciding: reject + slash)", c.datanets.review(carol, cid2, False))
    rec(
        "DatanetRegistry.withdrawStake (rejected remainder)", c.datanets.withdraw_stake(alice, cid2)
    )
    advance(p.stake_unlock_delay + 1)
    rec("DatanetRegistry.withdrawStake (approved)", c.datanets.withdraw_stake(alice, cid))
    _, r = c.datanets.commit_snapshot(op, dn, keccak(b"s"), 100, "blob://s")
    rec("DatanetRegistry.commitSnapshot", r)
    # data access fees: the owner prices the datanet, bob pays (approve first), the fee goes
    # to the RewardDistributor; the first payment also creates the access counter's slot
    rec("DatanetRegistry.setAccessPrices", c.datanets.set_access_prices(op, dn, 2 * OPEN, 5 * OPEN))
    c.token.approve(bob, c.datanets.address, 20 * OPEN)
    rec(
        "DatanetRegistry.payAccess (first access of the registry)",
        c.datanets.pay_access(bob, dn, 1, 0)[1],
    )
    rec("DatanetRegistry.payAccess (training job)", c.datanets.pay_access(bob, dn, 1, 1)[1])
    # ModelRegistry
    mid, r = c.models.register_model(
        dave, "tiny", keccak(b"ad"), [keccak(b"s")], keccak(b"ix"), 1, 2, "ipfs://m"
    )
    rec("ModelRegistry.registerModel (1 snapshot root)", r)
    rec("ModelRegistry.setPrices", c.models.set_prices(dave, mid, 3, 4))
    rec("ModelRegistry.setIndexHash", c.models.set_index_hash(dave, mid, keccak(b"ix2")))
    # InferenceEscrow
    c.token.approve(erin, c.escrow.address, 1000 * OPEN)
    rec("InferenceEscrow.deposit", c.escrow.deposit(erin, 500 * OPEN))
    rec(
        "InferenceEscrow.collect (1 account)",
        c.escrow.collect(op, 1, 0, [erin.address], [100 * OPEN]),
    )
    rec("InferenceEscrow.requestWithdrawal", c.escrow.request_withdrawal(erin, 10 * OPEN))
    advance(p.escrow_withdraw_delay + 1)
    rec("InferenceEscrow.withdraw", c.escrow.withdraw(erin))

    # RewardDistributor: EARNERS leaves, alice/bob already hold OPEN, `fresh` holds none.
    fresh = Account.create()
    node.client.transfer_eth(op, fresh.address, 10**18)
    others = [Account.create().address for _ in range(EARNERS - 3)]
    amounts = {alice.address: 10 * OPEN, bob.address: 5 * OPEN, fresh.address: 3 * OPEN}
    amounts.update({a: OPEN for a in others})
    total1 = sum(amounts.values())
    assert total1 <= 100 * OPEN  # the distributor already received 100 OPEN above
    tree = MerkleTree.from_amounts(amounts)
    rec("RewardDistributor.postRoot", c.rewards.post_root(op, 1, tree.root, total1, keccak(b"h1")))
    advance(p.root_activation_delay + 1)
    first_voter = c.rewards.claim(alice, alice.address, 10 * OPEN, tree.proof(alice.address))
    rec("RewardDistributor.claim (first, holder who delegated votes)", first_voter)
    first_holder = c.rewards.claim(bob, bob.address, 5 * OPEN, tree.proof(bob.address))
    rec("RewardDistributor.claim (first, holder of OPEN)", first_holder)
    fresh_claim = c.rewards.claim(fresh, fresh.address, 3 * OPEN, tree.proof(fresh.address))
    rec("RewardDistributor.claim (first, empty account)", fresh_claim)
    # epoch 2: cumulative amounts double; the same accounts claim again (the steady state)
    amounts2 = {a: v * 2 for a, v in amounts.items()}
    total2 = sum(amounts2.values())
    tree2 = MerkleTree.from_amounts(amounts2)
    c.rewards.post_root(op, 2, tree2.root, total2, keccak(b"h2"))
    advance(p.root_activation_delay + 1)
    repeat = c.rewards.claim(bob, bob.address, 10 * OPEN, tree2.proof(bob.address))
    rec("RewardDistributor.claim (repeat, holder of OPEN)", repeat)
    repeat_voter = c.rewards.claim(alice, alice.address, 20 * OPEN, tree2.proof(alice.address))
    rec("RewardDistributor.claim (repeat, holder who delegated votes)", repeat_voter)
    epoch3 = MerkleTree.from_amounts({a: v * 3 for a, v in amounts.items()})
    c.rewards.post_root(op, 3, epoch3.root, sum(v * 3 for v in amounts.values()), keccak(b"h3"))
    disable = c.rewards.contract.functions.disableRoot(3)  # governance's call (the Timelock)
    rec("RewardDistributor.disableRoot", as_timelock(c, disable))

    claim_gas = calls["RewardDistributor.claim (repeat, holder of OPEN)"]
    return {
        "claim": "claim_gas: whole-transaction gas (incl. 21,000 intrinsic) of the steady-state "
        "claim: an account that holds OPEN and claimed in an earlier epoch, "
        f"{len(tree.proof(bob.address))}-level proof. First claims also pay 22,100 gas to "
        "create the account's claimed-amount slot; see the claim_gas_* keys.",
        "claim_gas": claim_gas,
        "claim_gas_first": calls["RewardDistributor.claim (first, holder of OPEN)"],
        "claim_gas_first_empty_account": calls["RewardDistributor.claim (first, empty account)"],
        "claim_gas_repeat_delegated_voter": calls[
            "RewardDistributor.claim (repeat, holder who delegated votes)"
        ],
        "claim_gas_target": TARGET_CLAIM_GAS,
        "baseline": {
            "name": "Balancer Merkle distributor, single claim (published)",
            "claim_gas": BALANCER_CLAIM_GAS,
        },
        "floor_plain_transfer_gas": calls["OpenToken.transfer"],
        "meets_target": claim_gas <= TARGET_CLAIM_GAS,
        "deployment_gas": node.contracts.addresses.gas,
        "call_gas": calls,
        "parameters": {
            "earners_in_tree": EARNERS,
            "proof_len": len(tree.proof(bob.address)),
            "chain": "anvil 1.7.1",
        },
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": _cpus(),
        },
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def _cpus() -> int:
    import os

    return os.cpu_count() or 0


if __name__ == "__main__":
    main()
