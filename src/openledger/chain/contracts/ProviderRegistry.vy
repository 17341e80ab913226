# pragma version ~=0.4.3
# pragma nonreentrancy off
"""
@title ProviderRegistry: staked compute providers and the models they serve
@custom:contract-name ProviderRegistry
@license Apache-2.0
@notice A compute provider runs models with its own engines and keys
        and earns a compute share of each fee it serves; a gateway
        node routes paid requests to it. To be routed to, a provider
        registers here from the address whose key signs its compute
        receipts: it names its endpoint and the ids of the models it
        serves (1 to 16, distinct, non-zero) and stakes at least
        `minStake` wei of OPEN, pulled with `transferFrom`. While
        active it may add stake, change its models and its endpoint.
        `exit` stops it being active at once (it serves nothing from
        then on) and unlocks its stake `exitDelay` seconds later;
        `withdraw` then pays back all that remains of the stake and
        clears the registration, after which the address may register
        again. The owner (the deployer, later the governance Timelock)
        may slash a provider's stake to the treasury of
        `ProtocolParams`, also during the exit delay, and sets
        `minStake` and `exitDelay`.
@dev Invariant: the contract's OPEN balance is the sum of the stakes
     (`totalStaked`), as OPEN moves here only by `register` and
     `addStake` and leaves only by `slash` and `withdraw`, each of
     which lowers the stake it moves. `providerAt` enumerates every
     address that ever registered, each once, in order of its first
     registration; a gateway reads `providers` and `getModels` of
     each, or asks `serves`.
"""


from ethereum.ercs import IERC20
from .interfaces import IProtocolParams


from snekmate.auth import ownable as ow
initializes: ow


exports: ow.owner


# @dev The most models one provider may list.
MAX_MODELS: public(constant(uint256)) = 16


# @dev The longest exit delay the owner may set (365 days), so that no
# setting can lock the stakes of providers that exit later for good.
MAX_EXIT_DELAY: public(constant(uint256)) = 365 * 86_400


struct Provider:
    endpoint: String[256]
    stake: uint256
    active: bool
    unlock_at: uint256
    registered_at: uint256


# @dev The OPEN token staked by providers.
token: public(immutable(IERC20))


# @dev The protocol parameters (where slashed stakes go: `treasury()`).
params: public(immutable(IProtocolParams))


# @dev The least stake `register` accepts, in wei of OPEN.
minStake: public(uint256)


# @dev Seconds between `exit` and the stake becoming withdrawable.
exitDelay: public(uint256)


# @dev The number of addresses that ever registered (see `providerAt`).
providerCount: public(uint256)


# @dev The sum of all stakes, in wei of OPEN (the contract's balance).
totalStaked: public(uint256)


_providers: HashMap[address, Provider]
_models: HashMap[address, DynArray[uint256, MAX_MODELS]]
# @dev Whether a provider lists a model (mirrors `_models`).
_listed: HashMap[address, HashMap[uint256, bool]]
# @dev Every address that ever registered, from index 0.
_addresses: HashMap[uint256, address]
# @dev Whether an address is in `_addresses` already.
_known: HashMap[address, bool]


# @dev Emitted when a provider registers.
event ProviderRegistered:
    provider: indexed(address)
    endpoint: String[256]
    model_ids: DynArray[uint256, MAX_MODELS]
    stake: uint256


# @dev Emitted when a provider adds stake; `stake` is the new total.
event StakeAdded:
    provider: indexed(address)
    amount: uint256
    stake: uint256


# @dev Emitted when a provider changes the models it serves.
event ModelsChanged:
    provider: indexed(address)
    model_ids: DynArray[uint256, MAX_MODELS]


# @dev Emitted when a provider changes its endpoint.
event EndpointChanged:
    provider: indexed(address)
    endpoint: String[256]


# @dev Emitted when a provider exits; its stake unlocks at `unlock_at`.
event ProviderExited:
    provider: indexed(address)
    unlock_at: uint256


