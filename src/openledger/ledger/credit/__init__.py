"""Credit: the OPEN an account has deposited for inference, and the holds against it.

``escrow`` sends deposits and withdrawals (checking the contract's rules first), ``events``
applies the escrow's events to the credit table exactly once, ``leases`` is the
database-level hold shared by every node, and ``book`` holds each request's largest fee in
memory against those leases before any compute.
"""
