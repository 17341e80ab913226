"""The credit book: credit held for requests in flight, against this node's credit leases.

A request's largest fee is *held* (``reserve``) before any compute, in memory against the
credit this node has *leased* in the database (``ledger.leases``: under the database's write
lock, so every node on one database together never holds more than an account has); when the
lease runs short, more is leased. A keeper thread renews the leases while they are held,
shrinks one the database cut (a withdrawal), gives back what idle accounts do not hold and
expires other nodes' dead leases. A hold ends once: charged (the receipt writer consumes its
lease in the transaction of its receipt, ``settle_group``), refused, or released.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from openledger.errors import PaymentRequiredError, ValidationError
from openledger.ledger.credit.events import checksum
from openledger.ledger.credit.leases import (
    IDLE_RETURN_S,
    LEASE_TTL_S,
    RENEW_S,
    CreditLeases,
    release_node,
)
from openledger.ledger.pricing.fees import fee
from openledger.ledger.receipts.content import AgentTerms, ComputeProof
from openledger.store.db import Database
from openledger.store.ledger_tables import CreditRow
from openledger.units import fmt_open as format_open

log = logging.getLogger(__name__)


def credit_short(account: str, available: int, cost: str, *, fewer: str) -> PaymentRequiredError:
    """The 402 of a request ``account``'s credit (``available`` wei) cannot cover: ``cost``
    says what the request can cost, ``fewer`` what the caller may ask less of."""
    have = max(available, 0)
    return PaymentRequiredError(
        f"account {account} has {format_open(have)} OPEN of inference credit; {cost}.",
        field="credit",
        value=str(have),
        fix=f"deposit OPEN into the InferenceEscrow as credit first, or ask for {fewer}.",
    )


@dataclass
class Hold:
    """Credit set aside for one request until it is charged or released."""

    account: str
    model: dict[str, Any]
    prompt_tokens: int
    max_tokens: int
    amount: int
    id: int = 0
    settled: bool = False
    charging: bool = False
    agent: AgentTerms | None = None  # a call to this agent: its price is held and charged too
    inner: tuple[str, ...] = ()  # the receipts of the calls the agent made for this one
    compute: ComputeProof | None = None  # the provider that served it (docs/providers.md)


class CreditBook:
    """Holds and leases of one node (see the module docstring)."""

    def __init__(self, db: Database, node_id: str, clock: Callable[[], float]) -> None:
        self.db = db
        self.node_id = node_id
        self._clock = clock
        self._lock = threading.Lock()  # leases + holds
        self._held: dict[str, int] = defaultdict(int)  # in flight, by account
        self._lease: dict[str, int] = defaultdict(int)  # leased to this node (the database's)
        self._last_use: dict[str, float] = {}
        self._lease_lock = threading.Lock()  # one lease taken at a time
        self._leases = CreditLeases(db, node_id)
        self._keeper: threading.Thread | None = None
        self._keeper_stop = threading.Event()
        self._hold_ids = itertools.count(1)
        self.metrics: Any = None  # NodeMetrics (hold_taken, hold_refused)

    # ------------------------------------------------------------------ reads

    def credit(self, account: str) -> dict[str, Any]:
        """The account's credit as the node sees it (wei as decimal strings)."""
        account = checksum(account)
        with self.db.session() as s:
            row = s.get(CreditRow, account)
            values = {
                k: getattr(row, k) if row else 0
                for k in ("deposited", "withdrawn", "charged", "collected", "pending_withdrawal")
            }
            ready_at = row.withdrawal_ready_at if row else 0
        with self._lock:
            held = self._held.get(account, 0)
            leased = self._lease.get(account, 0)
        available = (
            values["deposited"]
            - values["withdrawn"]
            - values["charged"]
            - values["pending_withdrawal"]
        )
        return {
            "account": account,
            **{k: str(v) for k, v in values.items()},
            "withdrawal_ready_at": ready_at,
            "held": str(held),
            "leased": str(leased),
            "available": str(available - held),
        }

    def holds_in_flight(self) -> tuple[int, int]:
        """(wei held, accounts with holds) for requests not yet charged or released."""
        with self._lock:
            held = [v for v in self._held.values() if v > 0]
        return sum(held), len(held)

    # ------------------------------------------------------------------ holds

    def reserve(
        self,
        account: str,
        model: dict[str, Any],
        prompt_tokens: int,
        max_tokens: int,
        *,
        agent: AgentTerms | None = None,
    ) -> Hold:
        """Hold the largest fee this request can cost, or raise PaymentRequiredError (402):
        in memory against this node's lease, leasing more from the database when it runs
        short (ledger/credit/leases.py). A call to ``agent`` holds its price on top."""
        account = checksum(account)
        price_in, price_out = int(model["price_in"]), int(model["price_out"])
        amount = fee(prompt_tokens, max_tokens, price_in, price_out)
        if agent is not None:
            amount += agent.price
        hold, available = self._reserve(account, amount, model, prompt_tokens, max_tokens)
        if hold is not None:
            hold.agent = agent
            return hold
        if self.metrics is not None:
            self.metrics.hold_refused()
        agent_part = (
            f" plus agent/{agent.name}'s price of {format_open(agent.price)} OPEN"
            if agent is not None
            else ""
        )
        raise credit_short(
            account,
            available,
            f"this request can cost up to {format_open(amount)} OPEN ({prompt_tokens} prompt + "
            f"up to {max_tokens} completion tokens at {format_open(price_in)}/"
            f"{format_open(price_out)} OPEN per 1k{agent_part})",
            fewer="fewer tokens (max_tokens)",
        )

    def _reserve(
        self, account: str, amount: int, model: dict[str, Any], prompt_tokens: int, max_tokens: int
    ) -> tuple[Hold | None, int]:
        """A hold of ``amount``, or None and the credit available when it is short."""
        hold = self._hold_leased(account, amount, model, prompt_tokens, max_tokens)
        if hold is not None:
            return hold, 0
        with self._lease_lock:
            hold = self._hold_leased(account, amount, model, prompt_tokens, max_tokens)
            if hold is not None:
                return hold, 0
            with self._lock:
                free = self._lease[account] - self._held[account]
            leased, unheld = self._leases.take(account, amount - free)
            with self._lock:
                self._lease[account] += leased
            self._ensure_keeper()
            hold = self._hold_leased(account, amount, model, prompt_tokens, max_tokens)
            if hold is not None:
                return hold, 0
        return None, free + unheld

    def _hold_leased(
        self, account: str, amount: int, model: dict[str, Any], prompt_tokens: int, max_tokens: int
    ) -> Hold | None:
        with self._lock:
            if self._lease[account] - self._held[account] < amount:
                return None
            self._held[account] += amount
            self._last_use[account] = self._clock()
            hold_id = next(self._hold_ids)
        if self.metrics is not None:
            self.metrics.hold_taken()
        return Hold(account, model, prompt_tokens, max_tokens, amount, hold_id)

    def claim(self, hold: Hold, completion_tokens: int) -> None:
        """Mark ``hold`` as being charged for ``completion_tokens``: a second charge of it is
        refused, and ``release`` leaves it alone while its charge is queued."""
        with self._lock:
            claimed = not (hold.settled or hold.charging)
            hold.charging = True
        if not claimed:
            raise ValidationError(
                f"hold #{hold.id} of {hold.account} was already charged or released.",
                field="hold",
                value=hold.id,
                fix="reserve again for a new request.",
            )
        if completion_tokens > hold.max_tokens:
            with self._lock:
                hold.charging = False
            raise ValidationError(
                f"{completion_tokens} completion tokens exceed the {hold.max_tokens} reserved.",
                field="completion_tokens",
                value=completion_tokens,
                fix="reserve with the request's max_tokens.",
            )

    def release(self, hold: Hold) -> None:
        """Give back a hold that will not be charged (the request failed before any output)."""
        with self._lock:
            if not hold.settled and not hold.charging:
                hold.settled = True
                self._held[hold.account] -= hold.amount

    def settle(self, hold: Hold) -> None:
        """End a claimed hold whose charge was refused (its credit is free again)."""
        with self._lock:
            if not hold.settled:
                hold.settled = True
                self._held[hold.account] -= hold.amount

    def settle_group(self, used: Mapping[str, int], holds: Iterable[Hold]) -> None:
        """End the holds of a committed (or failed) group; ``used`` is what the group's
        transaction consumed of this node's leases, by account."""
        with self._lock:
            for account, amount in used.items():  # the leases these holds consumed
                self._lease[account] -= amount
            for hold in holds:  # charged or failed: either way the hold is over
                if not hold.settled:
                    hold.settled = True
                    self._held[hold.account] -= hold.amount

    # -- leases: returned when idle, renewed while held, others' expired -------------------

    def _ensure_keeper(self) -> None:
        if self._keeper is None or not self._keeper.is_alive():
            self._keeper_stop.clear()
            self._keeper = threading.Thread(
                target=self._keep_leases, name="ledger-leases", daemon=True
            )
            self._keeper.start()

    def _keep_leases(self) -> None:
        last_expiry = 0.0
        while not self._keeper_stop.wait(RENEW_S):
            try:
                in_db = self._leases.renew()
                with self._lock:  # a lease cut in the database (a withdrawal) shrinks here
                    for account, amount in list(self._lease.items()):
                        self._lease[account] = min(amount, in_db.get(account, 0))
                self.return_idle_leases()
                if self._clock() - last_expiry >= LEASE_TTL_S / 3:
                    self._leases.expire()
                    last_expiry = self._clock()
            except Exception:  # the database went away for a moment: next round
                log.exception("keeping the credit leases failed")

    def return_idle_leases(self, idle_s: float = IDLE_RETURN_S) -> None:
        """Give back the part of each lease no request holds, for accounts idle ``idle_s``."""
        now = self._clock()
        with self._lock:
            spare = {
                a: self._lease[a] - self._held[a]
                for a in list(self._lease)
                if self._lease[a] > self._held[a] and now - self._last_use.get(a, 0.0) >= idle_s
            }
            for account, amount in spare.items():
                self._lease[account] -= amount  # no hold can take it while it goes back
        if spare:
            self._leases.give_back(spare)

    def close(self) -> None:
        """Stop the keeper and give back what this node leased."""
        if self._keeper is not None:
            self._keeper_stop.set()
            self._keeper.join(timeout=5)
            self._keeper = None
            with self._lock:
                self._lease.clear()
            release_node(self.db, self.node_id)  # what this node leased goes back
