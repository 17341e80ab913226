# pragma version ~=0.4.3
# pragma nonreentrancy off
"""
@title InferenceEscrow: prepaid inference credit in OPEN
@custom:contract-name InferenceEscrow
@license Apache-2.0
@notice Users deposit OPEN as credit for paid inference, at least
        the governable `min_deposit` at a time, for themselves or
        for another account (`depositFor`). The operator
        (the settlement service) collects the fees of an epoch in
        batches: each `(epoch, batch)` debits the listed accounts and
        moves the total to the RewardDistributor, and can be collected
        only once, so a settlement that is retried after a failure
        cannot charge twice. A user withdraws unspent credit in two
        steps: a request, then the withdrawal after
        `escrow_withdraw_delay` seconds; the delay lets the operator
        collect fees for inference already served. The withdrawal pays
        the smaller of the requested amount and the balance left then.
@dev Solvency: the token balance of this contract always equals
     `totalDeposited - totalWithdrawn - totalCollected`, which equals
     the sum of all credit balances.
"""


from ethereum.ercs import IERC20
from .interfaces import IProtocolParams


from snekmate.auth import ownable as ow
initializes: ow


exports: ow.owner


# @dev The maximum number of accounts in one collected batch.
_MAX_BATCH: constant(uint256) = 256


struct Withdrawal:
    amount: uint256
    ready_at: uint256


# @dev The OPEN token.
token: public(immutable(IERC20))


# @dev The protocol parameters.
params: public(immutable(IProtocolParams))


# @dev The settlement service allowed to `collect`.
operator: public(address)


# @dev Where collected fees go (the RewardDistributor).
distributor: public(address)


# @dev Returns the credit balance of an account.
balanceOf: public(HashMap[address, uint256])


# @dev Returns whether `(epoch, batch)` has been collected.
isCollected: public(HashMap[uint256, HashMap[uint256, bool]])


# @dev The sum of all deposits.
totalDeposited: public(uint256)


# @dev The sum of all withdrawals.
totalWithdrawn: public(uint256)


# @dev The sum of all collected fees.
totalCollected: public(uint256)


_pending: HashMap[address, Withdrawal]


# @dev Emitted on a deposit.
event Deposited:
    account: indexed(address)
    amount: uint256


# @dev Emitted besides `Deposited` when the credit was paid by another
# account (`depositFor`).
event DepositedFor:
    funder: indexed(address)
    account: indexed(address)
    amount: uint256


# @dev Emitted on a withdrawal request.
event WithdrawalRequested:
    account: indexed(address)
    amount: uint256
    ready_at: uint256


# @dev Emitted on a withdrawal; `amount` is what was paid.
event Withdrawn:
    account: indexed(address)
    amount: uint256


# @dev Emitted when a batch of fees is collected.
event Collected:
    epoch: indexed(uint256)
    batch: indexed(uint256)
    total: uint256


# @dev Emitted when the owner changes the operator.
event OperatorChanged:
    old: indexed(address)
    new: indexed(address)


# @dev Emitted when the owner changes the distributor.
event DistributorChanged:
    old: indexed(address)
    new: indexed(address)


@deploy
@payable
def __init__(token_: IERC20, params_: IProtocolParams, operator_: address, distributor_: address):
    """
    @dev Makes the deployer the owner. The constructor is
         `payable` to omit the `msg.value` check opcodes.
    @param token_ The 20-byte OPEN token address.
    @param params_ The 20-byte ProtocolParams address.
    @param operator_ The 20-byte operator address.
    @param distributor_ The 20-byte RewardDistributor address.
    """
    assert token_.address != empty(address), "InferenceEscrow: zero address"
    assert params_.address != empty(address), "InferenceEscrow: zero address"
    assert operator_ != empty(address), "InferenceEscrow: zero address"
    assert distributor_ != empty(address), "InferenceEscrow: zero address"
    ow.__init__()
    token = token_
    params = params_
    self.operator = operator_
    self.distributor = distributor_
    log OperatorChanged(old=empty(address), new=operator_)
    log DistributorChanged(old=empty(address), new=distributor_)


@external
def deposit(amount: uint256):
    """
    @notice Adds `amount` OPEN of inference credit to the caller.
    @dev Pulls the tokens with `transferFrom`; the caller must have
         approved this contract (or used `permit`). The amount must
         be at least the governable `min_deposit` of the protocol
         parameters, read at call time.
    @param amount The 32-byte amount in wei (not zero, at least
           `min_deposit`).
    """
    self._deposit(msg.sender, amount)


@external
def depositFor(account: address, amount: uint256):
    """
    @notice Adds `amount` OPEN of inference credit to `account`, paid
            by the caller: e.g. an owner funding its agent's account.
    @dev Pulls the tokens from the caller with `transferFrom`, like
         `deposit`, with the same `min_deposit` floor. The credit is
         `account`'s alone: only `account` can spend or withdraw it.
         Emits `Deposited(account, amount)`, as a deposit by `account`
         would, and `DepositedFor(funder, account, amount)`.
    @param account The 20-byte account credited (not zero).
    @param amount The 32-byte amount in wei (not zero, at least
           `min_deposit`).
    """
    assert account != empty(address), "InferenceEscrow: zero address"
    self._deposit(account, amount)
    log DepositedFor(funder=msg.sender, account=account, amount=amount)


