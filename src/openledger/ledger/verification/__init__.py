"""Verification: checking a receipt's attribution without trusting the operator.

``proofs`` is what a node publishes for each receipt, ``verify`` recomputes the attribution
from those public artefacts, and ``remote_source`` fetches them from a node over HTTP.
"""
