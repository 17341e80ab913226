# pragma version ~=0.4.3
# pragma nonreentrancy off
"""
@title DatanetRegistry: datanets, staked contributions, reviews and snapshots
@custom:contract-name DatanetRegistry
@license Apache-2.0
@notice A datanet is a community dataset with an owner, a metadata URI,
        a fixed set of validators, a quorum and a minimum stake.
        Anyone may contribute a batch of records to it: the batch is
        identified by its Merkle root and record count, and carries a
        stake in OPEN pulled with `transferFrom`. Validators review each
        contribution once; `quorum` approvals approve it (the stake is
        withdrawable `stake_unlock_delay` seconds later), `quorum`
        rejections reject it (`slash_bps` of the stake goes to the
        treasury at once, the rest is withdrawable). The datanet owner
        commits versioned snapshot roots of the curated data, and may
        price access to them: a price per snapshot export and per
        training job, at most the governable `max_access_price`.
        `payAccess` pulls the price from the payer straight to the
        RewardDistributor, whose epoch roots pay it out to the
        snapshot's contributors, stakers, owner and treasury.
        Amounts are in wei of OPEN, times in unix seconds.
@dev The slash rate, unlock delay, global stake floor, treasury and
     access price bound are read from `ProtocolParams` when they are
     applied. Who must pay (contributors of a snapshot read it free)
     is the node's policy; the contract charges whoever calls
     `payAccess`.
"""


from ethereum.ercs import IERC20
from .interfaces import IProtocolParams


# @dev The maximum number of validators of a datanet.
_MAX_VALIDATORS: constant(uint256) = 32


# @dev 100% in basis points.
_BPS: constant(uint256) = 10_000


# @dev Contribution status: waiting for reviews.
_PENDING: constant(uint8) = 0


# @dev Contribution status: approved by a quorum.
_APPROVED: constant(uint8) = 1


# @dev Contribution status: rejected by a quorum.
_REJECTED: constant(uint8) = 2


# @dev Access kind: a snapshot export.
_ACCESS_EXPORT: constant(uint8) = 0


# @dev Access kind: a training job on a snapshot.
_ACCESS_TRAIN: constant(uint8) = 1


struct Datanet:
    owner: address
    metadata_uri: String[256]
    quorum: uint256
    min_stake: uint256
    validator_count: uint256
    snapshot_count: uint256
    created_at: uint256


struct Contribution:
    datanet_id: uint256
    contributor: address
    root: bytes32
    record_count: uint256
    stake: uint256
    status: uint8
    approvals: uint256
    rejections: uint256
    decided_at: uint256
    unlock_at: uint256
    slashed: uint256
    withdrawn: bool


struct Snapshot:
    root: bytes32
    record_count: uint256
    uri: String[256]
    committed_at: uint256


# @dev The OPEN token staked by contributors.
token: public(immutable(IERC20))


# @dev The protocol parameters.
params: public(immutable(IProtocolParams))


# @dev Where access fees go (the RewardDistributor).
distributor: public(immutable(address))


# @dev The number of paid accesses; ids run from 1 to `accessCount`.
accessCount: public(uint256)


# @dev The number of datanets; ids run from 1 to `datanetCount`.
datanetCount: public(uint256)


# @dev The number of contributions; ids run from 1 to `contributionCount`.
contributionCount: public(uint256)


# @dev Returns whether an address is a validator of a datanet.
isValidator: public(HashMap[uint256, HashMap[address, bool]])


# @dev Returns whether a validator has reviewed a contribution.
hasReviewed: public(HashMap[uint256, HashMap[address, bool]])


_datanets: HashMap[uint256, Datanet]
_validators: HashMap[uint256, DynArray[address, _MAX_VALIDATORS]]
_contributions: HashMap[uint256, Contribution]
_snapshots: HashMap[uint256, HashMap[uint256, Snapshot]]
# @dev Access prices per datanet: [export, train], in wei of OPEN.
_access_prices: HashMap[uint256, uint256[2]]


# @dev Emitted when a datanet is created.
event DatanetCreated:
    datanet_id: indexed(uint256)
    owner: indexed(address)
    metadata_uri: String[256]
    quorum: uint256
    min_stake: uint256


# @dev Emitted when a contribution is submitted with its stake.
event ContributionSubmitted:
    contribution_id: indexed(uint256)
    datanet_id: indexed(uint256)
    contributor: indexed(address)
    root: bytes32
    record_count: uint256
    stake: uint256


