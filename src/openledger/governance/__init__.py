"""Governance: proposals over the protocol's parameters, votes, the Timelock, OpenCircle grants.

``keys`` is the one table of governable keys and their bounds (checked before anything is
sent); ``service`` drives the Governor and Timelock, ``grants`` the Grants contract (its
approvals and, from anyone but the committee, releases and cancellations are proposals).
See docs/governance.md.
"""
