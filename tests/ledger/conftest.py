"""The ledger tests' fixture ``market`` lives in the root conftest (tests/market.py builds it);
these names are re-exported for modules that import them from here."""

from tests.market import Market, deposit, make_operator

__all__ = ["Market", "deposit", "make_operator"]