# @dev Emitted for every review.
event ContributionReviewed:
    contribution_id: indexed(uint256)
    validator: indexed(address)
    approve: bool


# @dev Emitted when a review reaches the quorum; `slashed` is the
# amount sent to the treasury (0 when approved).
event ContributionDecided:
    contribution_id: indexed(uint256)
    approved: bool
    slashed: uint256


# @dev Emitted when a contributor withdraws its (remaining) stake.
event StakeWithdrawn:
    contribution_id: indexed(uint256)
    contributor: indexed(address)
    amount: uint256


# @dev Emitted when the datanet owner commits a snapshot.
event SnapshotCommitted:
    datanet_id: indexed(uint256)
    version: indexed(uint256)
    root: bytes32
    record_count: uint256
    uri: String[256]


# @dev Emitted when the datanet owner sets its access prices.
event AccessPricesChanged:
    datanet_id: indexed(uint256)
    export_price: uint256
    train_price: uint256


# @dev Emitted when an access fee is paid to the distributor;
# `kind` is 0 for an export, 1 for a training job.
event AccessPaid:
    access_id: indexed(uint256)
    payer: indexed(address)
    datanet_id: indexed(uint256)
    version: uint256
    kind: uint8
    amount: uint256


@deploy
@payable
def __init__(token_: IERC20, params_: IProtocolParams, distributor_: address):
    """
    @dev The constructor is `payable` to omit the `msg.value`
         check opcodes.
    @param token_ The 20-byte OPEN token address.
    @param params_ The 20-byte ProtocolParams address.
    @param distributor_ The 20-byte RewardDistributor address, where
           access fees are paid.
    """
    assert token_.address != empty(address), "DatanetRegistry: zero address"
    assert params_.address != empty(address), "DatanetRegistry: zero address"
    assert distributor_ != empty(address), "DatanetRegistry: zero address"
    token = token_
    params = params_
    distributor = distributor_


@external
def createDatanet(
    metadata_uri: String[256], validators: DynArray[address, _MAX_VALIDATORS], quorum: uint256, min_stake: uint256
) -> uint256:
    """
    @notice Creates a datanet owned by the caller.
    @dev `1 <= quorum <= len(validators)`; validators must be
         distinct and non-zero. The effective stake floor of a
         contribution is `max(min_stake, params.min_stake())`.
    @param metadata_uri The metadata URI, at most 256 characters.
    @param validators The validator addresses (at most 32).
    @param quorum The 32-byte number of equal reviews that decide.
    @param min_stake The 32-byte datanet's own stake floor in wei.
    @return uint256 The 32-byte new datanet id (from 1).
    """
    assert quorum >= 1 and quorum <= len(validators), "DatanetRegistry: invalid quorum"
    # Ids are bounded by the number of transactions; 2**256 is unreachable.
    datanet_id: uint256 = unsafe_add(self.datanetCount, 1)
    self.datanetCount = datanet_id
    for v: address in validators:
        assert v != empty(address), "DatanetRegistry: zero validator"
        assert not self.isValidator[datanet_id][v], "DatanetRegistry: duplicate validator"
        self.isValidator[datanet_id][v] = True
    self._validators[datanet_id] = validators
    self._datanets[datanet_id] = Datanet(
        owner=msg.sender,
        metadata_uri=metadata_uri,
        quorum=quorum,
        min_stake=min_stake,
        validator_count=len(validators),
        snapshot_count=0,
        created_at=block.timestamp,
    )
    log DatanetCreated(
        datanet_id=datanet_id, owner=msg.sender, metadata_uri=metadata_uri, quorum=quorum, min_stake=min_stake
    )
    return datanet_id


@external
@view
def datanets(datanet_id: uint256) -> (address, String[256], uint256, uint256, uint256, uint256, uint256):
    """
    @notice A datanet's record (all zero for an unknown id).
    @param datanet_id The 32-byte datanet id.
    @return address The 20-byte owner.
    @return String The metadata URI.
    @return uint256 The 32-byte quorum.
    @return uint256 The 32-byte datanet's own stake floor.
    @return uint256 The 32-byte number of validators.
    @return uint256 The 32-byte number of snapshots.
    @return uint256 The 32-byte creation timestamp.
    """
    d: Datanet = self._datanets[datanet_id]
    return d.owner, d.metadata_uri, d.quorum, d.min_stake, d.validator_count, d.snapshot_count, d.created_at


