# pragma version ~=0.4.3
# pragma nonreentrancy off
"""
@title Grants: the OpenCircle programme, paid by milestone from the treasury
@custom:contract-name Grants
@license Apache-2.0
@notice Anyone applies for a grant in one of three tiers (0 Exploration,
        1 Building, 2 Expansion) with an amount in wei of OPEN, the
        milestones it is paid by (summing to the amount) and a metadata
        URI. The tiers' bounds are set in micro-US dollars and converted
        at a reference price (micro-US dollars per OPEN) that governance
        sets; the defaults mirror $25k-50k, $50k-150k and $250k-500k at
        $1.00 per OPEN.
        The owner (the Timelock, i.e. a passed proposal) approves an
        application: the amount is pulled from the treasury
        (`ProtocolParams.treasury`, which must have approved this
        contract for it - the approving proposal does so first) and
        held here. The owner or the committee (an address governance
        appoints) releases the milestones one by one to the applicant,
        or cancels the grant, which returns the unreleased rest to the
        treasury. An applicant may withdraw an application that is not
        approved yet.
        Status: 0 Pending, 1 Approved, 2 Completed, 3 Cancelled.
"""


from ethereum.ercs import IERC20
from .interfaces import IProtocolParams


from snekmate.auth import ownable as ow
initializes: ow


exports: ow.owner


_MAX_MILESTONES: constant(uint256) = 8
_TIERS: constant(uint256) = 3


PENDING: constant(uint8) = 0
APPROVED: constant(uint8) = 1
COMPLETED: constant(uint8) = 2
CANCELLED: constant(uint8) = 3


struct Grant:
    applicant: address
    tier: uint8
    amount: uint256
    released: uint256
    next_milestone: uint256
    status: uint8
    metadata_uri: String[256]
    applied_at: uint256


# @dev The OPEN token.
token: public(immutable(IERC20))


# @dev The protocol parameters (for the treasury address).
params: public(immutable(IProtocolParams))


# @dev The address that may release milestones besides the owner (zero: none).
committee: public(address)


# @dev Micro-US dollars per OPEN used to turn the tiers' dollar bounds into OPEN.
reference_price: public(uint256)


# @dev A tier's lower bound in micro-US dollars.
tier_min_usd: public(HashMap[uint256, uint256])


# @dev A tier's upper bound in micro-US dollars.
tier_max_usd: public(HashMap[uint256, uint256])


# @dev The number of applications; ids start at 1.
grant_count: public(uint256)


# @dev OPEN held here for approved grants and not released yet.
escrowed: public(uint256)


_grants: HashMap[uint256, Grant]
_milestones: HashMap[uint256, DynArray[uint256, _MAX_MILESTONES]]


event GrantApplied:
    grant_id: indexed(uint256)
    applicant: indexed(address)
    tier: uint8
    amount: uint256
    milestones: DynArray[uint256, _MAX_MILESTONES]
    metadata_uri: String[256]


event GrantApproved:
    grant_id: indexed(uint256)
    amount: uint256


event MilestoneReleased:
    grant_id: indexed(uint256)
    milestone: uint256
    amount: uint256
    applicant: indexed(address)


event GrantCancelled:
    grant_id: indexed(uint256)
    returned: uint256


event TierChanged:
    tier: uint256
    min_usd: uint256
    max_usd: uint256


event ReferencePriceChanged:
    old_value: uint256
    new_value: uint256


event CommitteeChanged:
    old: indexed(address)
    new: indexed(address)


@deploy
@payable
def __init__(token_: IERC20, params_: IProtocolParams):
    """
    @dev Sets the default tiers ($25k-50k, $50k-150k, $250k-500k) and
         reference price ($1.00 per OPEN) and makes the deployer the
         owner. The constructor is `payable` to omit the `msg.value`
         check opcodes.
    @param token_ The 20-byte OPEN token address.
    @param params_ The 20-byte ProtocolParams address.
    """
    assert token_.address != empty(address), "Grants: zero address"
    assert params_.address != empty(address), "Grants: zero address"
    ow.__init__()
    token = token_
    params = params_
    self.reference_price = 10**6
    self.tier_min_usd[0] = 25_000 * 10**6
    self.tier_max_usd[0] = 50_000 * 10**6
    self.tier_min_usd[1] = 50_000 * 10**6
    self.tier_max_usd[1] = 150_000 * 10**6
    self.tier_min_usd[2] = 250_000 * 10**6
    self.tier_max_usd[2] = 500_000 * 10**6


