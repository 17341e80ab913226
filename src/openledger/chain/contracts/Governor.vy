# pragma version ~=0.4.3
# pragma nonreentrancy off
"""
@title Governor: stake-weighted proposals, votes and their hand-off to the Timelock
@custom:contract-name Governor
@license Apache-2.0
@notice OPEN holders who delegated their votes propose lists of calls
        (at most 8: target, value, calldata), vote for, against or
        abstain, and a proposal that passed is queued in the Timelock
        and executed by anyone once the Timelock's delay has passed.
        Votes are read from `OpenToken` checkpoints at the proposal's
        snapshot (`created + voting_delay`, ERC-6372 timestamp clock),
        so tokens bought or borrowed after the snapshot do not count.
        A proposal passes when `for + abstain` reaches the quorum
        (`quorum_bps` of the total supply at the snapshot) and
        `for > against`.
        The settings (voting delay, voting period, proposal threshold,
        quorum, guardian) change only through a proposal: their
        setters accept calls from the Timelock alone.
        Proposal states (as OpenZeppelin's): 0 Pending, 1 Active,
        2 Canceled, 3 Defeated, 4 Succeeded, 5 Queued, 6 Expired
        (unused), 7 Executed.
@dev The calls are stored with the proposal so that `queue(id)` and
     `execute(id)` need no arguments; the Timelock operation is the
     batch of those calls with no predecessor and the salt
     `bytes32(id)`. The Timelock is set once after deployment by the
     deployer (`initTimelock`), because the Timelock needs the
     Governor's address as its proposer.
"""


# @dev The most calls one proposal may carry.
_MAX_ACTIONS: constant(uint256) = 8


# @dev The largest calldata of one call (as the Timelock's).
_MAX_CALLDATA: constant(uint256) = 1_024


# @dev The Timelock's batch bound (snekmate: `max_value(uint8)`).
_TL_BOUND: constant(uint256) = 255


# @dev 100% in basis points.
_BPS: constant(uint256) = 10_000


PENDING: constant(uint8) = 0
ACTIVE: constant(uint8) = 1
CANCELED: constant(uint8) = 2
DEFEATED: constant(uint8) = 3
SUCCEEDED: constant(uint8) = 4
QUEUED: constant(uint8) = 5
EXECUTED: constant(uint8) = 7


VOTE_AGAINST: constant(uint8) = 0
VOTE_FOR: constant(uint8) = 1
VOTE_ABSTAIN: constant(uint8) = 2


interface IVotes:
    def getPastVotes(account: address, timepoint: uint256) -> uint256: view
    def getPastTotalSupply(timepoint: uint256) -> uint256: view
    def clock() -> uint48: view


interface ITimelock:
    def schedule_batch(
        targets: DynArray[address, _TL_BOUND],
        amounts: DynArray[uint256, _TL_BOUND],
        payloads: DynArray[Bytes[_MAX_CALLDATA], _TL_BOUND],
        predecessor: bytes32,
        salt: bytes32,
        delay: uint256,
    ): nonpayable
    def execute_batch(
        targets: DynArray[address, _TL_BOUND],
        amounts: DynArray[uint256, _TL_BOUND],
        payloads: DynArray[Bytes[_MAX_CALLDATA], _TL_BOUND],
        predecessor: bytes32,
        salt: bytes32,
    ): payable
    def cancel(id: bytes32): nonpayable
    def hash_operation_batch(
        targets: DynArray[address, _TL_BOUND],
        amounts: DynArray[uint256, _TL_BOUND],
        payloads: DynArray[Bytes[_MAX_CALLDATA], _TL_BOUND],
        predecessor: bytes32,
        salt: bytes32,
    ) -> bytes32: view
    def is_operation_done(id: bytes32) -> bool: view
    def is_operation(id: bytes32) -> bool: view
    def get_timestamp(id: bytes32) -> uint256: view
    def get_minimum_delay() -> uint256: view


struct Proposal:
    proposer: address
    snapshot: uint256
    deadline: uint256
    quorum_bps: uint256
    against_votes: uint256
    for_votes: uint256
    abstain_votes: uint256
    eta: uint256
    canceled: bool
    executed: bool


# @dev The OPEN token (ERC-5805 votes).
token: public(immutable(IVotes))


# @dev The Timelock that queues and executes passed proposals.
timelock: public(ITimelock)


# @dev The deployer, allowed to call `initTimelock` once.
_initializer: address