@external
@view
def getValidators(datanet_id: uint256) -> DynArray[address, _MAX_VALIDATORS]:
    """
    @notice The validators of a datanet, in creation order.
    @param datanet_id The 32-byte datanet id.
    @return DynArray The validator addresses.
    """
    return self._validators[datanet_id]


@external
def contribute(datanet_id: uint256, root: bytes32, record_count: uint256, stake: uint256) -> uint256:
    """
    @notice Submits a batch of records to a datanet and stakes on it.
    @dev Pulls `stake` OPEN from the caller with `transferFrom`, so
         the caller must have approved this contract (or used
         `permit`). `stake` must be at least
         `max(datanet.min_stake, params.min_stake())`.
    @param datanet_id The 32-byte datanet id.
    @param root The 32-byte Merkle root of the batch (not zero).
    @param record_count The 32-byte number of records (not zero).
    @param stake The 32-byte stake in wei of OPEN.
    @return uint256 The 32-byte new contribution id (from 1).
    """
    assert datanet_id != 0 and datanet_id <= self.datanetCount, "DatanetRegistry: unknown datanet"
    assert root != empty(bytes32), "DatanetRegistry: empty root"
    assert record_count != 0, "DatanetRegistry: no records"
    stake_floor: uint256 = max(self._datanets[datanet_id].min_stake, staticcall params.min_stake())
    assert stake >= stake_floor, "DatanetRegistry: stake below minimum"
    # Ids are bounded by the number of transactions; 2**256 is unreachable.
    contribution_id: uint256 = unsafe_add(self.contributionCount, 1)
    self.contributionCount = contribution_id
    self._contributions[contribution_id] = Contribution(
        datanet_id=datanet_id,
        contributor=msg.sender,
        root=root,
        record_count=record_count,
        stake=stake,
        status=_PENDING,
        approvals=0,
        rejections=0,
        decided_at=0,
        unlock_at=0,
        slashed=0,
        withdrawn=False,
    )
    assert extcall token.transferFrom(msg.sender, self, stake), "DatanetRegistry: transfer failed"
    log ContributionSubmitted(
        contribution_id=contribution_id,
        datanet_id=datanet_id,
        contributor=msg.sender,
        root=root,
        record_count=record_count,
        stake=stake,
    )
    return contribution_id


@external
@view
def contributions(
    contribution_id: uint256,
) -> (uint256, address, bytes32, uint256, uint256, uint8, uint256, uint256, uint256, uint256, uint256, bool):
    """
    @notice A contribution's record (all zero for an unknown id).
    @param contribution_id The 32-byte contribution id.
    @return uint256 The 32-byte datanet id.
    @return address The 20-byte contributor.
    @return bytes32 The 32-byte batch Merkle root.
    @return uint256 The 32-byte record count.
    @return uint256 The 32-byte stake.
    @return uint8 The status: 0 pending, 1 approved, 2 rejected.
    @return uint256 The 32-byte number of approvals.
    @return uint256 The 32-byte number of rejections.
    @return uint256 The 32-byte decision timestamp (0 while pending).
    @return uint256 The 32-byte timestamp from which the stake is
            withdrawable (0 while pending).
    @return uint256 The 32-byte amount slashed to the treasury.
    @return bool Whether the stake has been withdrawn.
    """
    c: Contribution = self._contributions[contribution_id]
    return (
        c.datanet_id,
        c.contributor,
        c.root,
        c.record_count,
        c.stake,
        c.status,
        c.approvals,
        c.rejections,
        c.decided_at,
        c.unlock_at,
        c.slashed,
        c.withdrawn,
    )