# @dev Emitted when a provider withdraws its stake and leaves.
event ProviderWithdrawn:
    provider: indexed(address)
    amount: uint256


# @dev Emitted when the owner slashes a provider; `stake` is what is left.
event ProviderSlashed:
    provider: indexed(address)
    amount: uint256
    stake: uint256
    treasury: indexed(address)
    reason: String[128]


# @dev Emitted when the owner changes the minimum stake.
event MinStakeChanged:
    old_value: uint256
    new_value: uint256


# @dev Emitted when the owner changes the exit delay.
event ExitDelayChanged:
    old_value: uint256
    new_value: uint256


@deploy
@payable
def __init__(token_: IERC20, params_: IProtocolParams, min_stake_: uint256, exit_delay_: uint256):
    """
    @dev Makes the deployer the owner. The constructor is
         `payable` to omit the `msg.value` check opcodes.
    @param token_ The 20-byte OPEN token address.
    @param params_ The 20-byte ProtocolParams address.
    @param min_stake_ The 32-byte minimum stake in wei of OPEN.
    @param exit_delay_ The 32-byte exit delay in seconds, at most
           `MAX_EXIT_DELAY`.
    """
    assert token_.address != empty(address), "ProviderRegistry: zero address"
    assert params_.address != empty(address), "ProviderRegistry: zero address"
    assert exit_delay_ <= MAX_EXIT_DELAY, "ProviderRegistry: exit delay too long"
    ow.__init__()
    token = token_
    params = params_
    self.minStake = min_stake_
    self.exitDelay = exit_delay_
    log MinStakeChanged(old_value=0, new_value=min_stake_)
    log ExitDelayChanged(old_value=0, new_value=exit_delay_)


@external
def register(endpoint: String[256], model_ids: DynArray[uint256, MAX_MODELS], stake: uint256):
    """
    @notice Registers the caller as an active compute provider serving
            `model_ids` at `endpoint`, staking `stake` wei of OPEN.
    @dev Pulls `stake` from the caller with `transferFrom`, so the
         caller must have approved this contract (or used `permit`).
         The caller's address is the key that signs its compute
         receipts. An address that exited and withdrew may register
         again; one still registered (active or exiting) may not.
    @param endpoint The provider's endpoint (URL), 1 to 256 characters.
    @param model_ids The ids of the models it serves: 1 to 16,
           distinct, non-zero.
    @param stake The 32-byte stake in wei of OPEN, at least `minStake`.
    """
    assert self._providers[msg.sender].registered_at == 0, "ProviderRegistry: already registered"
    assert len(endpoint) != 0, "ProviderRegistry: empty endpoint"
    assert stake >= self.minStake, "ProviderRegistry: stake below minimum"
    self._set_models(msg.sender, model_ids)
    # `registered_at` doubles as the "registered" flag: a block timestamp is never 0.
    self._providers[msg.sender] = Provider(
        endpoint=endpoint, stake=stake, active=True, unlock_at=0, registered_at=block.timestamp
    )
    self.totalStaked += stake
    if not self._known[msg.sender]:
        self._known[msg.sender] = True
        count: uint256 = self.providerCount
        self._addresses[count] = msg.sender
        # The count is bounded by the number of transactions; 2**256 is unreachable.
        self.providerCount = unsafe_add(count, 1)
    assert extcall token.transferFrom(msg.sender, self, stake), "ProviderRegistry: transfer failed"
    log ProviderRegistered(provider=msg.sender, endpoint=endpoint, model_ids=model_ids, stake=stake)


@external
def addStake(amount: uint256):
    """
    @notice Adds `amount` wei of OPEN to the caller's stake (an active
            provider only).
    @dev Pulls `amount` from the caller with `transferFrom`.
    @param amount The 32-byte amount in wei of OPEN (not zero).
    """
    self._check_active(msg.sender)
    assert amount != 0, "ProviderRegistry: zero amount"
    stake: uint256 = self._providers[msg.sender].stake + amount
    self._providers[msg.sender].stake = stake
    self.totalStaked += amount
    assert extcall token.transferFrom(msg.sender, self, amount), "ProviderRegistry: transfer failed"
    log StakeAdded(provider=msg.sender, amount=amount, stake=stake)