# @dev Seconds from a proposal's creation to its snapshot (voting starts).
voting_delay: public(uint256)


# @dev Seconds from the snapshot to the end of voting.
voting_period: public(uint256)


# @dev Votes (wei of OPEN) a proposer needs one second before proposing.
proposal_threshold: public(uint256)


# @dev The quorum as basis points of the total supply at the snapshot.
quorum_bps: public(uint256)


# @dev An address governance may appoint to cancel any proposal that
# has not been executed (zero: nobody but the proposer while pending).
guardian: public(address)


# @dev The number of proposals; ids start at 1.
proposal_count: public(uint256)


_proposals: HashMap[uint256, Proposal]
_targets: HashMap[uint256, DynArray[address, _MAX_ACTIONS]]
_values: HashMap[uint256, DynArray[uint256, _MAX_ACTIONS]]
_calldatas: HashMap[uint256, DynArray[Bytes[_MAX_CALLDATA], _MAX_ACTIONS]]
_descriptions: HashMap[uint256, String[512]]


# @dev Returns whether `account` voted on proposal `id`.
hasVoted: public(HashMap[uint256, HashMap[address, bool]])


event ProposalCreated:
    proposal_id: indexed(uint256)
    proposer: indexed(address)
    targets: DynArray[address, _MAX_ACTIONS]
    values: DynArray[uint256, _MAX_ACTIONS]
    calldatas: DynArray[Bytes[_MAX_CALLDATA], _MAX_ACTIONS]
    snapshot: uint256
    deadline: uint256
    description: String[512]


event VoteCast:
    voter: indexed(address)
    proposal_id: indexed(uint256)
    support: uint8
    weight: uint256


event ProposalQueued:
    proposal_id: indexed(uint256)
    eta: uint256


event ProposalExecuted:
    proposal_id: indexed(uint256)


event ProposalCanceled:
    proposal_id: indexed(uint256)


event SettingChanged:
    name: String[32]
    old_value: uint256
    new_value: uint256


event GuardianChanged:
    old: indexed(address)
    new: indexed(address)


event TimelockSet:
    timelock: indexed(address)


@deploy
@payable
def __init__(
    token_: IVotes, voting_delay_: uint256, voting_period_: uint256, proposal_threshold_: uint256, quorum_bps_: uint256
):
    """
    @dev Sets the settings; the deployer must call `initTimelock`
         next. The constructor is `payable` to omit the `msg.value`
         check opcodes.
    @param token_ The 20-byte OPEN token address.
    @param voting_delay_ The 32-byte voting delay in seconds.
    @param voting_period_ The 32-byte voting period in seconds (not zero).
    @param proposal_threshold_ The 32-byte proposal threshold in wei of OPEN.
    @param quorum_bps_ The 32-byte quorum in bps of the supply (1 to 10,000).
    """
    assert token_.address != empty(address), "Governor: zero address"
    assert voting_period_ != 0, "Governor: voting period is zero"
    assert quorum_bps_ != 0 and quorum_bps_ <= _BPS, "Governor: quorum out of range"
    token = token_
    self._initializer = msg.sender
    self.voting_delay = voting_delay_
    self.voting_period = voting_period_
    self.proposal_threshold = proposal_threshold_
    self.quorum_bps = quorum_bps_


@external
def initTimelock(timelock_: ITimelock):
    """
    @notice Sets the Timelock (the deployer only, once).
    @param timelock_ The 20-byte Timelock address (not zero).
    """
    assert msg.sender == self._initializer, "Governor: caller is not the deployer"
    assert self.timelock.address == empty(address), "Governor: timelock already set"
    assert timelock_.address != empty(address), "Governor: zero address"
    self.timelock = timelock_
    self._initializer = empty(address)
    log TimelockSet(timelock=timelock_.address)


