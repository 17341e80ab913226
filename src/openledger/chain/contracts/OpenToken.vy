# pragma version ~=0.4.3
# pragma nonreentrancy off
"""
@title OpenToken: the OPEN ERC-20 token with EIP-2612 permit and ERC-5805 votes
@custom:contract-name OpenToken
@license Apache-2.0
@notice OPEN ("Open", 18 decimals) is the settlement token of OpenLedger.
        Exactly 1,000,000,000 OPEN are minted once, in the constructor,
        to `initial_holder`; there is no minter, no mint and no burn, so
        the total supply is a constant.
        The token implements:
        - ERC-20: https://eips.ethereum.org/EIPS/eip-20,
        - EIP-2612 `permit`: https://eips.ethereum.org/EIPS/eip-2612,
        - EIP-5267 `eip712Domain`: https://eips.ethereum.org/EIPS/eip-5267,
        - ERC-6372 clock (timestamp mode): https://eips.ethereum.org/EIPS/eip-6372,
        - ERC-5805 delegated votes with checkpoints:
          https://eips.ethereum.org/EIPS/eip-5805.
        As in OpenZeppelin's `ERC20Votes`, an account has no votes until it
        delegates (to itself or to another account); votes are checkpointed
        by `block.timestamp`, so `getPastVotes` for a past timepoint cannot
        be inflated by tokens borrowed in the current block.
@dev snekmate's `erc20` module cannot be extended with hooks (its
     `_before_token_transfer`/`_after_token_transfer` are empty functions
     that a Vyper 0.4 importer cannot override), so the ERC-20 part is
     written here. snekmate's `eip712_domain_separator` module provides the
     EIP-712 domain and `eip712Domain`.
     Storage layout: the balance (at most the total supply 1e27 < 2**96)
     and the delegatee of an account share one slot, `_accounts[a] =
     (delegatee << 96) | balance`, so a transfer touches one slot per side
     and reads both delegatees for free.
"""


from ethereum.ercs import IERC20
implements: IERC20


from ethereum.ercs import IERC20Detailed
implements: IERC20Detailed


from snekmate.tokens.interfaces import IERC20Permit
implements: IERC20Permit


from snekmate.utils.interfaces import IERC5267
implements: IERC5267


from snekmate.utils import eip712_domain_separator as eip712
initializes: eip712


exports: eip712.eip712Domain


# @dev The total supply: 1,000,000,000 OPEN with 18 decimals.
_TOTAL_SUPPLY: constant(uint256) = 10**27


# @dev Mask of the 96 balance bits of an `_accounts` slot.
_BALANCE_MASK: constant(uint256) = (1 << 96) - 1


# @dev Mask of the 208 value bits of a packed checkpoint.
_VALUE_MASK: constant(uint256) = (1 << 208) - 1


# @dev The upper half of the secp256k1 curve order; signatures with a
# larger `s` are malleable copies and are rejected (EIP-2).
_MALLEABILITY_THRESHOLD: constant(uint256) = (
    57_896_044_618_658_097_711_785_492_504_343_953_926_418_782_139_537_452_191_302_581_570_759_080_747_168
)


# @dev The 32-byte type hash of the `permit` function.
_PERMIT_TYPE_HASH: constant(bytes32) = keccak256(
    "Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)"
)


# @dev Returns the name of the token.
name: public(constant(String[4])) = "Open"


# @dev Returns the symbol of the token.
symbol: public(constant(String[4])) = "OPEN"


# @dev Returns the decimal places of the token.
decimals: public(constant(uint8)) = 18


# @dev Returns the ERC-6372 clock mode.
CLOCK_MODE: public(constant(String[14])) = "mode=timestamp"


# @dev The timestamp of the deployment, i.e. of the one and only mint.
_MINTED_AT: immutable(uint256)


# @dev Returns the remaining number of tokens that `spender` may
# move on behalf of `owner` through `transferFrom`.
allowance: public(HashMap[address, HashMap[address, uint256]])


# @dev Returns the current EIP-2612 nonce of an account.
nonces: public(HashMap[address, uint256])


# @dev Packed `(delegatee << 96) | balance` per account.
_accounts: HashMap[address, uint256]


# @dev The vote checkpoints of a delegatee: `(timestamp << 208) | votes`,
# indexed from 0 in increasing timestamp order.
_checkpoints: HashMap[address, HashMap[uint256, uint256]]


# @dev The number of vote checkpoints of a delegatee.
_num_checkpoints: HashMap[address, uint256]


