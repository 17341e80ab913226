"""The ledger service: credit holds before compute, then fee, split, receipt and accounting.

The flow of one request (``api/routes/openai.py`` and ``demo`` use the same calls):

1. ``reserve(account, model, prompt_tokens, max_tokens)`` before any compute: the largest fee
   the request can cost is held against the account's credit, or PaymentRequiredError (402).
2. the engine generates; attribution traces the completion to contributions.
3. ``charge(hold, completion_tokens, ...)`` (or ``submit``, which does not wait): the exact
   fee, its split and the receipt body with its content hash are computed (in the pricing
   process); then the writer links it into the hash chain and commits it with the credit
   debit; the hold is released.

``LedgerService`` is the façade the node, the API and the demo use; the work is done by
its parts, one job each:

- ``credit.book.CreditBook``: holds in memory against the credit this node has *leased* in
  the database (``credit.leases``), the lease keeper, credit reads;
- ``receipts.writer.ReceiptWriter``: the pricing stage (``pricing.pricer``) and the writer thread
  that commits waiting requests in groups, one transaction and one operator signature each;
- ``settlement.beneficiaries.BeneficiaryCache``: each model's beneficiary set, read once a minute;
- ``receipts.reads`` / ``receipts.ids``: stored receipts and their public ids.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections.abc import Callable, Mapping
from typing import Any

from openledger.attribution.types import Attribution
from openledger.errors import AuthError, NotFoundError, Requester, StoreError
from openledger.ledger.credit.book import CreditBook, Hold
from openledger.ledger.credit.leases import IDLE_RETURN_S
from openledger.ledger.pricing.params import ParamsCache
from openledger.ledger.pricing.pricer import Pricer
from openledger.ledger.receipts.canonical import (
    ReceiptSigner,
    SignedReceipt,
    canonical_json,
    check_served,
    hash_hex,
)
from openledger.ledger.receipts.content import AgentTerms
from openledger.ledger.receipts.ids import is_public_id, receipt_ids
from openledger.ledger.receipts.reads import list_receipts, receipt_doc
from openledger.ledger.receipts.writer import ReceiptWriter
from openledger.ledger.receipts.writer_db import PendingReceipt
from openledger.ledger.settlement.beneficiaries import BeneficiaryCache
from openledger.store.db import Database


def request_hash(payer: str, model: str, request: Mapping[str, Any]) -> str:
    """keccak256 of the canonical JSON of what was asked, by whom, of which model."""
    return hash_hex(canonical_json({"payer": payer, "model": model, "request": request}))


class LedgerService:
    """Paid inference's accounting, as one object (see the module docstring)."""

    def __init__(
        self,
        db: Database,
        params: ParamsCache,
        signer: Callable[[], ReceiptSigner],
        *,
        chain_id: int,
        credit_ttl: float = 1.0,
        clock: Callable[[], float] | None = None,
        pricing_process: bool = True,
    ) -> None:
        self.db = db
        self.params = params
        self.chain_id = chain_id
        self.credit_ttl = credit_ttl
        clock = clock or time.monotonic
        self.node_id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.book = CreditBook(db, self.node_id, clock)
        self.beneficiaries = BeneficiaryCache(db, clock)
        self.writer = ReceiptWriter(
            db,
            params,
            signer,
            self.book,
            self.beneficiaries,
            chain_id=chain_id,
            pricing_process=pricing_process,
        )
        self.metrics: Any = None  # NodeMetrics (hold_taken, hold_refused, ledger_committed)

    def observe(self, metrics: Any) -> None:
        """Report holds, commits and pricing batches to ``metrics`` (the node's)."""
        self.metrics = self.book.metrics = self.writer.metrics = metrics
        self.writer.pricer.on_batch = metrics.priced_batch

    # the parts the tests look into
    @property
    def _pricer(self) -> Pricer:
        return self.writer.pricer

    @property
    def _signer(self) -> ReceiptSigner | None:
        return self.writer.signer

    # ------------------------------------------------------------------ credit

    def credit(self, account: str) -> dict[str, Any]:
        """The account's credit as the node sees it (wei as decimal strings)."""
        return self.book.credit(account)

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
        return self.book.reserve(account, model, prompt_tokens, max_tokens, agent=agent)

    def return_idle_leases(self, idle_s: float = IDLE_RETURN_S) -> None:
        """Give back the part of each lease no request holds, for accounts idle ``idle_s``."""
        self.book.return_idle_leases(idle_s)

    def holds_in_flight(self) -> tuple[int, int]:
        """(wei held, accounts with holds) for requests not yet charged or released."""
        return self.book.holds_in_flight()

    def release(self, hold: Hold) -> None:
        """Give back a hold that will not be charged (the request failed before any output)."""
        self.book.release(hold)

    # ------------------------------------------------------------------ charge

    def charge(
        self,
        hold: Hold,
        completion_tokens: int,
        *,
        request_hash: str,
        attribution: Attribution | None,
        timeout: float | None = 60.0,
    ) -> SignedReceipt:
        """Price, split, receipt and debit one finished request; returns its signed receipt.

        The hold is claimed at once: a second charge of it is refused, and ``release`` leaves
        it alone while its charge is queued."""
        done = self.submit(
            hold, completion_tokens, request_hash=request_hash, attribution=attribution
        )
        try:
            return done.result(timeout=timeout)
        except TimeoutError as exc:
            raise StoreError(
                f"the ledger did not record the charge of hold #{hold.id} within {timeout} s; "
                "it stays queued and will be recorded (its credit stays held).",
                field="ledger",
                value=hold.id,
                fix="check the database is reachable and not locked by another process.",
            ) from exc

    def submit(
        self,
        hold: Hold,
        completion_tokens: int,
        *,
        request_hash: str,
        attribution: Attribution | None,
    ) -> PendingReceipt:
        """Queue the charge of ``hold`` for pricing; returns at once with the pending
        receipt, which holds the signed receipt once its group has committed (or the error
        that refused it: a charge that cannot be priced or committed releases its hold).
        For callers that keep many charges in flight without a thread each (``charge``
        waits on it)."""
        return self.writer.submit(
            hold, completion_tokens, request_hash=request_hash, attribution=attribution
        )

    def close(self) -> None:
        """Record every charge already submitted, then stop the pricer, the pricing process
        and the writer, and give back this node's leases."""
        self.writer.close()
        self.book.close()

    def invalidate_beneficiaries(self) -> None:
        self.beneficiaries.clear()

    def invalidate_credit(self, account: str | None = None) -> None:
        """Chain events changed credit: nothing is cached (leases read the database), kept
        for the callers that say so."""

    # ------------------------------------------------------------------ reads

    def receipt(self, ref: int | str) -> dict[str, Any]:
        """A stored receipt by public id (``rc_…``), sequence number or hash, with the proof
        of its place (``receipt_reads``)."""
        return receipt_doc(self.db, ref)

    def receipt_for(self, ref: int | str, requester: Requester | None) -> dict[str, Any]:
        """:meth:`receipt` as ``requester`` may read it: by public id (``rc_…``) anyone
        holding it; by sequence number or hash its payer or the operator only (None: a
        request without a credential)."""
        if isinstance(ref, str) and is_public_id(ref):
            return self.receipt(ref)
        if requester is None:
            raise AuthError(
                "Reading a receipt by sequence number or hash needs its payer's credential.",
                field="credential",
                fix="present the payer's API key, or read it by its public id (rc_…, the "
                "receipt_id of the response).",
            )
        doc = self.receipt(ref)
        if not requester.owns(doc["receipt"].get("payer")):
            raise requester.forbid(f"receipt {str(ref)[:80]}", "read")
        return doc

    def check_served(self, ref: str, operator: str) -> dict[str, Any]:
        """Whether receipt ``ref`` as it is served proves itself (content hash, chain link,
        ``operator``'s signed head): the check anyone can run with the document and the
        operator's address. By its public id only (``rc_…``), as anyone may read it."""
        if not is_public_id(ref):
            raise NotFoundError(
                f"No receipt {ref!r} by that public id.",
                field="receipt",
                value=ref,
                fix="use the receipt's public id (rc_…).",
            )
        doc = self.receipt(ref)
        problem = check_served(doc, operator)
        return {"id": doc["id"], "ok": not problem, "problem": problem, "operator": operator}

    def public_id(self, seq: int) -> str:
        """The unguessable public id of receipt ``seq`` (``receipt_ids``)."""
        return receipt_ids(self.db).public(seq)

    def receipts(self, *, payer: str | None = None, offset: int = 0, limit: int = 50) -> dict:
        return list_receipts(self.db, payer=payer, offset=offset, limit=limit)
