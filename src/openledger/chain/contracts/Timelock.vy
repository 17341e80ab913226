# pragma version ~=0.4.3
# pragma nonreentrancy off
"""
@title Timelock: the delay between a passed proposal and its effect
@custom:contract-name Timelock
@license Apache-2.0
@notice snekmate's `timelock_controller`, configured for OpenLedger
        governance: the Governor is the only proposer (and canceller),
        anyone may execute an operation once its delay has passed
        (the open `EXECUTOR_ROLE`), and the Timelock administers
        itself, so that roles and the minimum delay change only
        through a proposal that the Timelock itself executes
        (`update_delay`, `grantRole`, `revokeRole`).
        The Timelock owns `ProtocolParams`, `RewardDistributor` and
        `Grants`, and is the treasury: it holds the treasury's OPEN.
@dev No optional admin is set: the constructor grants the roles
     directly, so nothing needs to be renounced after deployment.
"""


from snekmate.auth import access_control
initializes: access_control


from snekmate.governance import timelock_controller as tc
initializes: tc[access_control := access_control]


exports: tc.__interface__


@deploy
@payable
def __init__(minimum_delay_: uint256, governor_: address):
    """
    @dev Grants the proposer and canceller roles to `governor_`
         and the executor role to everyone (the zero address). The
         constructor is `payable` to omit the `msg.value` check
         opcodes.
    @param minimum_delay_ The 32-byte minimum delay in seconds.
    @param governor_ The 20-byte Governor address (not zero).
    """
    assert governor_ != empty(address), "Timelock: zero address"
    access_control.__init__()
    tc.__init__(minimum_delay_, [governor_], [empty(address)], empty(address))