@external
def requestWithdrawal(amount: uint256):
    """
    @notice Asks to withdraw `amount` of the caller's credit after
            `escrow_withdraw_delay` seconds; replaces any earlier
            request (and restarts its delay).
    @dev The credit stays spendable until the withdrawal; the
         withdrawal pays `min(amount, balance)` at that time.
    @param amount The 32-byte amount in wei (not zero, at most the balance).
    """
    assert amount != 0, "InferenceEscrow: zero amount"
    assert amount <= self.balanceOf[msg.sender], "InferenceEscrow: amount exceeds balance"
    ready_at: uint256 = block.timestamp + staticcall params.escrow_withdraw_delay()
    self._pending[msg.sender] = Withdrawal(amount=amount, ready_at=ready_at)
    log WithdrawalRequested(account=msg.sender, amount=amount, ready_at=ready_at)


@external
def withdraw():
    """
    @notice Completes the caller's withdrawal request once it is
            ready, paying `min(requested, balance)`.
    """
    request: Withdrawal = self._pending[msg.sender]
    assert request.ready_at != 0, "InferenceEscrow: no pending withdrawal"
    assert block.timestamp >= request.ready_at, "InferenceEscrow: withdrawal not ready"
    balance: uint256 = self.balanceOf[msg.sender]
    amount: uint256 = min(request.amount, balance)
    self._pending[msg.sender] = empty(Withdrawal)
    # `amount <= balance` by the `min` above.
    self.balanceOf[msg.sender] = unsafe_sub(balance, amount)
    # The sum of withdrawals is bounded by the sum of deposits (1e27).
    self.totalWithdrawn = unsafe_add(self.totalWithdrawn, amount)
    if amount != 0:
        assert extcall token.transfer(msg.sender, amount), "InferenceEscrow: transfer failed"
    log Withdrawn(account=msg.sender, amount=amount)


@external
@view
def pendingWithdrawal(account: address) -> (uint256, uint256):
    """
    @notice The withdrawal request of `account`.
    @param account The 20-byte account address.
    @return uint256 The 32-byte requested amount (0 if none).
    @return uint256 The 32-byte timestamp it becomes ready (0 if none).
    """
    request: Withdrawal = self._pending[account]
    return request.amount, request.ready_at


@external
def collect(
    epoch: uint256,
    batch: uint256,
    accounts: DynArray[address, _MAX_BATCH],
    amounts: DynArray[uint256, _MAX_BATCH],
):
    """
    @notice Debits the fees of one settlement batch and sends their
            total to the distributor (operator only).
    @dev Reverts if any balance is short (then nothing is debited)
         or if `(epoch, batch)` was already collected.
    @param epoch The 32-byte settlement epoch.
    @param batch The 32-byte batch number within the epoch.
    @param accounts The accounts to debit (at most 256).
    @param amounts The 32-byte amounts, one per account.
    """
    assert msg.sender == self.operator, "InferenceEscrow: caller is not the operator"
    assert len(accounts) == len(amounts), "InferenceEscrow: length mismatch"
    assert not self.isCollected[epoch][batch], "InferenceEscrow: batch already collected"
    self.isCollected[epoch][batch] = True
    total: uint256 = 0
    for i: uint256 in range(len(accounts), bound=_MAX_BATCH):
        account: address = accounts[i]
        amount: uint256 = amounts[i]
        balance: uint256 = self.balanceOf[account]
        assert balance >= amount, "InferenceEscrow: insufficient balance"
        # `balance >= amount` was checked on the line above.
        self.balanceOf[account] = unsafe_sub(balance, amount)
        # Each `amount` was debited from a balance, so the total is
        # bounded by the sum of balances (at most 1e27).
        total = unsafe_add(total, amount)
    # Bounded by the sum of deposits (at most 1e27).
    self.totalCollected = unsafe_add(self.totalCollected, total)
    if total != 0:
        assert extcall token.transfer(self.distributor, total), "InferenceEscrow: transfer failed"
    log Collected(epoch=epoch, batch=batch, total=total)


@external
def setOperator(addr: address):
    """
    @notice Sets the operator (owner only).
    @param addr The 20-byte new operator (not zero).
    """
    self._check_owner()
    assert addr != empty(address), "InferenceEscrow: zero address"
    log OperatorChanged(old=self.operator, new=addr)
    self.operator = addr


@external
def setDistributor(addr: address):
    """
    @notice Sets where collected fees go (owner only).
    @param addr The 20-byte new distributor (not zero).
    """
    self._check_owner()
    assert addr != empty(address), "InferenceEscrow: zero address"
    log DistributorChanged(old=self.distributor, new=addr)
    self.distributor = addr


@external
def transfer_ownership(new_owner: address):
    """
    @notice Transfers the ownership (owner only), e.g. to the
            governance Timelock.
    @param new_owner The 20-byte new owner (not zero).
    """
    self._check_owner()
    assert new_owner != empty(address), "InferenceEscrow: new owner is the zero address"
    ow._transfer_ownership(new_owner)


@internal
def _deposit(account: address, amount: uint256):
    """
    @dev Credits `account` with `amount` pulled from the caller.
    @param account The 20-byte account credited.
    @param amount The 32-byte amount in wei.
    """
    assert amount != 0, "InferenceEscrow: zero amount"
    assert amount >= staticcall params.min_deposit(), "InferenceEscrow: below minimum deposit"
    # Credit balances sum to at most the token supply (1e27), as does
    # `totalDeposited` (checked): it is bounded by the tokens received.
    self.balanceOf[account] = unsafe_add(self.balanceOf[account], amount)
    self.totalDeposited += amount
    assert extcall token.transferFrom(msg.sender, self, amount), "InferenceEscrow: transfer failed"
    log Deposited(account=account, amount=amount)


@internal
@view
def _check_owner():
    """
    @dev Reverts unless the caller is the owner.
    """
    assert msg.sender == ow.owner, "InferenceEscrow: caller is not the owner"