@external
def review(contribution_id: uint256, approve: bool):
    """
    @notice Approves or rejects a pending contribution, once per
            validator of its datanet.
    @dev The review that brings approvals to the quorum approves the
         contribution (`unlock_at = now + stake_unlock_delay`); the one
         that brings rejections to the quorum rejects it, sends
         `stake * slash_bps / 10000` to the treasury and makes the rest
         withdrawable at once.
    @param contribution_id The 32-byte contribution id.
    @param approve Whether the validator approves.
    """
    datanet_id: uint256 = self._contributions[contribution_id].datanet_id
    assert datanet_id != 0, "DatanetRegistry: unknown contribution"
    assert self.isValidator[datanet_id][msg.sender], "DatanetRegistry: not a validator"
    assert self._contributions[contribution_id].status == _PENDING, "DatanetRegistry: not pending"
    assert not self.hasReviewed[contribution_id][msg.sender], "DatanetRegistry: already reviewed"
    self.hasReviewed[contribution_id][msg.sender] = True
    log ContributionReviewed(contribution_id=contribution_id, validator=msg.sender, approve=approve)

    # Only the fields that change are read and written (one slot each).
    quorum: uint256 = self._datanets[datanet_id].quorum
    if approve:
        # Each validator reviews once, so the counter stays <= 32.
        approvals: uint256 = unsafe_add(self._contributions[contribution_id].approvals, 1)
        self._contributions[contribution_id].approvals = approvals
        if approvals == quorum:
            self._contributions[contribution_id].status = _APPROVED
            self._contributions[contribution_id].decided_at = block.timestamp
            self._contributions[contribution_id].unlock_at = (
                block.timestamp + staticcall params.stake_unlock_delay()
            )
            log ContributionDecided(contribution_id=contribution_id, approved=True, slashed=0)
    else:
        # Each validator reviews once, so the counter stays <= 32.
        rejections: uint256 = unsafe_add(self._contributions[contribution_id].rejections, 1)
        self._contributions[contribution_id].rejections = rejections
        if rejections == quorum:
            slashed: uint256 = (
                self._contributions[contribution_id].stake * staticcall params.slash_bps() // _BPS
            )
            self._contributions[contribution_id].status = _REJECTED
            self._contributions[contribution_id].decided_at = block.timestamp
            self._contributions[contribution_id].unlock_at = block.timestamp
            self._contributions[contribution_id].slashed = slashed
            if slashed != 0:
                treasury: address = staticcall params.treasury()
                assert extcall token.transfer(treasury, slashed), "DatanetRegistry: transfer failed"
            log ContributionDecided(contribution_id=contribution_id, approved=False, slashed=slashed)


@external
def withdrawStake(contribution_id: uint256):
    """
    @notice Pays the contributor its stake: all of it once an
            approved contribution has unlocked, or what is left
            after slashing once it was rejected. Only once.
    @param contribution_id The 32-byte contribution id.
    """
    # Fields are read one by one: 7 of the 12 slots are needed.
    assert self._contributions[contribution_id].datanet_id != 0, "DatanetRegistry: unknown contribution"
    contributor: address = self._contributions[contribution_id].contributor
    assert msg.sender == contributor, "DatanetRegistry: not the contributor"
    assert self._contributions[contribution_id].status != _PENDING, "DatanetRegistry: not decided"
    assert not self._contributions[contribution_id].withdrawn, "DatanetRegistry: already withdrawn"
    unlock_at: uint256 = self._contributions[contribution_id].unlock_at
    assert block.timestamp >= unlock_at, "DatanetRegistry: stake locked"
    # `slashed = stake * slash_bps // 10000 <= stake` as `slash_bps <= 10000`.
    amount: uint256 = unsafe_sub(
        self._contributions[contribution_id].stake, self._contributions[contribution_id].slashed
    )
    assert amount != 0, "DatanetRegistry: nothing to withdraw"
    self._contributions[contribution_id].withdrawn = True
    assert extcall token.transfer(msg.sender, amount), "DatanetRegistry: transfer failed"
    log StakeWithdrawn(contribution_id=contribution_id, contributor=msg.sender, amount=amount)


@external
def commitSnapshot(datanet_id: uint256, root: bytes32, record_count: uint256, uri: String[256]) -> uint256:
    """
    @notice Commits a new snapshot of a datanet (its owner only).
    @param datanet_id The 32-byte datanet id.
    @param root The 32-byte Merkle root of the snapshot (not zero).
    @param record_count The 32-byte number of records in it.
    @param uri Where the snapshot can be fetched, at most 256 characters.
    @return uint256 The 32-byte new snapshot version (from 1).
    """
    assert datanet_id != 0 and datanet_id <= self.datanetCount, "DatanetRegistry: unknown datanet"
    assert msg.sender == self._datanets[datanet_id].owner, "DatanetRegistry: not the datanet owner"
    assert root != empty(bytes32), "DatanetRegistry: empty root"
    # Versions are bounded by the number of transactions; 2**256 is unreachable.
    version: uint256 = unsafe_add(self._datanets[datanet_id].snapshot_count, 1)
    self._datanets[datanet_id].snapshot_count = version
    self._snapshots[datanet_id][version] = Snapshot(
        root=root, record_count=record_count, uri=uri, committed_at=block.timestamp
    )
    log SnapshotCommitted(datanet_id=datanet_id, version=version, root=root, record_count=record_count, uri=uri)
    return version


