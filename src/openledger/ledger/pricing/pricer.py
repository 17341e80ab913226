"""The ledger's pricing stage: submitted charges in, priced receipt contents out, in order.

One *pricer* thread takes whatever charges are queued as a batch and sends it to the pricing
process (``pricing_process``), which computes fee, split, canonical JSON and content hash on
another core; a *receiver* thread takes each batch's results in the order sent and hands
every priced charge to ``deliver`` (the ledger's writer queue). Up to ``IN_FLIGHT`` batches
are with the child at once, so it prices the next while the receiver takes in the last.

One thread prices for however many request threads submit: CPython runs one thread's Python
at a time, and request threads pricing at once spent their time handing the interpreter
lock around (and starved the writer) instead of pricing. Without a pricing process (or when
it fails), the receiver prices in the node. A charge that cannot be priced, or a batch hit by
a bug here, goes to ``refuse`` with the error: a request is always answered.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from queue import Empty, SimpleQueue
from typing import Any, NamedTuple

from openledger.ledger.pricing.fees import Members
from openledger.ledger.pricing.process import PricingProcess, item
from openledger.ledger.receipts.content import Charge, Priced, Terms, price_charge

log = logging.getLogger(__name__)

IN_FLIGHT = 2  # batches with the pricing process at once


class Prepared(NamedTuple):
    """What pricing one submitted charge needs, and what ``deliver`` gets back with it."""

    terms: Terms  # the same object for every charge of the same terms (ids are kept by it)
    members: Members
    charge: Charge
    context: Any  # passed to ``deliver`` untouched (the ledger's beneficiary set)


Submitted = Any  # the ledger's submitted charge; only ``prepare``/``deliver``/``refuse`` look in


class Pricer:
    """Batches of submitted charges priced in order (see the module docstring)."""

    def __init__(
        self,
        prepare: Callable[[Submitted], Prepared],
        deliver: Callable[[Submitted, Any, Priced | tuple], None],
        refuse: Callable[[Submitted, BaseException], None],
        *,
        max_batch: int,
        use_process: bool = True,
    ) -> None:
        self._prepare, self._deliver, self._refuse = prepare, deliver, refuse
        self.max_batch = max_batch
        self.process = PricingProcess() if use_process else None
        self._ids: dict[int, tuple[Terms, int]] = {}  # id(terms) → (terms, id in the child)
        self._queue: SimpleQueue[Submitted | None] = SimpleQueue()
        self._sent: SimpleQueue[tuple[list[tuple[Submitted, Prepared]], int | None] | None]
        self._sent = SimpleQueue()
        self._in_flight = threading.Semaphore(IN_FLIGHT)
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.on_batch: Callable[[int], None] | None = None  # the node's metrics

    def submit(self, charge: Submitted) -> None:
        threads = self._threads
        if not (threads and threads[0].is_alive() and threads[1].is_alive()):
            self._start()
        self._queue.put(charge)

    def _start(self) -> None:
        with self._lock:
            if self._threads and all(t.is_alive() for t in self._threads):
                return
            self._stop()  # one stopped (after an earlier close): stop the other alike
            self._threads = [
                threading.Thread(target=self._price_loop, name="ledger-pricer", daemon=True),
                threading.Thread(target=self._receive_loop, name="ledger-receiver", daemon=True),
            ]
            for t in self._threads:
                t.start()

    def _stop(self) -> None:
        if self._threads and self._threads[0].is_alive():
            self._queue.put(None)  # passed on from the pricer to the receiver
        for t in self._threads:
            t.join(timeout=30)
        self._threads = []

    def close(self) -> None:
        """Deliver (or refuse) every charge already submitted, then stop the threads and the
        pricing process."""
        with self._lock:
            self._stop()
            if self.process is not None:
                self.process.close()

    # -- the pricer thread -----------------------------------------------------------------

    def _price_loop(self) -> None:
        while True:
            batch = [self._queue.get()]
            while batch[-1] is not None and len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except Empty:
                    break
            stop = batch[-1] is None
            charges = [c for c in batch if c is not None]
            if charges and self.on_batch is not None:
                self.on_batch(len(charges))
            if charges:
                try:
                    self._send(charges)
                except BaseException as exc:
                    log.exception("pricing a batch failed; its charges are refused")
                    for c in charges:
                        self._refuse(c, exc)
            if stop:
                self._sent.put(None)
                return

    def _send(self, batch: list[Submitted]) -> None:
        inputs: list[tuple[Submitted, Prepared]] = []
        for c in batch:
            try:
                inputs.append((c, self._prepare(c)))
            except BaseException as exc:
                self._refuse(c, exc)
        ticket = None
        if self.process is not None and inputs:
            terms: dict[int, Terms] = {}
            sets: dict[str, Members] = {}
            items = []
            for _, p in inputs:
                tid = self._terms_id(p.terms)
                terms[tid] = p.terms
                sets[p.terms.set_hash] = p.members
                items.append(item(tid, p.charge))
            self._in_flight.acquire()
            try:
                ticket = self.process.send(items, sets, terms)
            except Exception as exc:
                self._in_flight.release()
                log.warning(
                    "the pricing process failed (%s); this batch is priced in the "
                    "node's own thread and the process is started again",
                    exc,
                )
        self._sent.put((inputs, ticket))

    def _terms_id(self, terms: Terms) -> int:
        """The child's id of ``terms``, cached by identity (``prepare`` returns the same object
        for the same terms; hashing a 12-field dataclass per charge cost more)."""
        found = self._ids.get(id(terms))
        if found is None or found[0] is not terms:
            assert self.process is not None
            if len(self._ids) > 4096:
                self._ids.clear()
            found = self._ids[id(terms)] = (terms, self.process.terms_id(terms))
        return found[1]

    # -- the receiver thread ---------------------------------------------------------------

    def _receive_loop(self) -> None:
        while True:
            sent = self._sent.get()
            if sent is None:
                return
            inputs, ticket = sent
            try:
                self._finish(inputs, ticket)
            except BaseException as exc:
                log.exception("taking in a priced batch failed; its charges are refused")
                for c, _ in inputs:
                    self._refuse(c, exc)

    def _finish(self, inputs: list[tuple[Submitted, Prepared]], ticket: int | None) -> None:
        priced: list[Priced | tuple | None] = [None] * len(inputs)
        if ticket is not None:
            assert self.process is not None
            try:
                got = self.process.receive(ticket)
                if len(got) != len(inputs):
                    raise EOFError(f"{len(got)} results for a batch of {len(inputs)}")
                priced = got  # type: ignore[assignment]
            except EOFError as exc:
                log.warning(
                    "the pricing process failed (%s); this batch is priced in "
                    "the node's own thread",
                    exc,
                )
            finally:
                self._in_flight.release()
        done: list[tuple[Submitted, Any, Priced | tuple]] = []
        for (c, p), result in zip(inputs, priced, strict=True):
            try:
                if result is None:  # no process, or it could not price this one: raises why
                    result = price_charge(p.terms, p.members, p.charge)
            except BaseException as exc:
                self._refuse(c, exc)
                continue
            done.append((c, p.context, result))
        for c, context, result in done:  # all or none delivered (a failure above refuses all)
            self._deliver(c, context, result)