@external
def propose(
    targets: DynArray[address, _MAX_ACTIONS],
    values: DynArray[uint256, _MAX_ACTIONS],
    calldatas: DynArray[Bytes[_MAX_CALLDATA], _MAX_ACTIONS],
    description: String[512],
) -> uint256:
    """
    @notice Creates a proposal to make the Timelock call each
            `targets[i]` with `values[i]` wei and `calldatas[i]`.
    @dev The caller needs `proposal_threshold` votes one second
         before now. The snapshot is `now + voting_delay`; voting
         ends at `snapshot + voting_period`.
    @param targets The 20-byte call targets (1 to 8).
    @param values The 32-byte wei sent with each call.
    @param calldatas The ABI-encoded calls (at most 1,024 bytes each).
    @param description The human-readable description (at most 512 characters).
    @return uint256 The 32-byte proposal id (from 1).
    """
    assert self.timelock.address != empty(address), "Governor: timelock not set"
    assert len(targets) != 0, "Governor: empty proposal"
    assert len(targets) == len(values) and len(targets) == len(calldatas), "Governor: length mismatch"
    # `block.timestamp >= 1` on every real chain.
    votes: uint256 = staticcall token.getPastVotes(msg.sender, unsafe_sub(block.timestamp, 1))
    assert votes >= self.proposal_threshold, "Governor: votes below proposal threshold"
    # Ids increase by one per proposal; 2**256 is unreachable.
    pid: uint256 = unsafe_add(self.proposal_count, 1)
    self.proposal_count = pid
    snapshot: uint256 = block.timestamp + self.voting_delay
    deadline: uint256 = snapshot + self.voting_period
    self._proposals[pid] = Proposal(
        proposer=msg.sender,
        snapshot=snapshot,
        deadline=deadline,
        quorum_bps=self.quorum_bps,
        against_votes=0,
        for_votes=0,
        abstain_votes=0,
        eta=0,
        canceled=False,
        executed=False,
    )
    self._targets[pid] = targets
    self._values[pid] = values
    self._calldatas[pid] = calldatas
    self._descriptions[pid] = description
    log ProposalCreated(
        proposal_id=pid,
        proposer=msg.sender,
        targets=targets,
        values=values,
        calldatas=calldatas,
        snapshot=snapshot,
        deadline=deadline,
        description=description,
    )
    return pid


@external
def castVote(proposal_id: uint256, support: uint8) -> uint256:
    """
    @notice Votes on an active proposal with the caller's votes at
            its snapshot: 0 against, 1 for, 2 abstain. Once per
            account and proposal.
    @param proposal_id The 32-byte proposal id.
    @param support The 1-byte choice (0, 1 or 2).
    @return uint256 The 32-byte weight counted.
    """
    assert self._state(proposal_id) == ACTIVE, "Governor: voting is not active"
    assert support <= VOTE_ABSTAIN, "Governor: invalid vote type"
    assert not self.hasVoted[proposal_id][msg.sender], "Governor: already voted"
    p: Proposal = self._proposals[proposal_id]
    weight: uint256 = staticcall token.getPastVotes(msg.sender, p.snapshot)
    assert weight != 0, "Governor: no votes at the snapshot"
    self.hasVoted[proposal_id][msg.sender] = True
    # Each tally is at most the total supply (1e27): votes at one
    # snapshot sum to at most the supply and each account counts once.
    if support == VOTE_AGAINST:
        self._proposals[proposal_id].against_votes = unsafe_add(p.against_votes, weight)
    elif support == VOTE_FOR:
        self._proposals[proposal_id].for_votes = unsafe_add(p.for_votes, weight)
    else:
        self._proposals[proposal_id].abstain_votes = unsafe_add(p.abstain_votes, weight)
    log VoteCast(voter=msg.sender, proposal_id=proposal_id, support=support, weight=weight)
    return weight


@external
def queue(proposal_id: uint256) -> uint256:
    """
    @notice Schedules a succeeded proposal in the Timelock (anyone).
    @param proposal_id The 32-byte proposal id.
    @return uint256 The 32-byte timestamp from which it can be executed.
    """
    assert self._state(proposal_id) == SUCCEEDED, "Governor: proposal not successful"
    delay: uint256 = staticcall self.timelock.get_minimum_delay()
    extcall self.timelock.schedule_batch(
        self._tl_targets(proposal_id),
        self._tl_values(proposal_id),
        self._tl_calldatas(proposal_id),
        empty(bytes32),
        convert(proposal_id, bytes32),
        delay,
    )
    eta: uint256 = block.timestamp + delay
    self._proposals[proposal_id].eta = eta
    log ProposalQueued(proposal_id=proposal_id, eta=eta)
    return eta


@external
@payable
def execute(proposal_id: uint256):
    """
    @notice Executes a queued proposal through the Timelock once its
            delay has passed (anyone); `msg.value` is forwarded.
    @param proposal_id The 32-byte proposal id.
    """
    assert self._state(proposal_id) == QUEUED, "Governor: proposal not queued"
    self._proposals[proposal_id].executed = True
    extcall self.timelock.execute_batch(
        self._tl_targets(proposal_id),
        self._tl_values(proposal_id),
        self._tl_calldatas(proposal_id),
        empty(bytes32),
        convert(proposal_id, bytes32),
        value=msg.value,
    )
    log ProposalExecuted(proposal_id=proposal_id)