@external
def setModels(model_ids: DynArray[uint256, MAX_MODELS]):
    """
    @notice Replaces the models the caller serves (an active provider
            only).
    @param model_ids The ids of the models it serves: 1 to 16,
           distinct, non-zero.
    """
    self._check_active(msg.sender)
    self._set_models(msg.sender, model_ids)
    log ModelsChanged(provider=msg.sender, model_ids=model_ids)


@external
def setEndpoint(endpoint: String[256]):
    """
    @notice Changes the caller's endpoint (an active provider only).
    @param endpoint The new endpoint (URL), 1 to 256 characters.
    """
    self._check_active(msg.sender)
    assert len(endpoint) != 0, "ProviderRegistry: empty endpoint"
    self._providers[msg.sender].endpoint = endpoint
    log EndpointChanged(provider=msg.sender, endpoint=endpoint)


@external
def exit():
    """
    @notice Stops the caller being an active provider: it serves no
            model from now on, and its stake becomes withdrawable
            `exitDelay` seconds from now (the owner may still slash it
            until it is withdrawn).
    """
    self._check_active(msg.sender)
    unlock_at: uint256 = block.timestamp + self.exitDelay
    self._providers[msg.sender].active = False
    self._providers[msg.sender].unlock_at = unlock_at
    log ProviderExited(provider=msg.sender, unlock_at=unlock_at)


@external
def withdraw():
    """
    @notice Pays the caller all that remains of its stake once the exit
            delay has passed, and clears its registration (its models
            included); the address may then register again.
    @dev The stake may be 0 after slashing; the registration is then
         cleared and nothing is transferred.
    """
    assert self._providers[msg.sender].registered_at != 0, "ProviderRegistry: not registered"
    assert not self._providers[msg.sender].active, "ProviderRegistry: still active"
    assert block.timestamp >= self._providers[msg.sender].unlock_at, "ProviderRegistry: stake locked"
    amount: uint256 = self._providers[msg.sender].stake
    for model_id: uint256 in self._models[msg.sender]:
        self._listed[msg.sender][model_id] = False
    self._models[msg.sender] = []
    self._providers[msg.sender] = empty(Provider)
    # The stake is part of the sum of all stakes.
    self.totalStaked = unsafe_sub(self.totalStaked, amount)
    if amount != 0:
        assert extcall token.transfer(msg.sender, amount), "ProviderRegistry: transfer failed"
    log ProviderWithdrawn(provider=msg.sender, amount=amount)


@external
def slash(provider: address, amount: uint256, reason: String[128]):
    """
    @notice Moves up to `amount` wei of OPEN of a registered provider's
            stake (active or exiting, not yet withdrawn) to the
            treasury (owner only). The provider stays registered.
    @param provider The 20-byte provider address.
    @param amount The 32-byte amount in wei of OPEN; more than the
           stake slashes the whole stake.
    @param reason Why, at most 128 characters (logged).
    """
    assert msg.sender == ow.owner, "ProviderRegistry: caller is not the owner"
    assert self._providers[provider].registered_at != 0, "ProviderRegistry: not registered"
    stake: uint256 = self._providers[provider].stake
    slashed: uint256 = min(amount, stake)
    assert slashed != 0, "ProviderRegistry: nothing to slash"
    # `slashed <= stake <= totalStaked`.
    stake = unsafe_sub(stake, slashed)
    self._providers[provider].stake = stake
    self.totalStaked = unsafe_sub(self.totalStaked, slashed)
    treasury: address = staticcall params.treasury()
    assert extcall token.transfer(treasury, slashed), "ProviderRegistry: transfer failed"
    log ProviderSlashed(provider=provider, amount=slashed, stake=stake, treasury=treasury, reason=reason)


