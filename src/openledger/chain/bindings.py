"""Typed wrappers, one class per contract (interface in docs/contracts.md).

Reads return plain Python values or small dataclasses; writes take the signer and return
the mined :class:`TxResult` together with the id the transaction created, where there is one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract

from openledger.chain.client import ChainClient
from openledger.chain.tx import TxResult
from openledger.errors import TransactionRevertedError


def _b32(value: bytes | str) -> bytes:
    raw = bytes.fromhex(value.removeprefix("0x")) if isinstance(value, str) else value
    if len(raw) != 32:
        raise ValueError(f"expected 32 bytes, got {len(raw)}")
    return raw


class _Binding:
    name: str = ""

    def __init__(self, client: ChainClient, address: str, abi: list[dict[str, Any]]) -> None:
        self.client = client
        self.address = Web3.to_checksum_address(address)
        self.contract: Contract = client.contract(address, abi)

    def _call(self, fn: str, *args: Any) -> Any:
        return self.client.call(getattr(self.contract.functions, fn)(*args))

    def _send(self, signer: LocalAccount, fn: str, *args: Any) -> TxResult:
        return self.client.transact(getattr(self.contract.functions, fn)(*args), signer)

    def events(self, result: TxResult, event: str) -> list[dict[str, Any]]:
        """Decoded ``event`` logs of this contract in a mined transaction."""
        ev = getattr(self.contract.events, event)()
        out = []
        for log in result.receipt["logs"]:
            if Web3.to_checksum_address(log["address"]) != self.address:
                continue
            try:
                out.append(dict(ev.process_log(log)["args"]))
            except Exception:  # another event of the same contract
                continue
        return out


class OpenToken(_Binding):
    name = "OpenToken"

    def total_supply(self) -> int:
        return int(self._call("totalSupply"))

    def balance_of(self, account: str) -> int:
        return int(self._call("balanceOf", Web3.to_checksum_address(account)))

    def allowance(self, owner: str, spender: str) -> int:
        return int(
            self._call(
                "allowance", Web3.to_checksum_address(owner), Web3.to_checksum_address(spender)
            )
        )

    def transfer(self, signer: LocalAccount, to: str, amount: int) -> TxResult:
        return self._send(signer, "transfer", Web3.to_checksum_address(to), amount)

    def approve(self, signer: LocalAccount, spender: str, amount: int) -> TxResult:
        return self._send(signer, "approve", Web3.to_checksum_address(spender), amount)

    def ensure_allowance(self, signer: LocalAccount, spender: str, amount: int) -> TxResult | None:
        """Approve ``amount`` for ``spender`` unless the allowance already covers it."""
        if self.allowance(signer.address, spender) >= amount:
            return None
        return self.approve(signer, spender, amount)

    def delegate(self, signer: LocalAccount, delegatee: str) -> TxResult:
        return self._send(signer, "delegate", Web3.to_checksum_address(delegatee))

    def get_votes(self, account: str) -> int:
        return int(self._call("getVotes", Web3.to_checksum_address(account)))

    def get_past_votes(self, account: str, timepoint: int) -> int:
        return int(self._call("getPastVotes", Web3.to_checksum_address(account), timepoint))


@dataclass(frozen=True)
class Params:
    """A snapshot of ProtocolParams; ``version`` changes whenever any value does."""

    version: int
    treasury: str
    platform_bps: int
    owner_bps: int
    stakers_bps: int
    contributors_bps: int
    min_stake: int
    slash_bps: int
    stake_unlock_delay: int
    epoch_length: int
    max_file_bytes: int
    max_files_per_day: int
    escrow_withdraw_delay: int
    root_activation_delay: int
    min_deposit: int
    max_access_price: int = 0
    compute_share_bps: int = 0


SCALAR_PARAMS = (
    "min_stake",
    "slash_bps",
    "stake_unlock_delay",
    "epoch_length",
    "max_file_bytes",
    "max_files_per_day",
    "escrow_withdraw_delay",
    "root_activation_delay",
    "min_deposit",
    "max_access_price",
    "compute_share_bps",
)
FEE_SPLIT = ("platform_bps", "owner_bps", "stakers_bps", "contributors_bps")
# parameters of issue 22 (access fees, compute share), absent on older deployments
LATER_PARAMS = ("max_access_price", "compute_share_bps")


class ProtocolParams(_Binding):
    name = "ProtocolParams"

    def version(self) -> int:
        return int(self._call("version"))

    def get(self, name: str) -> int:
        return int(self._call(name))

    def snapshot(self) -> Params:
        values = {
            n: self._get_or_zero(n) if n in LATER_PARAMS else self.get(n)
            for n in (*FEE_SPLIT, *SCALAR_PARAMS)
        }
        return Params(version=self.version(), treasury=self._call("treasury"), **values)

    def _get_or_zero(self, name: str) -> int:
        """A parameter added after the first deployments: 0 on a deployment without it."""
        try:
            return self.get(name)
        except TransactionRevertedError:
            return 0

    def owner(self) -> str:
        return str(self._call("owner"))

    def set_param(self, signer: LocalAccount, name: str, value: int) -> TxResult:
        return self._send(signer, "setParam", name, value)

    def set_fee_split(
        self, signer: LocalAccount, platform: int, owner: int, stakers: int, contributors: int
    ) -> TxResult:
        return self._send(signer, "setFeeSplit", platform, owner, stakers, contributors)

    def set_treasury(self, signer: LocalAccount, treasury: str) -> TxResult:
        return self._send(signer, "setTreasury", Web3.to_checksum_address(treasury))

    def transfer_ownership(self, signer: LocalAccount, new_owner: str) -> TxResult:
        return self._send(signer, "transfer_ownership", Web3.to_checksum_address(new_owner))


@dataclass(frozen=True)
class Datanet:
    datanet_id: int
    owner: str
    metadata_uri: str
    quorum: int
    min_stake: int
    validator_count: int
    snapshot_count: int
    created_at: int


@dataclass(frozen=True)
class Contribution:
    contribution_id: int
    datanet_id: int
    contributor: str
    root: bytes
    record_count: int
    stake: int
    status: int  # 0 pending, 1 approved, 2 rejected
    approvals: int
    rejections: int
    decided_at: int
    unlock_at: int
    slashed: int
    withdrawn: bool


class DatanetRegistry(_Binding):
    name = "DatanetRegistry"
    PENDING, APPROVED, REJECTED = 0, 1, 2
    EXPORT, TRAIN = 0, 1  # access kinds of payAccess

    def create_datanet(
        self,
        signer: LocalAccount,
        metadata_uri: str,
        validators: list[str],
        quorum: int,
        min_stake: int,
    ) -> tuple[int, TxResult]:
        result = self._send(
            signer,
            "createDatanet",
            metadata_uri,
            [Web3.to_checksum_address(v) for v in validators],
            quorum,
            min_stake,
        )
        return int(self.events(result, "DatanetCreated")[0]["datanet_id"]), result

    def datanet(self, datanet_id: int) -> Datanet:
        return Datanet(datanet_id, *self._call("datanets", datanet_id))

    def datanet_count(self) -> int:
        return int(self._call("datanetCount"))

    def validators(self, datanet_id: int) -> list[str]:
        return list(self._call("getValidators", datanet_id))

    def contribute(
        self,
        signer: LocalAccount,
        datanet_id: int,
        root: bytes | str,
        record_count: int,
        stake: int,
    ) -> tuple[int, TxResult]:
        result = self._send(signer, "contribute", datanet_id, _b32(root), record_count, stake)
        return int(self.events(result, "ContributionSubmitted")[0]["contribution_id"]), result

    def contribution(self, contribution_id: int) -> Contribution:
        return Contribution(contribution_id, *self._call("contributions", contribution_id))

    def review(self, signer: LocalAccount, contribution_id: int, approve: bool) -> TxResult:
        return self._send(signer, "review", contribution_id, approve)

    def withdraw_stake(self, signer: LocalAccount, contribution_id: int) -> TxResult:
        return self._send(signer, "withdrawStake", contribution_id)

    def commit_snapshot(
        self, signer: LocalAccount, datanet_id: int, root: bytes | str, record_count: int, uri: str
    ) -> tuple[int, TxResult]:
        result = self._send(signer, "commitSnapshot", datanet_id, _b32(root), record_count, uri)
        return int(self.events(result, "SnapshotCommitted")[0]["version"]), result

    def snapshot(self, datanet_id: int, version: int) -> tuple[bytes, int, str, int]:
        root, count, uri, committed_at = self._call("snapshots", datanet_id, version)
        return bytes(root), int(count), str(uri), int(committed_at)

    def access_prices(self, datanet_id: int) -> tuple[int, int]:
        """``(export, train)`` in wei as ``payAccess`` charges them now (0: free)."""
        export, train = self._call("accessPrices", datanet_id)
        return int(export), int(train)

    def set_access_prices(
        self, signer: LocalAccount, datanet_id: int, export_price: int, train_price: int
    ) -> TxResult:
        return self._send(signer, "setAccessPrices", datanet_id, export_price, train_price)

    def pay_access(
        self, signer: LocalAccount, datanet_id: int, version: int, kind: int
    ) -> tuple[int, TxResult]:
        result = self._send(signer, "payAccess", datanet_id, version, kind)
        return int(self.events(result, "AccessPaid")[0]["access_id"]), result

    def access_count(self) -> int:
        return int(self._call("accessCount"))

    def distributor(self) -> str:
        return str(self._call("distributor"))


@dataclass(frozen=True)
class Model:
    model_id: int
    owner: str
    base_model: str
    adapter_hash: bytes
    index_hash: bytes
    price_in: int
    price_out: int
    metadata_uri: str
    registered_at: int


class ModelRegistry(_Binding):
    name = "ModelRegistry"

    def register_model(
        self,
        signer: LocalAccount,
        base_model: str,
        adapter_hash: bytes | str,
        snapshot_roots: list[bytes | str],
        index_hash: bytes | str,
        price_in: int,
        price_out: int,
        metadata_uri: str,
    ) -> tuple[int, TxResult]:
        result = self._send(
            signer,
            "registerModel",
            base_model,
            _b32(adapter_hash),
            [_b32(r) for r in snapshot_roots],
            _b32(index_hash),
            price_in,
            price_out,
            metadata_uri,
        )
        return int(self.events(result, "ModelRegistered")[0]["model_id"]), result

    def model(self, model_id: int) -> Model:
        return Model(model_id, *self._call("models", model_id))

    def snapshot_roots(self, model_id: int) -> list[bytes]:
        return [bytes(r) for r in self._call("getSnapshotRoots", model_id)]

    def model_count(self) -> int:
        return int(self._call("modelCount"))

    def set_prices(
        self, signer: LocalAccount, model_id: int, price_in: int, price_out: int
    ) -> TxResult:
        return self._send(signer, "setPrices", model_id, price_in, price_out)

    def set_index_hash(
        self, signer: LocalAccount, model_id: int, index_hash: bytes | str
    ) -> TxResult:
        return self._send(signer, "setIndexHash", model_id, _b32(index_hash))


class InferenceEscrow(_Binding):
    name = "InferenceEscrow"

    def deposit(self, signer: LocalAccount, amount: int) -> TxResult:
        return self._send(signer, "deposit", amount)

    def deposit_for(self, signer: LocalAccount, account: str, amount: int) -> TxResult:
        """Credit ``account`` with ``amount`` paid by ``signer`` (an owner funding an agent)."""
        return self._send(signer, "depositFor", Web3.to_checksum_address(account), amount)

    def balance_of(self, account: str) -> int:
        return int(self._call("balanceOf", Web3.to_checksum_address(account)))

    def request_withdrawal(self, signer: LocalAccount, amount: int) -> TxResult:
        return self._send(signer, "requestWithdrawal", amount)

    def withdraw(self, signer: LocalAccount) -> TxResult:
        return self._send(signer, "withdraw")

    def pending_withdrawal(self, account: str) -> tuple[int, int]:
        amount, ready_at = self._call("pendingWithdrawal", Web3.to_checksum_address(account))
        return int(amount), int(ready_at)

    def collect(
        self, signer: LocalAccount, epoch: int, batch: int, accounts: list[str], amounts: list[int]
    ) -> TxResult:
        return self._send(
            signer,
            "collect",
            epoch,
            batch,
            [Web3.to_checksum_address(a) for a in accounts],
            amounts,
        )

    def is_collected(self, epoch: int, batch: int) -> bool:
        return bool(self._call("isCollected", epoch, batch))

    def total_deposited(self) -> int:
        return int(self._call("totalDeposited"))

    def total_withdrawn(self) -> int:
        return int(self._call("totalWithdrawn"))

    def total_collected(self) -> int:
        return int(self._call("totalCollected"))

    def operator(self) -> str:
        return str(self._call("operator"))

    def set_operator(self, signer: LocalAccount, operator: str) -> TxResult:
        return self._send(signer, "setOperator", Web3.to_checksum_address(operator))


class RewardDistributor(_Binding):
    name = "RewardDistributor"

    def post_root(
        self,
        signer: LocalAccount,
        epoch: int,
        root: bytes | str,
        total: int,
        receipts_head: bytes | str,
    ) -> TxResult:
        return self._send(signer, "postRoot", epoch, _b32(root), total, _b32(receipts_head))

    def disable_root(self, signer: LocalAccount, epoch: int) -> TxResult:
        return self._send(signer, "disableRoot", epoch)

    def operator(self) -> str:
        return str(self._call("operator"))

    def set_operator(self, signer: LocalAccount, operator: str) -> TxResult:
        return self._send(signer, "setOperator", Web3.to_checksum_address(operator))

    def claim(
        self, signer: LocalAccount, account: str, cumulative: int, proof: list[bytes]
    ) -> TxResult:
        return self._send(signer, "claim", Web3.to_checksum_address(account), cumulative, proof)

    def claimed(self, account: str) -> int:
        return int(self._call("claimed", Web3.to_checksum_address(account)))

    def active_root(self) -> bytes:
        return bytes(self._call("activeRoot"))

    def active_epoch(self) -> int:
        return int(self._call("activeEpoch"))

    def pending_root(self) -> tuple[int, bytes, int]:
        epoch, root, ready_at = self._call("pendingRoot")
        return int(epoch), bytes(root), int(ready_at)

    def epochs(self, epoch: int) -> tuple[bytes, int, bytes, int]:
        """``(root, total, receipts_head, posted_at)`` posted for ``epoch`` (zeros if none)."""
        root, total, receipts_head, posted_at = self._call("epochs", epoch)
        return bytes(root), int(total), bytes(receipts_head), int(posted_at)

    def total_claimed(self) -> int:
        return int(self._call("totalClaimed"))

    def owner(self) -> str:
        return str(self._call("owner"))

    def transfer_ownership(self, signer: LocalAccount, new_owner: str) -> TxResult:
        return self._send(signer, "transfer_ownership", Web3.to_checksum_address(new_owner))


@dataclass(frozen=True)
class Proposal:
    """A Governor proposal as stored on chain (states as OpenZeppelin's)."""

    proposal_id: int
    proposer: str
    snapshot: int
    deadline: int
    quorum_bps: int
    against_votes: int
    for_votes: int
    abstain_votes: int
    eta: int
    canceled: bool
    executed: bool
    state: int
    targets: list[str]
    values: list[int]
    calldatas: list[bytes]
    description: str


PROPOSAL_STATES = (
    "pending",
    "active",
    "canceled",
    "defeated",
    "succeeded",
    "queued",
    "expired",
    "executed",
)
VOTE_SUPPORT = {"against": 0, "for": 1, "abstain": 2}


class Governor(_Binding):
    name = "Governor"

    def init_timelock(self, signer: LocalAccount, timelock: str) -> TxResult:
        return self._send(signer, "initTimelock", Web3.to_checksum_address(timelock))

    def setting(self, name: str) -> int:
        """``voting_delay``, ``voting_period``, ``proposal_threshold`` or ``quorum_bps``."""
        return int(self._call(name))

    def timelock(self) -> str:
        return str(self._call("timelock"))

    def guardian(self) -> str:
        return str(self._call("guardian"))

    def proposal_count(self) -> int:
        return int(self._call("proposal_count"))

    def propose(
        self,
        signer: LocalAccount,
        targets: list[str],
        values: list[int],
        calldatas: list[bytes],
        description: str,
    ) -> tuple[int, TxResult]:
        result = self._send(
            signer,
            "propose",
            [Web3.to_checksum_address(t) for t in targets],
            values,
            calldatas,
            description,
        )
        return int(self.events(result, "ProposalCreated")[0]["proposal_id"]), result

    def cast_vote(self, signer: LocalAccount, proposal_id: int, support: int) -> TxResult:
        return self._send(signer, "castVote", proposal_id, support)

    def queue(self, signer: LocalAccount, proposal_id: int) -> TxResult:
        return self._send(signer, "queue", proposal_id)

    def execute(self, signer: LocalAccount, proposal_id: int) -> TxResult:
        return self._send(signer, "execute", proposal_id)

    def cancel(self, signer: LocalAccount, proposal_id: int) -> TxResult:
        return self._send(signer, "cancel", proposal_id)

    def state(self, proposal_id: int) -> int:
        return int(self._call("state", proposal_id))

    def has_voted(self, proposal_id: int, account: str) -> bool:
        return bool(self._call("hasVoted", proposal_id, Web3.to_checksum_address(account)))

    def quorum(self, timepoint: int) -> int:
        return int(self._call("quorum", timepoint))

    def proposal(self, proposal_id: int) -> Proposal:
        raw = self._call("proposals", proposal_id)
        targets, values, calldatas = self._call("getActions", proposal_id)
        state = self.state(proposal_id) if raw[0] != "0x" + "00" * 20 else -1
        return Proposal(
            proposal_id,
            str(raw[0]),
            *(int(x) for x in raw[1:8]),
            bool(raw[8]),
            bool(raw[9]),
            state,
            [str(t) for t in targets],
            [int(v) for v in values],
            [bytes(c) for c in calldatas],
            str(self._call("description", proposal_id)),
        )


class Timelock(_Binding):
    name = "Timelock"

    def min_delay(self) -> int:
        return int(self._call("get_minimum_delay"))

    def is_operation_ready(self, op: bytes) -> bool:
        return bool(self._call("is_operation_ready", _b32(op)))

    def is_operation_done(self, op: bytes) -> bool:
        return bool(self._call("is_operation_done", _b32(op)))

    def timestamp(self, op: bytes) -> int:
        return int(self._call("get_timestamp", _b32(op)))


@dataclass(frozen=True)
class Grant:
    grant_id: int
    applicant: str
    tier: int
    amount: int
    released: int
    next_milestone: int
    status: int  # 0 pending, 1 approved, 2 completed, 3 cancelled
    metadata_uri: str
    applied_at: int
    milestones: list[int]


GRANT_STATUS = ("pending", "approved", "completed", "cancelled")
GRANT_TIERS = ("exploration", "building", "expansion")


class Grants(_Binding):
    name = "Grants"

    def apply(
        self, signer: LocalAccount, tier: int, amount: int, milestones: list[int], uri: str
    ) -> tuple[int, TxResult]:
        result = self._send(signer, "apply", tier, amount, milestones, uri)
        return int(self.events(result, "GrantApplied")[0]["grant_id"]), result

    def grant(self, grant_id: int) -> Grant:
        raw = self._call("grants", grant_id)
        ms = [int(m) for m in self._call("milestones", grant_id)]
        return Grant(
            grant_id, str(raw[0]), *(int(x) for x in raw[1:6]), str(raw[6]), int(raw[7]), ms
        )

    def grant_count(self) -> int:
        return int(self._call("grant_count"))

    def tier_bounds(self, tier: int) -> tuple[int, int]:
        low, high = self._call("tierBounds", tier)
        return int(low), int(high)

    def escrowed(self) -> int:
        return int(self._call("escrowed"))

    def committee(self) -> str:
        return str(self._call("committee"))

    def reference_price(self) -> int:
        return int(self._call("reference_price"))

    def release(self, signer: LocalAccount, grant_id: int) -> TxResult:
        return self._send(signer, "release", grant_id)

    def cancel(self, signer: LocalAccount, grant_id: int) -> TxResult:
        return self._send(signer, "cancel", grant_id)

    def owner(self) -> str:
        return str(self._call("owner"))

    def transfer_ownership(self, signer: LocalAccount, new_owner: str) -> TxResult:
        return self._send(signer, "transfer_ownership", Web3.to_checksum_address(new_owner))


BINDINGS: dict[str, type[_Binding]] = {
    b.name: b
    for b in (
        OpenToken,
        ProtocolParams,
        DatanetRegistry,
        ModelRegistry,
        InferenceEscrow,
        RewardDistributor,
        Governor,
        Timelock,
        Grants,
    )
}


@dataclass(frozen=True)
class Agent:
    agent_id: int
    owner: str
    model_id: int
    config_hash: bytes
    price: int
    active: bool
    depth: int
    name: str
    registered_at: int


class AgentRegistry(_Binding):
    name = "AgentRegistry"

    def register_agent(
        self,
        signer: LocalAccount,
        name: str,
        model_id: int,
        config_hash: bytes | str,
        price: int,
        agent_callees: list[int],
        model_callees: list[int],
    ) -> tuple[int, TxResult]:
        result = self._send(
            signer,
            "registerAgent",
            name,
            model_id,
            _b32(config_hash),
            price,
            list(agent_callees),
            list(model_callees),
        )
        return int(self.events(result, "AgentRegistered")[0]["agent_id"]), result

    def agent(self, agent_id: int) -> Agent:
        return Agent(agent_id, *self._call("agents", agent_id))

    def agent_id_of(self, name: str) -> int:
        return int(self._call("agentIdOf", name))

    def callees(self, agent_id: int) -> tuple[list[int], list[int]]:
        agents, models = self._call("getCallees", agent_id)
        return [int(a) for a in agents], [int(m) for m in models]

    def agent_count(self) -> int:
        return int(self._call("agentCount"))

    def max_depth(self) -> int:
        return int(self._call("MAX_DEPTH"))

    def set_config(self, signer: LocalAccount, agent_id: int, config_hash: bytes | str) -> TxResult:
        return self._send(signer, "setConfig", agent_id, _b32(config_hash))

    def set_price(self, signer: LocalAccount, agent_id: int, price: int) -> TxResult:
        return self._send(signer, "setPrice", agent_id, price)

    def set_active(self, signer: LocalAccount, agent_id: int, active: bool) -> TxResult:
        return self._send(signer, "setActive", agent_id, active)

    def transfer_agent(self, signer: LocalAccount, agent_id: int, new_owner: str) -> TxResult:
        return self._send(signer, "transferAgent", agent_id, Web3.to_checksum_address(new_owner))


@dataclass(frozen=True)
class Provider:
    """A compute provider as ProviderRegistry records it (all zero when not registered)."""

    address: str
    endpoint: str
    stake: int
    active: bool
    unlock_at: int  # when an exited provider's stake unlocks (0 while active)
    registered_at: int  # 0: not registered (never, or withdrawn)
    model_ids: tuple[int, ...]


class ProviderRegistry(_Binding):
    name = "ProviderRegistry"

    def register(
        self, signer: LocalAccount, endpoint: str, model_ids: list[int], stake: int
    ) -> TxResult:
        """Register ``signer`` (the key that signs its compute receipts); the registry pulls
        ``stake`` wei of OPEN with ``transferFrom`` (approve it first)."""
        return self._send(signer, "register", endpoint, [int(m) for m in model_ids], stake)

    def add_stake(self, signer: LocalAccount, amount: int) -> TxResult:
        return self._send(signer, "addStake", amount)

    def set_models(self, signer: LocalAccount, model_ids: list[int]) -> TxResult:
        return self._send(signer, "setModels", [int(m) for m in model_ids])

    def set_endpoint(self, signer: LocalAccount, endpoint: str) -> TxResult:
        return self._send(signer, "setEndpoint", endpoint)

    def exit(self, signer: LocalAccount) -> TxResult:
        return self._send(signer, "exit")

    def withdraw(self, signer: LocalAccount) -> TxResult:
        return self._send(signer, "withdraw")

    def slash(self, signer: LocalAccount, provider: str, amount: int, reason: str) -> TxResult:
        """Move up to ``amount`` of ``provider``'s stake to the treasury (the owner only)."""
        return self._send(signer, "slash", Web3.to_checksum_address(provider), amount, reason)

    def provider(self, address: str) -> Provider:
        account = Web3.to_checksum_address(address)
        endpoint, stake, active, unlock_at, registered_at = self._call("providers", account)
        models = tuple(int(m) for m in self._call("getModels", account))
        return Provider(
            account,
            str(endpoint),
            int(stake),
            bool(active),
            int(unlock_at),
            int(registered_at),
            models,
        )

    def provider_count(self) -> int:
        """How many addresses ever registered (each once)."""
        return int(self._call("providerCount"))

    def provider_at(self, index: int) -> str:
        return str(self._call("providerAt", index))

    def providers(self, *, active_only: bool = False) -> list[Provider]:
        """Every address that ever registered, in order of first registration, as it stands
        now (one that withdrew reads as all zero); ``active_only`` keeps the active ones."""
        out = [self.provider(self.provider_at(i)) for i in range(self.provider_count())]
        return [p for p in out if p.active] if active_only else out

    def serves(self, address: str, model_id: int) -> bool:
        """Whether ``address`` is an active provider that lists ``model_id``."""
        return bool(self._call("serves", Web3.to_checksum_address(address), model_id))

    def min_stake(self) -> int:
        return int(self._call("minStake"))

    def exit_delay(self) -> int:
        return int(self._call("exitDelay"))

    def total_staked(self) -> int:
        return int(self._call("totalStaked"))

    def set_min_stake(self, signer: LocalAccount, min_stake: int) -> TxResult:
        return self._send(signer, "setMinStake", min_stake)

    def set_exit_delay(self, signer: LocalAccount, exit_delay: int) -> TxResult:
        return self._send(signer, "setExitDelay", exit_delay)

    def owner(self) -> str:
        return str(self._call("owner"))

    def transfer_ownership(self, signer: LocalAccount, new_owner: str) -> TxResult:
        return self._send(signer, "transfer_ownership", Web3.to_checksum_address(new_owner))