# @dev Emitted when an account changes its delegatee.
event DelegateChanged:
    delegator: indexed(address)
    fromDelegate: indexed(address)
    toDelegate: indexed(address)


# @dev Emitted when the votes of a delegatee change.
event DelegateVotesChanged:
    delegate: indexed(address)
    previousVotes: uint256
    newVotes: uint256


@deploy
@payable
def __init__(initial_holder: address):
    """
    @dev Mints the whole supply to `initial_holder` and sets up
         the EIP-712 domain ("Open", version "1"). The constructor
         is `payable` to omit the `msg.value` check opcodes.
    @param initial_holder The 20-byte address receiving
           1,000,000,000 OPEN.
    """
    assert initial_holder != empty(address), "OpenToken: initial holder is the zero address"
    eip712.__init__("Open", "1")
    _MINTED_AT = block.timestamp
    self._accounts[initial_holder] = _TOTAL_SUPPLY
    log IERC20.Transfer(sender=empty(address), receiver=initial_holder, value=_TOTAL_SUPPLY)


@external
@view
def totalSupply() -> uint256:
    """
    @notice The amount of tokens in existence: always 1e27.
    @return uint256 The 32-byte total supply.
    """
    return _TOTAL_SUPPLY


@external
@view
def balanceOf(account: address) -> uint256:
    """
    @notice The token balance of `account`.
    @param account The 20-byte account address.
    @return uint256 The 32-byte balance.
    """
    return self._accounts[account] & _BALANCE_MASK


@external
def transfer(to: address, amount: uint256) -> bool:
    """
    @notice Moves `amount` tokens from the caller to `to`.
    @dev Reverts if `to` is the zero address or the caller's
         balance is short. Moves the delegated votes along.
    @param to The 20-byte receiver address.
    @param amount The 32-byte token amount.
    @return bool Always `True` (failures revert).
    """
    self._transfer(msg.sender, to, amount)
    return True


@external
def approve(spender: address, amount: uint256) -> bool:
    """
    @notice Sets `amount` as the allowance of `spender` over
            the caller's tokens. `max_value(uint256)` is an
            infinite allowance that `transferFrom` never reduces.
    @param spender The 20-byte spender address (not zero).
    @param amount The 32-byte allowance.
    @return bool Always `True` (failures revert).
    """
    self._approve(msg.sender, spender, amount)
    return True


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    """
    @notice Moves `amount` tokens from `owner` to `to` using
            the caller's allowance.
    @dev Reduces the allowance unless it is infinite; does not
         emit `Approval` (as OpenZeppelin 5).
    @param owner The 20-byte address the tokens come from.
    @param to The 20-byte receiver address.
    @param amount The 32-byte token amount.
    @return bool Always `True` (failures revert).
    """
    current: uint256 = self.allowance[owner][msg.sender]
    if current != max_value(uint256):
        assert current >= amount, "OpenToken: insufficient allowance"
        # `current >= amount` was checked on the line above.
        self.allowance[owner][msg.sender] = unsafe_sub(current, amount)
    self._transfer(owner, to, amount)
    return True


@external
def permit(
    owner: address, spender: address, amount: uint256, deadline: uint256, v: uint8, r: bytes32, s: bytes32
):
    """
    @notice Sets `amount` as the allowance of `spender` over
            `owner`'s tokens, given `owner`'s EIP-712 signature.
    @dev The signed struct is `Permit(address owner,address spender,
         uint256 value,uint256 nonce,uint256 deadline)` under the
         domain ("Open", "1", chain id, this contract). Each
         signature is usable once (the nonce increases).
    @param owner The 20-byte token owner (the signer).
    @param spender The 20-byte spender address.
    @param amount The 32-byte allowance (EIP-2612's `value`; Vyper
           reserves that name).
    @param deadline The 32-byte last timestamp the signature is valid.
    @param v The secp256k1 1-byte signature parameter `v`.
    @param r The secp256k1 32-byte signature parameter `r`.
    @param s The secp256k1 32-byte signature parameter `s`.
    """
    assert block.timestamp <= deadline, "OpenToken: expired deadline"
    nonce: uint256 = self.nonces[owner]
    # A nonce cannot realistically reach 2**256 - 1 (one per signature).
    self.nonces[owner] = unsafe_add(nonce, 1)
    struct_hash: bytes32 = keccak256(abi_encode(_PERMIT_TYPE_HASH, owner, spender, amount, nonce, deadline))
    digest: bytes32 = eip712._hash_typed_data_v4(struct_hash)
    assert convert(s, uint256) <= _MALLEABILITY_THRESHOLD, "OpenToken: invalid signature"
    signer: address = ecrecover(digest, v, r, s)
    assert signer != empty(address) and signer == owner, "OpenToken: invalid signature"
    self._approve(owner, spender, amount)


