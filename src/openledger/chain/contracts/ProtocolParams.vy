# pragma version ~=0.4.3
# pragma nonreentrancy off
"""
@title ProtocolParams: the governable numbers of OpenLedger
@custom:contract-name ProtocolParams
@license Apache-2.0
@notice One place for every number governance may change: the fee
        split, the stake floor and slash rate, the delays, the
        upload caps, the inference-credit deposit floor, the bound
        on datanet access prices and the compute providers' share,
        plus the treasury address. The other contracts read these at
        call time. The owner is the deployer at first and the
        governance Timelock later (`transfer_ownership`).
        `version` increases on every change so that off-chain
        clients can cache the values and refresh only when it moves.
        Basis points (bps) are out of 10,000.
"""


from .interfaces import IProtocolParams
implements: IProtocolParams


from snekmate.auth import ownable as ow
initializes: ow


exports: ow.owner


# @dev 100% in basis points.
_BPS: constant(uint256) = 10_000


# @dev Share of each fee paid to the platform (treasury), in bps.
platform_bps: public(uint256)


# @dev Share of each fee paid to the model owner, in bps.
owner_bps: public(uint256)


# @dev Share of each fee paid to the stakers, in bps.
stakers_bps: public(uint256)


# @dev Share of each fee paid to the data contributors, in bps.
contributors_bps: public(uint256)


# @dev Floor for the stake of any contribution, in wei of OPEN.
min_stake: public(uint256)


# @dev Share of a rejected contribution's stake sent to the treasury, in bps.
slash_bps: public(uint256)


# @dev Seconds after approval before a stake can be withdrawn.
stake_unlock_delay: public(uint256)


# @dev Length of a settlement epoch, in seconds.
epoch_length: public(uint256)


# @dev Upload cap per file, in bytes.
max_file_bytes: public(uint256)


# @dev Upload cap per contributor per day, in files.
max_files_per_day: public(uint256)


# @dev Seconds between an inference-credit withdrawal request and the withdrawal.
escrow_withdraw_delay: public(uint256)


# @dev Floor for one inference-credit deposit, in wei of OPEN.
min_deposit: public(uint256)


# @dev Seconds between posting a reward root and it becoming claimable.
root_activation_delay: public(uint256)


# @dev Bound on a datanet's access price (per export or training job), in wei of OPEN.
max_access_price: public(uint256)


# @dev Share of a fee a compute provider earns when it serves, in bps of the
# fee; carved from the platform share, so never above `platform_bps`.
compute_share_bps: public(uint256)


# @dev The address receiving the platform share and slashed stakes.
treasury: public(address)


# @dev Incremented on every change of a value above.
version: public(uint256)


# @dev Emitted when `setParam` changes a single value.
event ParamChanged:
    name: String[32]
    old_value: uint256
    new_value: uint256


# @dev Emitted when the fee split changes.
event FeeSplitChanged:
    platform: uint256
    owner: uint256
    stakers: uint256
    contributors: uint256


# @dev Emitted when the treasury changes.
event TreasuryChanged:
    old: indexed(address)
    new: indexed(address)


@deploy
@payable
def __init__(treasury_: address):
    """
    @dev Sets the defaults and makes the deployer the owner.
         The constructor is `payable` to omit the `msg.value`
         check opcodes.
    @param treasury_ The 20-byte treasury address (not zero).
    """
    assert treasury_ != empty(address), "ProtocolParams: treasury is the zero address"
    ow.__init__()
    self.treasury = treasury_
    self.platform_bps = 1_000
    self.owner_bps = 2_000
    self.stakers_bps = 2_000
    self.contributors_bps = 5_000
    self.min_stake = 10 * 10**18
    self.slash_bps = 5_000
    self.stake_unlock_delay = 7 * 86_400
    self.epoch_length = 86_400
    self.max_file_bytes = 10_000_000
    self.max_files_per_day = 20
    self.escrow_withdraw_delay = 86_400
    self.min_deposit = 1 * 10**18
    self.root_activation_delay = 3_600
    self.max_access_price = 1_000 * 10**18
    self.compute_share_bps = 0
    self.version = 1


