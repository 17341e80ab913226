# pragma version ~=0.4.3
# pragma nonreentrancy off
"""
@title AgentRegistry: agents built on registered models
@custom:contract-name AgentRegistry
@license Apache-2.0
@notice An agent is a registered model plus a configuration (system
        prompt, sampling defaults, retrieval over datanets, the models
        and agents it may call) kept off chain and committed here by
        its 32-byte hash. The registry records the agent's owner, its
        model, the hash of its configuration, its price per call in
        wei of OPEN, whether it is active, and the models and agents it
        may call. Names are unique. Callees must exist when the agent
        is registered and cannot change afterwards, so the call graph
        never has a cycle; an agent's depth (1 plus the deepest agent
        it calls) is bounded by `MAX_DEPTH`. Only the owner may change
        the configuration hash, the price or the active flag, or hand
        the agent to a new owner.
"""


interface IModelRegistry:
    def modelCount() -> uint256: view


# @dev The deepest call chain an agent may start (itself included).
MAX_DEPTH: public(constant(uint256)) = 4


# @dev The maximum number of agents, and of models, an agent may call.
_MAX_CALLEES: constant(uint256) = 8


struct Agent:
    owner: address
    model_id: uint256
    config_hash: bytes32
    price: uint256
    active: bool
    depth: uint256
    name: String[64]
    registered_at: uint256


# @dev The ModelRegistry whose models agents are built on and call.
modelRegistry: public(immutable(IModelRegistry))


# @dev The number of agents; ids run from 1 to `agentCount`.
agentCount: public(uint256)


_agents: HashMap[uint256, Agent]
_agent_callees: HashMap[uint256, DynArray[uint256, _MAX_CALLEES]]
_model_callees: HashMap[uint256, DynArray[uint256, _MAX_CALLEES]]
_ids: HashMap[bytes32, uint256]


# @dev Emitted when an agent is registered.
event AgentRegistered:
    agent_id: indexed(uint256)
    owner: indexed(address)
    model_id: indexed(uint256)
    name: String[64]
    config_hash: bytes32
    price: uint256
    depth: uint256
    agent_callees: DynArray[uint256, _MAX_CALLEES]
    model_callees: DynArray[uint256, _MAX_CALLEES]


# @dev Emitted when the owner commits a new configuration.
event AgentConfigChanged:
    agent_id: indexed(uint256)
    config_hash: bytes32


# @dev Emitted when the owner changes the price.
event AgentPriceChanged:
    agent_id: indexed(uint256)
    price: uint256


# @dev Emitted when the owner pauses or resumes the agent.
event AgentActiveChanged:
    agent_id: indexed(uint256)
    active: bool


# @dev Emitted when an agent changes hands.
event AgentTransferred:
    agent_id: indexed(uint256)
    old_owner: indexed(address)
    new_owner: indexed(address)


@deploy
@payable
def __init__(model_registry_: address):
    """
    @dev The constructor is `payable` to omit the `msg.value`
         check opcodes.
    @param model_registry_ The 20-byte ModelRegistry address.
    """
    assert model_registry_ != empty(address), "AgentRegistry: model registry is the zero address"
    modelRegistry = IModelRegistry(model_registry_)


@external
def registerAgent(
    name: String[64],
    model_id: uint256,
    config_hash: bytes32,
    price: uint256,
    agent_callees: DynArray[uint256, _MAX_CALLEES],
    model_callees: DynArray[uint256, _MAX_CALLEES],
) -> uint256:
    """
    @notice Registers an active agent owned by the caller.
    @dev Every callee must already exist, so no registration can
         close a cycle; the new agent's depth is one more than the
         deepest agent it calls and must not exceed `MAX_DEPTH`.
    @param name The unique name, 1 to 64 characters.
    @param model_id The 32-byte id of the model the agent runs.
    @param config_hash The 32-byte hash of the configuration.
    @param price The 32-byte price per call in wei.
    @param agent_callees The ids of the agents it may call (at most 8).
    @param model_callees The ids of the models it may call (at most 8).
    @return uint256 The 32-byte new agent id (from 1).
    """
    assert len(name) != 0, "AgentRegistry: empty name"
    key: bytes32 = keccak256(name)
    assert self._ids[key] == 0, "AgentRegistry: name taken"
    model_count: uint256 = staticcall modelRegistry.modelCount()
    assert model_id != 0 and model_id <= model_count, "AgentRegistry: unknown model"
    for m: uint256 in model_callees:
        assert m != 0 and m <= model_count, "AgentRegistry: unknown callee model"
    count: uint256 = self.agentCount
    depth: uint256 = 1
    for a: uint256 in agent_callees:
        assert a != 0 and a <= count, "AgentRegistry: unknown callee agent"
        depth = max(depth, self._agents[a].depth + 1)
    assert depth <= MAX_DEPTH, "AgentRegistry: call depth over the limit"
    # Ids are bounded by the number of transactions; 2**256 is unreachable.
    agent_id: uint256 = unsafe_add(count, 1)
    self.agentCount = agent_id
    self._ids[key] = agent_id
    self._agents[agent_id] = Agent(
        owner=msg.sender,
        model_id=model_id,
        config_hash=config_hash,
        price=price,
        active=True,
        depth=depth,
        name=name,
        registered_at=block.timestamp,
    )
    self._agent_callees[agent_id] = agent_callees
    self._model_callees[agent_id] = model_callees
    log AgentRegistered(
        agent_id=agent_id,
        owner=msg.sender,
        model_id=model_id,
        name=name,
        config_hash=config_hash,
        price=price,
        depth=depth,
        agent_callees=agent_callees,
        model_callees=model_callees,
    )
    return agent_id