@external
def cancel(proposal_id: uint256):
    """
    @notice Cancels a proposal: the proposer while it is pending,
            the guardian at any time before it is executed. A queued
            proposal is cancelled in the Timelock too.
    @param proposal_id The 32-byte proposal id.
    """
    st: uint8 = self._state(proposal_id)
    p: Proposal = self._proposals[proposal_id]
    if msg.sender == p.proposer and st == PENDING:
        pass
    else:
        assert msg.sender == self.guardian and msg.sender != empty(address), "Governor: caller cannot cancel"
        assert st != CANCELED and st != EXECUTED, "Governor: proposal already final"
    self._proposals[proposal_id].canceled = True
    if st == QUEUED:
        extcall self.timelock.cancel(self._operation_id(proposal_id))
    log ProposalCanceled(proposal_id=proposal_id)


@external
@view
def state(proposal_id: uint256) -> uint8:
    """
    @notice The state of a proposal (see the contract notice).
    @param proposal_id The 32-byte proposal id (reverts if unknown).
    @return uint8 The 1-byte state.
    """
    return self._state(proposal_id)


@external
@view
def proposals(proposal_id: uint256) -> Proposal:
    """
    @notice Everything recorded about a proposal except its calls.
    @param proposal_id The 32-byte proposal id.
    @return Proposal The proposer, snapshot, deadline, quorum in bps,
            the tallies, the eta and the cancelled/executed flags
            (all zero if unknown).
    """
    return self._proposals[proposal_id]


@external
@view
def proposalVotes(proposal_id: uint256) -> (uint256, uint256, uint256):
    """
    @notice The tallies of a proposal.
    @param proposal_id The 32-byte proposal id.
    @return uint256 The 32-byte votes against.
    @return uint256 The 32-byte votes for.
    @return uint256 The 32-byte abstentions.
    """
    p: Proposal = self._proposals[proposal_id]
    return p.against_votes, p.for_votes, p.abstain_votes


@external
@view
def getActions(
    proposal_id: uint256,
) -> (DynArray[address, _MAX_ACTIONS], DynArray[uint256, _MAX_ACTIONS], DynArray[Bytes[_MAX_CALLDATA], _MAX_ACTIONS]):
    """
    @notice The calls of a proposal.
    @param proposal_id The 32-byte proposal id.
    @return DynArray The 20-byte targets.
    @return DynArray The 32-byte values.
    @return DynArray The calldatas.
    """
    return self._targets[proposal_id], self._values[proposal_id], self._calldatas[proposal_id]


@external
@view
def description(proposal_id: uint256) -> String[512]:
    """
    @notice The description of a proposal.
    @param proposal_id The 32-byte proposal id.
    @return String The description.
    """
    return self._descriptions[proposal_id]


@external
@view
def quorum(timepoint: uint256) -> uint256:
    """
    @notice The votes needed at a past `timepoint` under the current
            quorum setting (each proposal keeps the setting it was
            created with).
    @param timepoint The 32-byte past timestamp.
    @return uint256 The 32-byte quorum in wei of OPEN.
    """
    return staticcall token.getPastTotalSupply(timepoint) * self.quorum_bps // _BPS


@external
@view
def operationId(proposal_id: uint256) -> bytes32:
    """
    @notice The Timelock operation id of a proposal's calls.
    @param proposal_id The 32-byte proposal id.
    @return bytes32 The 32-byte operation id.
    """
    return self._operation_id(proposal_id)


@external
def setVotingDelay(new_value: uint256):
    """
    @notice Sets the voting delay (the Timelock only).
    @param new_value The 32-byte delay in seconds.
    """
    self._only_governance()
    log SettingChanged(name="voting_delay", old_value=self.voting_delay, new_value=new_value)
    self.voting_delay = new_value


@external
def setVotingPeriod(new_value: uint256):
    """
    @notice Sets the voting period (the Timelock only).
    @param new_value The 32-byte period in seconds (not zero).
    """
    self._only_governance()
    assert new_value != 0, "Governor: voting period is zero"
    log SettingChanged(name="voting_period", old_value=self.voting_period, new_value=new_value)
    self.voting_period = new_value