@external
def apply(tier: uint8, amount: uint256, milestones: DynArray[uint256, _MAX_MILESTONES], metadata_uri: String[256]) -> uint256:
    """
    @notice Applies for a grant; the caller is the applicant.
    @param tier The 1-byte tier (0 Exploration, 1 Building, 2 Expansion).
    @param amount The 32-byte amount in wei of OPEN, within the tier's bounds.
    @param milestones The 32-byte milestone amounts (1 to 8, none zero), summing to `amount`.
    @param metadata_uri The URI of the proposal document (at most 256 characters).
    @return uint256 The 32-byte grant id (from 1).
    """
    assert convert(tier, uint256) < _TIERS, "Grants: unknown tier"
    low: uint256 = 0
    high: uint256 = 0
    low, high = self._bounds(convert(tier, uint256))
    assert amount >= low and amount <= high, "Grants: amount outside the tier's bounds"
    assert len(milestones) != 0, "Grants: no milestones"
    total: uint256 = 0
    for m: uint256 in milestones:
        assert m != 0, "Grants: zero milestone"
        total += m
    assert total == amount, "Grants: milestones do not sum to the amount"
    # Ids increase by one per application; 2**256 is unreachable.
    gid: uint256 = unsafe_add(self.grant_count, 1)
    self.grant_count = gid
    self._grants[gid] = Grant(
        applicant=msg.sender,
        tier=tier,
        amount=amount,
        released=0,
        next_milestone=0,
        status=PENDING,
        metadata_uri=metadata_uri,
        applied_at=block.timestamp,
    )
    self._milestones[gid] = milestones
    log GrantApplied(
        grant_id=gid, applicant=msg.sender, tier=tier, amount=amount, milestones=milestones, metadata_uri=metadata_uri
    )
    return gid


@external
def approve(grant_id: uint256):
    """
    @notice Approves a pending application (owner only) and escrows its
            amount, pulled from the treasury (which must have approved
            this contract for at least the amount).
    @param grant_id The 32-byte grant id.
    """
    self._check_owner()
    g: Grant = self._grants[grant_id]
    assert g.applicant != empty(address), "Grants: unknown grant"
    assert g.status == PENDING, "Grants: not pending"
    self._grants[grant_id].status = APPROVED
    self.escrowed += g.amount
    treasury: address = staticcall params.treasury()
    assert extcall token.transferFrom(treasury, self, g.amount), "Grants: transfer failed"
    log GrantApproved(grant_id=grant_id, amount=g.amount)


@external
def release(grant_id: uint256):
    """
    @notice Pays the next milestone of an approved grant to its
            applicant (owner or committee).
    @param grant_id The 32-byte grant id.
    """
    self._check_releaser()
    g: Grant = self._grants[grant_id]
    assert g.status == APPROVED, "Grants: not approved"
    ms: DynArray[uint256, _MAX_MILESTONES] = self._milestones[grant_id]
    i: uint256 = g.next_milestone
    amount: uint256 = ms[i]
    # The milestones sum to `g.amount`, so `released + amount <= g.amount`
    # and `escrowed` holds at least the unreleased rest of this grant.
    self._grants[grant_id].released = unsafe_add(g.released, amount)
    self._grants[grant_id].next_milestone = unsafe_add(i, 1)
    self.escrowed = unsafe_sub(self.escrowed, amount)
    if unsafe_add(i, 1) == len(ms):
        self._grants[grant_id].status = COMPLETED
    assert extcall token.transfer(g.applicant, amount), "Grants: transfer failed"
    log MilestoneReleased(grant_id=grant_id, milestone=i, amount=amount, applicant=g.applicant)


