# pragma version ~=0.4.3
# pragma nonreentrancy off
"""
@title RewardDistributor: cumulative Merkle payouts per settlement epoch
@custom:contract-name RewardDistributor
@license Apache-2.0
@notice Every epoch the operator (the settlement service) posts the root
        of a Merkle tree of **cumulative** earnings per account. A root
        becomes claimable `root_activation_delay` seconds after it was
        posted; until then the owner (governance) may disable it. Anyone
        may then `claim(account, cumulative, proof)`, which pays the
        account the difference between `cumulative` and what it has
        already claimed. Because entitlements are cumulative, only the
        latest root matters and an account that skips epochs loses
        nothing.
        Leaves are OpenZeppelin StandardMerkleTree leaves of
        `(address account, uint256 cumulative)`:
        `keccak256(bytes.concat(keccak256(abi.encode(account, cumulative))))`,
        with pairs hashed in sorted order.
@dev Gas: `claim` reads two packed slots besides `claimed[account]`:
     `_state` (total claimed in the low 128 bits, the ready time of the
     pending root in the high 128 bits) and whichever root is in force.
     A pending root whose delay has passed is used directly by `claim`
     and promoted to active lazily by the next `postRoot`, so no claim
     pays for the promotion.
     The sum of all tokens ever received is `balance + totalClaimed`;
     `postRoot` refuses a root whose `total` exceeds it.
"""


from ethereum.ercs import IERC20
from .interfaces import IProtocolParams


from snekmate.auth import ownable as ow
initializes: ow


exports: ow.owner


# @dev The maximum depth of a proof (2**32 leaves).
_MAX_PROOF: constant(uint256) = 32


# @dev Mask of the total-claimed bits of `_state`.
_LOW_MASK: constant(uint256) = (1 << 128) - 1


struct Epoch:
    root: bytes32
    total: uint256
    receipts_head: bytes32
    posted_at: uint256


# @dev The OPEN token.
token: public(immutable(IERC20))


# @dev The protocol parameters.
params: public(immutable(IProtocolParams))


# @dev The settlement service allowed to post roots.
operator: public(address)


# @dev Returns the cumulative amount already paid to an account.
claimed: public(HashMap[address, uint256])


# @dev `(pending_ready_at << 128) | total_claimed`; `pending_ready_at`
# is 0 when no root is pending.
_state: uint256
_active_root: bytes32
_active_epoch: uint256
_pending_root: bytes32
_pending_epoch: uint256
# @dev The smallest epoch number `postRoot` accepts next.
_next_epoch: uint256
_epochs: HashMap[uint256, Epoch]


# @dev Emitted when the operator posts a root.
event RootPosted:
    epoch: indexed(uint256)
    root: bytes32
    total: uint256
    receipts_head: bytes32
    ready_at: uint256


# @dev Emitted when the owner disables a pending root.
event RootDisabled:
    epoch: indexed(uint256)


# @dev Emitted on every claim; `amount` is what was paid now.
event Claimed:
    account: indexed(address)
    amount: uint256
    cumulative: uint256


# @dev Emitted when the owner changes the operator.
event OperatorChanged:
    old: indexed(address)
    new: indexed(address)


@deploy
@payable
def __init__(token_: IERC20, params_: IProtocolParams, operator_: address):
    """
    @dev Makes the deployer the owner. The constructor is
         `payable` to omit the `msg.value` check opcodes.
    @param token_ The 20-byte OPEN token address.
    @param params_ The 20-byte ProtocolParams address.
    @param operator_ The 20-byte operator address.
    """
    assert token_.address != empty(address), "RewardDistributor: zero address"
    assert params_.address != empty(address), "RewardDistributor: zero address"
    assert operator_ != empty(address), "RewardDistributor: zero address"
    ow.__init__()
    token = token_
    params = params_
    self.operator = operator_
    log OperatorChanged(old=empty(address), new=operator_)


@external
def postRoot(epoch: uint256, root: bytes32, total: uint256, receipts_head: bytes32):
    """
    @notice Posts the root of an epoch's cumulative earnings (operator
            only); it becomes claimable `root_activation_delay` seconds
            from now.
    @dev Epochs strictly increase (a disabled epoch may be posted
         again). Reverts while the previous root is still pending;
         a previous root whose delay has passed becomes the active one.
         `total` must not exceed all tokens ever received.
    @param epoch The 32-byte epoch number.
    @param root The 32-byte Merkle root (not zero).
    @param total The 32-byte sum of all cumulative entitlements.
    @param receipts_head The 32-byte head of the epoch's receipt hash chain.
    """
    assert msg.sender == self.operator, "RewardDistributor: caller is not the operator"
    assert root != empty(bytes32), "RewardDistributor: empty root"
    state: uint256 = self._state
    ready_at: uint256 = state >> 128
    if ready_at != 0:
        assert block.timestamp >= ready_at, "RewardDistributor: root pending"
        self._active_root = self._pending_root
        self._active_epoch = self._pending_epoch
    assert epoch >= self._next_epoch, "RewardDistributor: epoch not increasing"
    total_claimed: uint256 = state & _LOW_MASK
    received: uint256 = staticcall token.balanceOf(self) + total_claimed
    assert total <= received, "RewardDistributor: total exceeds funds"
    new_ready_at: uint256 = block.timestamp + staticcall params.root_activation_delay()
    assert new_ready_at <= _LOW_MASK, "RewardDistributor: delay too long"
    self._pending_root = root
    self._pending_epoch = epoch
    self._state = (new_ready_at << 128) | total_claimed
    self._next_epoch = epoch + 1
    self._epochs[epoch] = Epoch(root=root, total=total, receipts_head=receipts_head, posted_at=block.timestamp)
    log RootPosted(epoch=epoch, root=root, total=total, receipts_head=receipts_head, ready_at=new_ready_at)