@external
@view
def providers(provider: address) -> (String[256], uint256, bool, uint256, uint256):
    """
    @notice A provider's record (all zero for an address that is not
            registered, or that withdrew).
    @param provider The 20-byte provider address.
    @return String The endpoint.
    @return uint256 The 32-byte stake in wei of OPEN.
    @return bool Whether it is active (routed to).
    @return uint256 The 32-byte time its stake unlocks (0 while active).
    @return uint256 The 32-byte registration timestamp.
    """
    p: Provider = self._providers[provider]
    return p.endpoint, p.stake, p.active, p.unlock_at, p.registered_at


@external
@view
def getModels(provider: address) -> DynArray[uint256, MAX_MODELS]:
    """
    @notice The ids of the models a provider lists, in its order
            (empty for an address that is not registered).
    @param provider The 20-byte provider address.
    @return DynArray The 32-byte model ids.
    """
    return self._models[provider]


@external
@view
def serves(provider: address, model_id: uint256) -> bool:
    """
    @notice Whether a provider is active and lists a model.
    @dev Does not compare the stake with `minStake`; a gateway that
         wants a floor reads the stake with `providers`.
    @param provider The 20-byte provider address.
    @param model_id The 32-byte model id.
    @return bool The verification whether it serves the model.
    """
    return self._providers[provider].active and self._listed[provider][model_id]


@external
@view
def providerAt(index: uint256) -> address:
    """
    @notice The `index`-th address that ever registered (from 0, in
            order of first registration; each address once).
    @param index The 32-byte index, below `providerCount`.
    @return address The 20-byte provider address.
    """
    assert index < self.providerCount, "ProviderRegistry: index out of range"
    return self._addresses[index]


@external
def setMinStake(min_stake_: uint256):
    """
    @notice Sets the least stake `register` accepts (owner only);
            providers already registered keep theirs.
    @param min_stake_ The 32-byte minimum stake in wei of OPEN.
    """
    assert msg.sender == ow.owner, "ProviderRegistry: caller is not the owner"
    log MinStakeChanged(old_value=self.minStake, new_value=min_stake_)
    self.minStake = min_stake_


@external
def setExitDelay(exit_delay_: uint256):
    """
    @notice Sets the delay between `exit` and the stake unlocking
            (owner only); it applies to exits from now on.
    @param exit_delay_ The 32-byte delay in seconds, at most
           `MAX_EXIT_DELAY`.
    """
    assert msg.sender == ow.owner, "ProviderRegistry: caller is not the owner"
    assert exit_delay_ <= MAX_EXIT_DELAY, "ProviderRegistry: exit delay too long"
    log ExitDelayChanged(old_value=self.exitDelay, new_value=exit_delay_)
    self.exitDelay = exit_delay_


@external
def transfer_ownership(new_owner: address):
    """
    @notice Transfers the ownership (owner only), e.g. to the
            governance Timelock.
    @param new_owner The 20-byte new owner (not zero).
    """
    assert msg.sender == ow.owner, "ProviderRegistry: caller is not the owner"
    assert new_owner != empty(address), "ProviderRegistry: new owner is the zero address"
    ow._transfer_ownership(new_owner)


@internal
@view
def _check_active(provider: address):
    """
    @dev Reverts unless `provider` is a registered, active provider.
    @param provider The 20-byte address.
    """
    assert self._providers[provider].active, "ProviderRegistry: not an active provider"


@internal
def _set_models(provider: address, model_ids: DynArray[uint256, MAX_MODELS]):
    """
    @dev Replaces the models `provider` lists with `model_ids` (1 to
         `MAX_MODELS`, distinct, non-zero), keeping `_listed` in step.
    @param provider The 20-byte provider address.
    @param model_ids The 32-byte model ids.
    """
    assert len(model_ids) != 0, "ProviderRegistry: no models"
    for old: uint256 in self._models[provider]:
        self._listed[provider][old] = False
    for model_id: uint256 in model_ids:
        assert model_id != 0, "ProviderRegistry: zero model id"
        assert not self._listed[provider][model_id], "ProviderRegistry: duplicate model id"
        self._listed[provider][model_id] = True
    self._models[provider] = model_ids