@external
@view
def DOMAIN_SEPARATOR() -> bytes32:
    """
    @notice The EIP-712 domain separator for the current chain.
    @return bytes32 The 32-byte domain separator.
    """
    return eip712._domain_separator_v4()


@external
@view
def clock() -> uint48:
    """
    @notice The ERC-6372 clock: the current block timestamp.
    @return uint48 The 6-byte current timepoint.
    """
    return convert(block.timestamp, uint48)


@external
@view
def delegates(account: address) -> address:
    """
    @notice The account that `account` delegates its votes to.
    @param account The 20-byte account address.
    @return address The 20-byte delegatee (zero if none).
    """
    return self._delegatee(self._accounts[account])


@external
def delegate(delegatee: address):
    """
    @notice Delegates the caller's votes (its whole balance, now
            and after future transfers) to `delegatee`; delegate
            to yourself to vote, or to the zero address to stop.
    @param delegatee The 20-byte delegatee address.
    """
    packed: uint256 = self._accounts[msg.sender]
    old: address = self._delegatee(packed)
    balance: uint256 = packed & _BALANCE_MASK
    self._accounts[msg.sender] = (convert(delegatee, uint256) << 96) | balance
    log DelegateChanged(delegator=msg.sender, fromDelegate=old, toDelegate=delegatee)
    self._move_votes(old, delegatee, balance)


@external
@view
def getVotes(account: address) -> uint256:
    """
    @notice The current votes of `account`.
    @param account The 20-byte account address.
    @return uint256 The 32-byte number of votes.
    """
    return self._latest(account)


@external
@view
def getPastVotes(account: address, timepoint: uint256) -> uint256:
    """
    @notice The votes of `account` at the end of `timepoint`.
    @dev Binary search over the account's checkpoints for the last
         one with a timestamp `<= timepoint`.
    @param account The 20-byte account address.
    @param timepoint The 32-byte past timestamp (`< clock()`).
    @return uint256 The 32-byte number of votes.
    """
    assert timepoint < block.timestamp, "OpenToken: future lookup"
    return self._upper_lookup(account, timepoint)


@external
@view
def getPastTotalSupply(timepoint: uint256) -> uint256:
    """
    @notice The total supply at the end of `timepoint`.
    @dev The supply never changes after the constructor's mint, so
         its single checkpoint is the immutable deployment time.
    @param timepoint The 32-byte past timestamp (`< clock()`).
    @return uint256 The 32-byte total supply then (0 before deployment).
    """
    assert timepoint < block.timestamp, "OpenToken: future lookup"
    if timepoint < _MINTED_AT:
        return 0
    return _TOTAL_SUPPLY


@external
@view
def numCheckpoints(account: address) -> uint32:
    """
    @notice The number of vote checkpoints of `account`.
    @param account The 20-byte account address.
    @return uint32 The 4-byte number of checkpoints.
    """
    return convert(self._num_checkpoints[account], uint32)


@external
@view
def checkpoints(account: address, pos: uint32) -> (uint48, uint208):
    """
    @notice The `pos`-th vote checkpoint of `account`.
    @param account The 20-byte account address.
    @param pos The 4-byte checkpoint index (`< numCheckpoints`).
    @return uint48 The 6-byte timestamp of the checkpoint.
    @return uint208 The 26-byte votes from that timestamp on.
    """
    assert convert(pos, uint256) < self._num_checkpoints[account], "OpenToken: checkpoint out of range"
    packed: uint256 = self._checkpoints[account][convert(pos, uint256)]
    return convert(packed >> 208, uint48), convert(packed & _VALUE_MASK, uint208)


@internal
@pure
def _delegatee(packed: uint256) -> address:
    """
    @dev Extracts the delegatee from a packed `_accounts` slot.
    @param packed The 32-byte packed slot.
    @return address The 20-byte delegatee.
    """
    return convert(packed >> 96, address)


