"""Governance: proposals over the protocol's parameters, votes, the Timelock, OpenCircle grants.

``keys`` is the one table of governable keys and their bounds (checked before anything is
sent); ``service`` drives the Governor, Timelock and Grants contracts. See docs/governance.md.
"""