@external
def setProposalThreshold(new_value: uint256):
    """
    @notice Sets the proposal threshold (the Timelock only).
    @param new_value The 32-byte threshold in wei of OPEN.
    """
    self._only_governance()
    log SettingChanged(name="proposal_threshold", old_value=self.proposal_threshold, new_value=new_value)
    self.proposal_threshold = new_value


@external
def setQuorumBps(new_value: uint256):
    """
    @notice Sets the quorum for proposals created from now on (the
            Timelock only).
    @param new_value The 32-byte quorum in bps of the supply (1 to 10,000).
    """
    self._only_governance()
    assert new_value != 0 and new_value <= _BPS, "Governor: quorum out of range"
    log SettingChanged(name="quorum_bps", old_value=self.quorum_bps, new_value=new_value)
    self.quorum_bps = new_value


@external
def setGuardian(new_guardian: address):
    """
    @notice Appoints the guardian who may cancel proposals (the
            Timelock only; zero removes it).
    @param new_guardian The 20-byte guardian address.
    """
    self._only_governance()
    log GuardianChanged(old=self.guardian, new=new_guardian)
    self.guardian = new_guardian


@internal
@view
def _only_governance():
    """
    @dev Reverts unless the caller is the Timelock.
    """
    assert msg.sender == self.timelock.address, "Governor: caller is not the timelock"


@internal
@view
def _state(proposal_id: uint256) -> uint8:
    """
    @dev The state of a proposal; reverts if it does not exist.
    @param proposal_id The 32-byte proposal id.
    @return uint8 The 1-byte state.
    """
    p: Proposal = self._proposals[proposal_id]
    assert p.proposer != empty(address), "Governor: unknown proposal"
    if p.executed:
        return EXECUTED
    if p.canceled:
        return CANCELED
    if block.timestamp <= p.snapshot:
        return PENDING
    if block.timestamp <= p.deadline:
        return ACTIVE
    if p.eta != 0:
        op: bytes32 = self._operation_id(proposal_id)
        if staticcall self.timelock.is_operation_done(op):
            return EXECUTED
        if staticcall self.timelock.is_operation(op):
            return QUEUED
        # Cancelled in the Timelock directly.
        return CANCELED
    supply: uint256 = staticcall token.getPastTotalSupply(p.snapshot)
    needed: uint256 = supply * p.quorum_bps // _BPS
    # Both tallies are at most the total supply (1e27).
    if unsafe_add(p.for_votes, p.abstain_votes) >= needed and p.for_votes > p.against_votes:
        return SUCCEEDED
    return DEFEATED


@internal
@view
def _operation_id(proposal_id: uint256) -> bytes32:
    """
    @dev The Timelock operation id of a proposal's calls.
    @param proposal_id The 32-byte proposal id.
    @return bytes32 The 32-byte operation id.
    """
    return staticcall self.timelock.hash_operation_batch(
        self._tl_targets(proposal_id),
        self._tl_values(proposal_id),
        self._tl_calldatas(proposal_id),
        empty(bytes32),
        convert(proposal_id, bytes32),
    )


@internal
@view
def _tl_targets(proposal_id: uint256) -> DynArray[address, _TL_BOUND]:
    """
    @dev The targets as the Timelock's array type.
    @param proposal_id The 32-byte proposal id.
    @return DynArray The 20-byte targets.
    """
    out: DynArray[address, _TL_BOUND] = []
    for t: address in self._targets[proposal_id]:
        out.append(t)
    return out


@internal
@view
def _tl_values(proposal_id: uint256) -> DynArray[uint256, _TL_BOUND]:
    """
    @dev The values as the Timelock's array type.
    @param proposal_id The 32-byte proposal id.
    @return DynArray The 32-byte values.
    """
    out: DynArray[uint256, _TL_BOUND] = []
    for v: uint256 in self._values[proposal_id]:
        out.append(v)
    return out


@internal
@view
def _tl_calldatas(proposal_id: uint256) -> DynArray[Bytes[_MAX_CALLDATA], _TL_BOUND]:
    """
    @dev The calldatas as the Timelock's array type.
    @param proposal_id The 32-byte proposal id.
    @return DynArray The calldatas.
    """
    out: DynArray[Bytes[_MAX_CALLDATA], _TL_BOUND] = []
    for c: Bytes[_MAX_CALLDATA] in self._calldatas[proposal_id]:
        out.append(c)
    return out