@external
def setParam(name: String[32], new_value: uint256):
    """
    @notice Sets one named parameter (owner only).
    @dev The names are `min_stake`, `slash_bps` (at most 10,000),
         `stake_unlock_delay`, `epoch_length`, `max_file_bytes`,
         `max_files_per_day`, `escrow_withdraw_delay`,
         `min_deposit`, `root_activation_delay`, `max_access_price`
         and `compute_share_bps` (at most `platform_bps`). The fee
         split changes only through `setFeeSplit`, so that it always
         sums to 10,000.
    @param name The parameter name, at most 32 characters.
    @param new_value The 32-byte new value.
    """
    self._check_owner()
    key: bytes32 = keccak256(name)
    old: uint256 = 0
    if key == keccak256("min_stake"):
        old = self.min_stake
        self.min_stake = new_value
    elif key == keccak256("slash_bps"):
        assert new_value <= _BPS, "ProtocolParams: bps above 10000"
        old = self.slash_bps
        self.slash_bps = new_value
    elif key == keccak256("stake_unlock_delay"):
        old = self.stake_unlock_delay
        self.stake_unlock_delay = new_value
    elif key == keccak256("epoch_length"):
        old = self.epoch_length
        self.epoch_length = new_value
    elif key == keccak256("max_file_bytes"):
        old = self.max_file_bytes
        self.max_file_bytes = new_value
    elif key == keccak256("max_files_per_day"):
        old = self.max_files_per_day
        self.max_files_per_day = new_value
    elif key == keccak256("escrow_withdraw_delay"):
        old = self.escrow_withdraw_delay
        self.escrow_withdraw_delay = new_value
    elif key == keccak256("min_deposit"):
        old = self.min_deposit
        self.min_deposit = new_value
    elif key == keccak256("root_activation_delay"):
        old = self.root_activation_delay
        self.root_activation_delay = new_value
    elif key == keccak256("max_access_price"):
        old = self.max_access_price
        self.max_access_price = new_value
    elif key == keccak256("compute_share_bps"):
        assert new_value <= self.platform_bps, "ProtocolParams: compute share above platform"
        old = self.compute_share_bps
        self.compute_share_bps = new_value
    else:
        raise "ProtocolParams: unknown param"
    self._bump()
    log ParamChanged(name=name, old_value=old, new_value=new_value)


@external
def setFeeSplit(platform: uint256, owner: uint256, stakers: uint256, contributors: uint256):
    """
    @notice Sets the fee split (owner only); the four shares must
            sum to exactly 10,000 bps.
    @dev The platform share may not fall below `compute_share_bps`,
         which is carved from it; lower that first.
    @param platform The 32-byte platform share in bps.
    @param owner The 32-byte model owner share in bps.
    @param stakers The 32-byte stakers share in bps.
    @param contributors The 32-byte data contributors share in bps.
    """
    self._check_owner()
    # Each share is bounded first so that the sum below cannot overflow.
    assert platform <= _BPS and owner <= _BPS, "ProtocolParams: fee split must sum to 10000"
    assert stakers <= _BPS and contributors <= _BPS, "ProtocolParams: fee split must sum to 10000"
    # Four numbers of at most 10,000 each cannot overflow.
    total: uint256 = unsafe_add(unsafe_add(platform, owner), unsafe_add(stakers, contributors))
    assert total == _BPS, "ProtocolParams: fee split must sum to 10000"
    assert platform >= self.compute_share_bps, "ProtocolParams: compute share above platform"
    self.platform_bps = platform
    self.owner_bps = owner
    self.stakers_bps = stakers
    self.contributors_bps = contributors
    self._bump()
    log FeeSplitChanged(platform=platform, owner=owner, stakers=stakers, contributors=contributors)


@external
def setTreasury(addr: address):
    """
    @notice Sets the treasury address (owner only).
    @param addr The 20-byte new treasury (not zero).
    """
    self._check_owner()
    assert addr != empty(address), "ProtocolParams: treasury is the zero address"
    old: address = self.treasury
    self.treasury = addr
    self._bump()
    log TreasuryChanged(old=old, new=addr)


@external
def transfer_ownership(new_owner: address):
    """
    @notice Transfers the ownership (owner only), e.g. to the
            governance Timelock.
    @param new_owner The 20-byte new owner (not zero).
    """
    self._check_owner()
    assert new_owner != empty(address), "ProtocolParams: new owner is the zero address"
    ow._transfer_ownership(new_owner)


@internal
@view
def _check_owner():
    """
    @dev Reverts unless the caller is the owner.
    """
    assert msg.sender == ow.owner, "ProtocolParams: caller is not the owner"


@internal
def _bump():
    """
    @dev Increments `version` after a change.
    """
    # One increment per transaction; 2**256 is unreachable.
    self.version = unsafe_add(self.version, 1)