@internal
def _transfer(owner: address, to: address, amount: uint256):
    """
    @dev Moves `amount` tokens from `owner` to `to` and their
         delegated votes from `owner`'s delegatee to `to`'s.
    @param owner The 20-byte sender address.
    @param to The 20-byte receiver address (not zero).
    @param amount The 32-byte token amount.
    """
    assert to != empty(address), "OpenToken: transfer to the zero address"
    from_packed: uint256 = self._accounts[owner]
    assert from_packed & _BALANCE_MASK >= amount, "OpenToken: transfer amount exceeds balance"
    # The balance bits hold at least `amount` (checked above), so the
    # subtraction borrows nothing from the delegatee bits.
    self._accounts[owner] = unsafe_sub(from_packed, amount)
    # Read after the write, so `owner == to` nets out.
    to_packed: uint256 = self._accounts[to]
    # The balance bits of all accounts sum to the total supply 1e27 < 2**96,
    # so the addition carries nothing into the delegatee bits.
    self._accounts[to] = unsafe_add(to_packed, amount)
    log IERC20.Transfer(sender=owner, receiver=to, value=amount)
    self._move_votes(self._delegatee(from_packed), self._delegatee(to_packed), amount)


@internal
def _approve(owner: address, spender: address, amount: uint256):
    """
    @dev Sets the allowance of `spender` over `owner`'s tokens.
    @param owner The 20-byte owner address.
    @param spender The 20-byte spender address (not zero).
    @param amount The 32-byte allowance.
    """
    assert spender != empty(address), "OpenToken: approve to the zero address"
    self.allowance[owner][spender] = amount
    log IERC20.Approval(owner=owner, spender=spender, value=amount)


@internal
def _move_votes(src: address, dst: address, amount: uint256):
    """
    @dev Moves `amount` votes from delegatee `src` to `dst`
         (the zero address stands for "nobody").
    @param src The 20-byte delegatee losing votes.
    @param dst The 20-byte delegatee gaining votes.
    @param amount The 32-byte number of votes.
    """
    if src == dst or amount == 0:
        return
    if src != empty(address):
        old: uint256 = self._latest(src)
        # A delegatee's votes are the sum of its delegators' balances,
        # which include the `amount` being moved away.
        new: uint256 = unsafe_sub(old, amount)
        self._push(src, new)
        log DelegateVotesChanged(delegate=src, previousVotes=old, newVotes=new)
    if dst != empty(address):
        old: uint256 = self._latest(dst)
        # Votes never exceed the total supply 1e27, far below 2**208.
        new: uint256 = unsafe_add(old, amount)
        self._push(dst, new)
        log DelegateVotesChanged(delegate=dst, previousVotes=old, newVotes=new)


@internal
@view
def _latest(account: address) -> uint256:
    """
    @dev The latest votes of `account` (0 without checkpoints).
    @param account The 20-byte delegatee address.
    @return uint256 The 32-byte votes.
    """
    n: uint256 = self._num_checkpoints[account]
    if n == 0:
        return 0
    # `n > 0` was checked above.
    return self._checkpoints[account][unsafe_sub(n, 1)] & _VALUE_MASK


@internal
def _push(account: address, votes: uint256):
    """
    @dev Records `votes` for `account` at the current timestamp,
         overwriting the last checkpoint if it has the same one.
    @param account The 20-byte delegatee address.
    @param votes The 32-byte new votes (< 2**208).
    """
    n: uint256 = self._num_checkpoints[account]
    packed: uint256 = (block.timestamp << 208) | votes
    if n > 0:
        # `n > 0` was checked above.
        last: uint256 = unsafe_sub(n, 1)
        if self._checkpoints[account][last] >> 208 == block.timestamp:
            self._checkpoints[account][last] = packed
            return
    self._checkpoints[account][n] = packed
    # One checkpoint per transaction at most; 2**256 is unreachable.
    self._num_checkpoints[account] = unsafe_add(n, 1)


@internal
@view
def _upper_lookup(account: address, timepoint: uint256) -> uint256:
    """
    @dev The votes of the last checkpoint of `account` with a
         timestamp `<= timepoint` (0 if none), by binary search.
    @param account The 20-byte delegatee address.
    @param timepoint The 32-byte timestamp.
    @return uint256 The 32-byte votes.
    """
    low: uint256 = 0
    high: uint256 = self._num_checkpoints[account]
    # Each round halves `high - low`, so 256 rounds always suffice.
    for _: uint256 in range(256):
        if low >= high:
            break
        # `low < high`, so `(low + high) // 2` cannot overflow when
        # computed as `low + (high - low) // 2`.
        mid: uint256 = unsafe_add(low, unsafe_sub(high, low) >> 1)
        if self._checkpoints[account][mid] >> 208 > timepoint:
            high = mid
        else:
            # `mid < high <= 2**256 - 1`.
            low = unsafe_add(mid, 1)
    if high == 0:
        return 0
    # `high > 0` was checked above.
    return self._checkpoints[account][unsafe_sub(high, 1)] & _VALUE_MASK
