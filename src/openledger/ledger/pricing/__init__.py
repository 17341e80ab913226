"""Pricing: the fee of a charge and its split among owner, stakers, contributors, platform
and compute provider, in exact integer wei.

``fees`` is the arithmetic (DESIGN §5), ``params`` caches the protocol parameters it prices
with, ``pricer`` is the stage thread that prices queued charges in batches, and ``process``
runs that CPU-bound work in a child process, off the node's interpreter lock.
"""
