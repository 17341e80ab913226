# pragma version ~=0.4.3
# pragma nonreentrancy off
"""
@title ModelRegistry: fine-tuned models, their lineage and prices
@custom:contract-name ModelRegistry
@license Apache-2.0
@notice A registered model records who owns it and where it comes from:
        the base model id, the hash of its LoRA adapter, the roots of
        the datanet snapshots it was trained on and the hash of its
        attribution index. It also carries the prices of an inference
        in wei of OPEN per 1,000 input and output tokens. Only the
        owner may change the prices or the index hash, or hand the
        model to a new owner.
"""


# @dev The maximum number of snapshot roots of a model.
_MAX_ROOTS: constant(uint256) = 16


struct Model:
    owner: address
    base_model: String[128]
    adapter_hash: bytes32
    index_hash: bytes32
    price_in: uint256
    price_out: uint256
    metadata_uri: String[256]
    registered_at: uint256


# @dev The number of models; ids run from 1 to `modelCount`.
modelCount: public(uint256)


_models: HashMap[uint256, Model]
_snapshot_roots: HashMap[uint256, DynArray[bytes32, _MAX_ROOTS]]


# @dev Emitted when a model is registered.
event ModelRegistered:
    model_id: indexed(uint256)
    owner: indexed(address)
    base_model: String[128]
    adapter_hash: bytes32
    index_hash: bytes32
    price_in: uint256
    price_out: uint256


# @dev Emitted when the owner changes the prices.
event PricesChanged:
    model_id: indexed(uint256)
    price_in: uint256
    price_out: uint256


# @dev Emitted when the owner changes the attribution index hash.
event IndexHashChanged:
    model_id: indexed(uint256)
    index_hash: bytes32


# @dev Emitted when a model changes hands.
event ModelTransferred:
    model_id: indexed(uint256)
    old_owner: indexed(address)
    new_owner: indexed(address)


@deploy
@payable
def __init__():
    """
    @dev The constructor is `payable` to omit the `msg.value`
         check opcodes.
    """
    pass


@external
def registerModel(
    base_model: String[128],
    adapter_hash: bytes32,
    snapshot_roots: DynArray[bytes32, _MAX_ROOTS],
    index_hash: bytes32,
    price_in: uint256,
    price_out: uint256,
    metadata_uri: String[256],
) -> uint256:
    """
    @notice Registers a model owned by the caller.
    @param base_model The base model id, at most 128 characters.
    @param adapter_hash The 32-byte hash of the LoRA adapter.
    @param snapshot_roots The roots of the training snapshots (at most 16).
    @param index_hash The 32-byte hash of the attribution index.
    @param price_in The 32-byte price per 1,000 input tokens in wei.
    @param price_out The 32-byte price per 1,000 output tokens in wei.
    @param metadata_uri The metadata URI, at most 256 characters.
    @return uint256 The 32-byte new model id (from 1).
    """
    # Ids are bounded by the number of transactions; 2**256 is unreachable.
    model_id: uint256 = unsafe_add(self.modelCount, 1)
    self.modelCount = model_id
    self._models[model_id] = Model(
        owner=msg.sender,
        base_model=base_model,
        adapter_hash=adapter_hash,
        index_hash=index_hash,
        price_in=price_in,
        price_out=price_out,
        metadata_uri=metadata_uri,
        registered_at=block.timestamp,
    )
    self._snapshot_roots[model_id] = snapshot_roots
    log ModelRegistered(
        model_id=model_id,
        owner=msg.sender,
        base_model=base_model,
        adapter_hash=adapter_hash,
        index_hash=index_hash,
        price_in=price_in,
        price_out=price_out,
    )
    return model_id


@external
@view
def models(model_id: uint256) -> (address, String[128], bytes32, bytes32, uint256, uint256, String[256], uint256):
    """
    @notice A model's record (all zero for an unknown id).
    @param model_id The 32-byte model id.
    @return address The 20-byte owner.
    @return String The base model id.
    @return bytes32 The 32-byte adapter hash.
    @return bytes32 The 32-byte attribution index hash.
    @return uint256 The 32-byte price per 1,000 input tokens.
    @return uint256 The 32-byte price per 1,000 output tokens.
    @return String The metadata URI.
    @return uint256 The 32-byte registration timestamp.
    """
    m: Model = self._models[model_id]
    return m.owner, m.base_model, m.adapter_hash, m.index_hash, m.price_in, m.price_out, m.metadata_uri, m.registered_at


@external
@view
def getSnapshotRoots(model_id: uint256) -> DynArray[bytes32, _MAX_ROOTS]:
    """
    @notice The snapshot roots a model was trained on.
    @param model_id The 32-byte model id.
    @return DynArray The 32-byte snapshot roots.
    """
    return self._snapshot_roots[model_id]


@external
def setPrices(model_id: uint256, price_in: uint256, price_out: uint256):
    """
    @notice Sets a model's prices (its owner only).
    @param model_id The 32-byte model id.
    @param price_in The 32-byte price per 1,000 input tokens in wei.
    @param price_out The 32-byte price per 1,000 output tokens in wei.
    """
    self._check_model_owner(model_id)
    self._models[model_id].price_in = price_in
    self._models[model_id].price_out = price_out
    log PricesChanged(model_id=model_id, price_in=price_in, price_out=price_out)


@external
def setIndexHash(model_id: uint256, index_hash: bytes32):
    """
    @notice Sets a model's attribution index hash (its owner only),
            e.g. after the index was rebuilt.
    @param model_id The 32-byte model id.
    @param index_hash The 32-byte new index hash.
    """
    self._check_model_owner(model_id)
    self._models[model_id].index_hash = index_hash
    log IndexHashChanged(model_id=model_id, index_hash=index_hash)


@external
def transferModel(model_id: uint256, new_owner: address):
    """
    @notice Hands a model to a new owner (its owner only).
    @param model_id The 32-byte model id.
    @param new_owner The 20-byte new owner (not zero).
    """
    self._check_model_owner(model_id)
    assert new_owner != empty(address), "ModelRegistry: new owner is the zero address"
    self._models[model_id].owner = new_owner
    log ModelTransferred(model_id=model_id, old_owner=msg.sender, new_owner=new_owner)


@internal
@view
def _check_model_owner(model_id: uint256):
    """
    @dev Reverts unless `model_id` exists and the caller owns it.
    @param model_id The 32-byte model id.
    """
    assert model_id != 0 and model_id <= self.modelCount, "ModelRegistry: unknown model"
    assert msg.sender == self._models[model_id].owner, "ModelRegistry: not the model owner"
