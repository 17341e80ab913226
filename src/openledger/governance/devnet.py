"""Governance shortcuts that only the embedded anvil devnet allows.

The devnet is handed to governance at deploy, like every other network: the Timelock is the
treasury and owns ProtocolParams, RewardDistributor and Grants. Changing a parameter there
takes a proposal, and these helpers make that quick:

- :func:`advance_devnet_clock` moves the chain's clock (``openledger chain advance``), so a
  proposal can be walked through by hand in seconds;
- :func:`pass_proposal` runs calls through the whole path (delegate, propose, vote, queue,
  execute), moving the clock past each wait;
- :func:`as_timelock` sends one call from the Timelock itself (anvil impersonation): the
  effect of an executed proposal without the proposal, for fixtures and benchmarks whose
  subject is something else (a gas figure of the owner's call, say).

Each refuses a chain that is not the devnet (chain id 31337) before sending anything.
"""

from __future__ import annotations

from collections.abc import Sequence

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract.contract import ContractFunction
from web3.exceptions import (
    ContractCustomError,
    ContractLogicError,
    ContractPanicError,
    Web3RPCError,
)

from openledger.chain import bindings as b
from openledger.chain.client import ChainClient
from openledger.chain.deploy import Contracts
from openledger.chain.tx import TxResult
from openledger.config import DEVNET_CHAIN_ID
from openledger.errors import ConflictError, ContractNotDeployedError

#: ETH given to the Timelock for the gas of an impersonated call
_GAS_ETH = 10**18


def require_devnet(client: ChainClient, what: str) -> None:
    """Refuse ``what`` on any chain but the embedded devnet."""
    if client.expected_chain_id != DEVNET_CHAIN_ID:
        raise ConflictError(
            f"{what} works only on the embedded devnet (chain id {DEVNET_CHAIN_ID}); this node "
            f"is configured for chain id {client.expected_chain_id}.",
            field="chain",
            value=client.expected_chain_id,
            fix="on a real network wait for the time to pass, and change parameters by "
            "proposal (`openledger gov propose`).",
        )


def advance_devnet_clock(client: ChainClient, seconds: int) -> int:
    """Move the devnet's clock forward and mine a block; returns the new timestamp."""
    require_devnet(client, "Moving the chain's clock")
    client.rpc("evm_increaseTime", [seconds])
    client.rpc("evm_mine", [])
    return client.timestamp()


def _governance(contracts: Contracts) -> tuple[b.Governor, b.Timelock]:
    if contracts.governor is None or contracts.timelock is None:
        raise ContractNotDeployedError(
            "This deployment has no Governor and Timelock.",
            field="addresses",
            fix="run `openledger gov handover --as operator` to deploy them.",
        )
    return contracts.governor, contracts.timelock


def as_timelock(contracts: Contracts, fn: ContractFunction) -> TxResult:
    """Send ``fn`` from the Timelock (anvil impersonation); reverts are raised as
    ``TransactionRevertedError`` with the contract's reason, as for any other call."""
    client = contracts.client
    require_devnet(client, "Acting as the Timelock")
    _, timelock = _governance(contracts)
    tl = timelock.address
    client.rpc("anvil_impersonateAccount", [tl])
    try:
        if client.eth_balance(tl) < _GAS_ETH // 10:
            client.rpc("anvil_setBalance", [tl, hex(_GAS_ETH)])
        try:
            gas = fn.estimate_gas({"from": tl})
            tx_hash = fn.transact({"from": tl, "gas": int(gas * 1.25) + 10_000})
        except (ContractLogicError, ContractPanicError, ContractCustomError, Web3RPCError) as exc:
            raise client._reverted(fn, exc) from exc
        receipt = client.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60)
    finally:
        client.rpc("anvil_stopImpersonatingAccount", [tl])
    return TxResult(tx_hash="0x" + tx_hash.hex().removeprefix("0x"), receipt=receipt)


def pass_proposal(
    contracts: Contracts,
    proposer: LocalAccount,
    calls: Sequence[ContractFunction],
    description: str = "devnet proposal",
) -> int:
    """Propose ``calls``, vote for them with ``proposer``'s votes, queue and execute them,
    moving the devnet clock past each wait; returns the proposal id.

    ``proposer`` delegates its votes to itself first if it has not; it must hold enough OPEN
    for the threshold and the quorum on its own (the devnet's operator does).
    """
    client = contracts.client
    require_devnet(client, "Passing a proposal by moving the clock")
    gov, _ = _governance(contracts)
    token = contracts.token
    if str(token.contract.functions.delegates(proposer.address).call()) != proposer.address:
        token.delegate(proposer, proposer.address)
    advance_devnet_clock(client, 1)  # votes count from the next second
    targets = [Web3.to_checksum_address(fn.address) for fn in calls]
    datas = [bytes.fromhex(fn._encode_transaction_data().removeprefix("0x")) for fn in calls]
    pid, _ = gov.propose(proposer, targets, [0] * len(calls), datas, description)
    advance_devnet_clock(client, gov.setting("voting_delay") + 1)
    gov.cast_vote(proposer, pid, b.VOTE_SUPPORT["for"])
    advance_devnet_clock(client, gov.setting("voting_period"))
    gov.queue(proposer, pid)
    advance_devnet_clock(client, contracts.timelock.min_delay())  # type: ignore[union-attr]
    gov.execute(proposer, pid)
    return pid