@external
def disableRoot(epoch: uint256):
    """
    @notice Drops the pending root of `epoch` before it becomes
            claimable (owner only, i.e. governance).
    @dev The active root stays in force; the operator may post
         `epoch` again.
    @param epoch The 32-byte epoch of the pending root.
    """
    assert msg.sender == ow.owner, "RewardDistributor: caller is not the owner"
    state: uint256 = self._state
    ready_at: uint256 = state >> 128
    assert ready_at != 0 and self._pending_epoch == epoch, "RewardDistributor: not the pending epoch"
    assert block.timestamp < ready_at, "RewardDistributor: root already active"
    self._state = state & _LOW_MASK
    self._pending_root = empty(bytes32)
    self._pending_epoch = 0
    self._epochs[epoch] = empty(Epoch)
    if self._active_root == empty(bytes32):
        self._next_epoch = 0
    else:
        # The active epoch was accepted once as `< 2**256 - 1`.
        self._next_epoch = unsafe_add(self._active_epoch, 1)
    log RootDisabled(epoch=epoch)


@external
def claim(account: address, cumulative: uint256, proof: DynArray[bytes32, _MAX_PROOF]):
    """
    @notice Pays `account` its unclaimed earnings: `cumulative` minus
            what it already claimed, proven against the active root.
            Anyone may claim for anyone; the tokens go to `account`.
    @param account The 20-byte account of the leaf.
    @param cumulative The 32-byte cumulative entitlement of the leaf.
    @param proof The sibling hashes from the leaf up to the root (at most 32).
    """
    state: uint256 = self._state
    ready_at: uint256 = state >> 128
    root: bytes32 = empty(bytes32)
    if ready_at != 0 and block.timestamp >= ready_at:
        root = self._pending_root
    else:
        root = self._active_root
    assert root != empty(bytes32), "RewardDistributor: no active root"
    prior: uint256 = self.claimed[account]
    assert cumulative > prior, "RewardDistributor: nothing to claim"

    node: bytes32 = keccak256(keccak256(abi_encode(account, cumulative)))
    for sibling: bytes32 in proof:
        if convert(node, uint256) < convert(sibling, uint256):
            node = keccak256(concat(node, sibling))
        else:
            node = keccak256(concat(sibling, node))
    assert node == root, "RewardDistributor: invalid proof"

    self.claimed[account] = cumulative
    # `cumulative > prior` was checked above.
    amount: uint256 = unsafe_sub(cumulative, prior)
    # The total claimed is at most the token supply (1e27 < 2**128): the
    # transfer below reverts the whole call unless the tokens exist, so
    # the addition never carries into the ready-time bits.
    self._state = unsafe_add(state, amount)
    assert extcall token.transfer(account, amount), "RewardDistributor: transfer failed"
    log Claimed(account=account, amount=amount, cumulative=cumulative)


@external
@view
def activeRoot() -> bytes32:
    """
    @notice The root that claims are checked against now.
    @return bytes32 The 32-byte active root (zero if none yet).
    """
    if self._pending_ready():
        return self._pending_root
    return self._active_root


@external
@view
def activeEpoch() -> uint256:
    """
    @notice The epoch of the active root.
    @return uint256 The 32-byte epoch (0 if no root is active).
    """
    if self._pending_ready():
        return self._pending_epoch
    return self._active_epoch


@external
@view
def pendingRoot() -> (uint256, bytes32, uint256):
    """
    @notice The posted root that is not claimable yet, if any.
    @return uint256 The 32-byte epoch (0 if none).
    @return bytes32 The 32-byte root (zero if none).
    @return uint256 The 32-byte timestamp it becomes claimable (0 if none).
    """
    ready_at: uint256 = self._state >> 128
    if ready_at == 0 or block.timestamp >= ready_at:
        return 0, empty(bytes32), 0
    return self._pending_epoch, self._pending_root, ready_at


@external
@view
def totalClaimed() -> uint256:
    """
    @notice The sum of all claims paid.
    @return uint256 The 32-byte total.
    """
    return self._state & _LOW_MASK


@external
@view
def epochs(epoch: uint256) -> (bytes32, uint256, bytes32, uint256):
    """
    @notice What was posted for `epoch` (all zero if nothing was, or
            if it was disabled).
    @param epoch The 32-byte epoch number.
    @return bytes32 The 32-byte root.
    @return uint256 The 32-byte total of cumulative entitlements.
    @return bytes32 The 32-byte receipts hash-chain head.
    @return uint256 The 32-byte posting timestamp.
    """
    e: Epoch = self._epochs[epoch]
    return e.root, e.total, e.receipts_head, e.posted_at


@external
def setOperator(addr: address):
    """
    @notice Sets the operator (owner only).
    @param addr The 20-byte new operator (not zero).
    """
    assert msg.sender == ow.owner, "RewardDistributor: caller is not the owner"
    assert addr != empty(address), "RewardDistributor: zero address"
    log OperatorChanged(old=self.operator, new=addr)
    self.operator = addr


@external
def transfer_ownership(new_owner: address):
    """
    @notice Transfers the ownership (owner only), e.g. to the
            governance Timelock.
    @param new_owner The 20-byte new owner (not zero).
    """
    assert msg.sender == ow.owner, "RewardDistributor: caller is not the owner"
    assert new_owner != empty(address), "RewardDistributor: new owner is the zero address"
    ow._transfer_ownership(new_owner)


@internal
@view
def _pending_ready() -> bool:
    """
    @dev Whether a pending root exists and its delay has passed.
    @return bool The verification whether it is in force.
    """
    ready_at: uint256 = self._state >> 128
    return ready_at != 0 and block.timestamp >= ready_at