@external
@view
def agents(agent_id: uint256) -> (address, uint256, bytes32, uint256, bool, uint256, String[64], uint256):
    """
    @notice An agent's record (all zero for an unknown id).
    @param agent_id The 32-byte agent id.
    @return address The 20-byte owner.
    @return uint256 The 32-byte model id.
    @return bytes32 The 32-byte configuration hash.
    @return uint256 The 32-byte price per call.
    @return bool Whether the agent is active.
    @return uint256 The 32-byte call depth.
    @return String The name.
    @return uint256 The 32-byte registration timestamp.
    """
    a: Agent = self._agents[agent_id]
    return a.owner, a.model_id, a.config_hash, a.price, a.active, a.depth, a.name, a.registered_at


@external
@view
def agentIdOf(name: String[64]) -> uint256:
    """
    @notice The id of the agent with this name (0 if none).
    @param name The agent's name.
    @return uint256 The 32-byte agent id.
    """
    return self._ids[keccak256(name)]


@external
@view
def getCallees(agent_id: uint256) -> (DynArray[uint256, _MAX_CALLEES], DynArray[uint256, _MAX_CALLEES]):
    """
    @notice The agents and the models an agent may call.
    @param agent_id The 32-byte agent id.
    @return DynArray The 32-byte ids of the agents.
    @return DynArray The 32-byte ids of the models.
    """
    return self._agent_callees[agent_id], self._model_callees[agent_id]


@external
def setConfig(agent_id: uint256, config_hash: bytes32):
    """
    @notice Commits a new configuration hash (its owner only); the
            callees stay those it was registered with.
    @param agent_id The 32-byte agent id.
    @param config_hash The 32-byte hash of the new configuration.
    """
    self._check_agent_owner(agent_id)
    self._agents[agent_id].config_hash = config_hash
    log AgentConfigChanged(agent_id=agent_id, config_hash=config_hash)


@external
def setPrice(agent_id: uint256, price: uint256):
    """
    @notice Sets an agent's price per call (its owner only).
    @param agent_id The 32-byte agent id.
    @param price The 32-byte price per call in wei.
    """
    self._check_agent_owner(agent_id)
    self._agents[agent_id].price = price
    log AgentPriceChanged(agent_id=agent_id, price=price)


@external
def setActive(agent_id: uint256, active: bool):
    """
    @notice Pauses (`False`) or resumes (`True`) an agent (its owner
            only); a paused agent takes no calls.
    @param agent_id The 32-byte agent id.
    @param active Whether the agent takes calls.
    """
    self._check_agent_owner(agent_id)
    self._agents[agent_id].active = active
    log AgentActiveChanged(agent_id=agent_id, active=active)


@external
def transferAgent(agent_id: uint256, new_owner: address):
    """
    @notice Hands an agent to a new owner (its owner only).
    @param agent_id The 32-byte agent id.
    @param new_owner The 20-byte new owner (not zero).
    """
    self._check_agent_owner(agent_id)
    assert new_owner != empty(address), "AgentRegistry: new owner is the zero address"
    self._agents[agent_id].owner = new_owner
    log AgentTransferred(agent_id=agent_id, old_owner=msg.sender, new_owner=new_owner)


@internal
@view
def _check_agent_owner(agent_id: uint256):
    """
    @dev Reverts unless `agent_id` exists and the caller owns it.
    @param agent_id The 32-byte agent id.
    """
    assert agent_id != 0 and agent_id <= self.agentCount, "AgentRegistry: unknown agent"
    assert msg.sender == self._agents[agent_id].owner, "AgentRegistry: not the agent owner"