@external
@view
def snapshots(datanet_id: uint256, version: uint256) -> (bytes32, uint256, String[256], uint256):
    """
    @notice A committed snapshot (all zero for an unknown one).
    @param datanet_id The 32-byte datanet id.
    @param version The 32-byte snapshot version (from 1).
    @return bytes32 The 32-byte snapshot Merkle root.
    @return uint256 The 32-byte record count.
    @return String The snapshot URI.
    @return uint256 The 32-byte commit timestamp.
    """
    s: Snapshot = self._snapshots[datanet_id][version]
    return s.root, s.record_count, s.uri, s.committed_at


@external
def setAccessPrices(datanet_id: uint256, export_price: uint256, train_price: uint256):
    """
    @notice Sets the price of one snapshot export and of one training
            job on a snapshot of a datanet (its owner only); 0 makes
            that access free.
    @dev Each price must be at most `params.max_access_price()` at the
         time it is set; `accessPrices` and `payAccess` also cap a
         stored price at the bound in force, so lowering the bound
         lowers every price above it at once.
    @param datanet_id The 32-byte datanet id.
    @param export_price The 32-byte price of an export in wei of OPEN.
    @param train_price The 32-byte price of a training job in wei of OPEN.
    """
    assert datanet_id != 0 and datanet_id <= self.datanetCount, "DatanetRegistry: unknown datanet"
    assert msg.sender == self._datanets[datanet_id].owner, "DatanetRegistry: not the datanet owner"
    bound: uint256 = staticcall params.max_access_price()
    assert export_price <= bound and train_price <= bound, "DatanetRegistry: price above maximum"
    self._access_prices[datanet_id] = [export_price, train_price]
    log AccessPricesChanged(datanet_id=datanet_id, export_price=export_price, train_price=train_price)


@external
@view
def accessPrices(datanet_id: uint256) -> (uint256, uint256):
    """
    @notice What `payAccess` charges now for a datanet (0: free).
    @dev The stored prices capped at `params.max_access_price()`.
    @param datanet_id The 32-byte datanet id.
    @return uint256 The 32-byte price of an export in wei of OPEN.
    @return uint256 The 32-byte price of a training job in wei of OPEN.
    """
    bound: uint256 = staticcall params.max_access_price()
    prices: uint256[2] = self._access_prices[datanet_id]
    return min(prices[0], bound), min(prices[1], bound)


@external
def payAccess(datanet_id: uint256, version: uint256, kind: uint8) -> uint256:
    """
    @notice Pays the access fee of a snapshot for the caller: `kind`
            0 for an export, 1 for a training job. The fee moves from
            the caller to the RewardDistributor with `transferFrom`
            (approve this contract first), and the next epoch root
            pays it out.
    @dev The amount is the price in force (`accessPrices`); the
         caller's allowance bounds what it can be charged. Reverts
         when the access is free, so that nothing is paid by mistake.
    @param datanet_id The 32-byte datanet id.
    @param version The 32-byte committed snapshot version (from 1).
    @param kind The 1-byte access kind: 0 export, 1 training job.
    @return uint256 The 32-byte new access id (from 1).
    """
    assert datanet_id != 0 and datanet_id <= self.datanetCount, "DatanetRegistry: unknown datanet"
    snapshot_count: uint256 = self._datanets[datanet_id].snapshot_count
    assert version != 0 and version <= snapshot_count, "DatanetRegistry: unknown snapshot"
    assert kind == _ACCESS_EXPORT or kind == _ACCESS_TRAIN, "DatanetRegistry: unknown access kind"
    price: uint256 = self._access_prices[datanet_id][convert(kind, uint256)]
    amount: uint256 = min(price, staticcall params.max_access_price())
    assert amount != 0, "DatanetRegistry: access is free"
    # Ids are bounded by the number of transactions; 2**256 is unreachable.
    access_id: uint256 = unsafe_add(self.accessCount, 1)
    self.accessCount = access_id
    assert extcall token.transferFrom(msg.sender, distributor, amount), "DatanetRegistry: transfer failed"
    log AccessPaid(
        access_id=access_id, payer=msg.sender, datanet_id=datanet_id, version=version, kind=kind, amount=amount
    )
    return access_id