@external
def cancel(grant_id: uint256):
    """
    @notice Cancels a grant. An approved grant (owner or committee)
            returns its unreleased rest to the treasury; a pending
            application may also be withdrawn by its applicant.
    @param grant_id The 32-byte grant id.
    """
    g: Grant = self._grants[grant_id]
    assert g.applicant != empty(address), "Grants: unknown grant"
    assert g.status == PENDING or g.status == APPROVED, "Grants: already closed"
    if not (g.status == PENDING and msg.sender == g.applicant):
        self._check_releaser()
    self._grants[grant_id].status = CANCELLED
    rest: uint256 = 0
    if g.status == APPROVED:
        # `released <= amount` always holds (see `release`).
        rest = unsafe_sub(g.amount, g.released)
        self.escrowed = unsafe_sub(self.escrowed, rest)
        if rest != 0:
            assert extcall token.transfer(staticcall params.treasury(), rest), "Grants: transfer failed"
    log GrantCancelled(grant_id=grant_id, returned=rest)


@external
@view
def grants(grant_id: uint256) -> Grant:
    """
    @notice Everything recorded about a grant except its milestones.
    @param grant_id The 32-byte grant id.
    @return Grant The applicant, tier, amount, released, next milestone,
            status, metadata URI and application time (zeros if unknown).
    """
    return self._grants[grant_id]


@external
@view
def milestones(grant_id: uint256) -> DynArray[uint256, _MAX_MILESTONES]:
    """
    @notice The milestone amounts of a grant.
    @param grant_id The 32-byte grant id.
    @return DynArray The 32-byte amounts in wei of OPEN.
    """
    return self._milestones[grant_id]


@external
@view
def tierBounds(tier: uint256) -> (uint256, uint256):
    """
    @notice A tier's bounds in wei of OPEN at the reference price.
    @param tier The 32-byte tier (0, 1 or 2).
    @return uint256 The 32-byte lower bound.
    @return uint256 The 32-byte upper bound.
    """
    assert tier < _TIERS, "Grants: unknown tier"
    return self._bounds(tier)


@external
def setTier(tier: uint256, min_usd: uint256, max_usd: uint256):
    """
    @notice Sets a tier's bounds in micro-US dollars (owner only).
    @param tier The 32-byte tier (0, 1 or 2).
    @param min_usd The 32-byte lower bound (not zero).
    @param max_usd The 32-byte upper bound (at least the lower bound, below 2**128).
    """
    self._check_owner()
    assert tier < _TIERS, "Grants: unknown tier"
    assert min_usd != 0 and min_usd <= max_usd and max_usd < 2**128, "Grants: invalid bounds"
    self.tier_min_usd[tier] = min_usd
    self.tier_max_usd[tier] = max_usd
    log TierChanged(tier=tier, min_usd=min_usd, max_usd=max_usd)


@external
def setReferencePrice(new_value: uint256):
    """
    @notice Sets the reference price in micro-US dollars per OPEN (owner only).
    @param new_value The 32-byte price (not zero).
    """
    self._check_owner()
    assert new_value != 0, "Grants: zero price"
    log ReferencePriceChanged(old_value=self.reference_price, new_value=new_value)
    self.reference_price = new_value


@external
def setCommittee(new_committee: address):
    """
    @notice Appoints the committee that may release and cancel grants
            besides the owner (owner only; zero removes it).
    @param new_committee The 20-byte committee address.
    """
    self._check_owner()
    log CommitteeChanged(old=self.committee, new=new_committee)
    self.committee = new_committee


@external
def transfer_ownership(new_owner: address):
    """
    @notice Transfers the ownership (owner only), e.g. to the Timelock.
    @param new_owner The 20-byte new owner (not zero).
    """
    self._check_owner()
    assert new_owner != empty(address), "Grants: new owner is the zero address"
    ow._transfer_ownership(new_owner)


@internal
@view
def _bounds(tier: uint256) -> (uint256, uint256):
    """
    @dev A tier's bounds in wei of OPEN: `usd * 1e18 / price`.
    @param tier The 32-byte tier.
    @return uint256 The 32-byte lower bound.
    @return uint256 The 32-byte upper bound.
    """
    price: uint256 = self.reference_price
    return self.tier_min_usd[tier] * 10**18 // price, self.tier_max_usd[tier] * 10**18 // price


@internal
@view
def _check_owner():
    """
    @dev Reverts unless the caller is the owner.
    """
    assert msg.sender == ow.owner, "Grants: caller is not the owner"


@internal
@view
def _check_releaser():
    """
    @dev Reverts unless the caller is the owner or the committee.
    """
    assert msg.sender == ow.owner or (
        msg.sender == self.committee and msg.sender != empty(address)
    ), "Grants: caller is not the owner or committee"
