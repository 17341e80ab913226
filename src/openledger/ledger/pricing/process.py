"""Pricing in a child process: the node's CPU-bound half of a charge off its interpreter lock.

Pricing a charge (split, receipt JSON, Keccak) is ~100 µs of pure Python; in the node's
process it competes for the one interpreter lock with the request threads and the ledger's
writer. The pricing process does it on another core: the node sends batches of charges
(``receipt_content.Charge``) with the ``Terms`` and beneficiary sets it has not sent before,
and gets back each charge's receipt content (``Priced``), in order.

The protocol is length-prefixed messages over the child's stdin/stdout: terms and sets the
child has not seen as a pickle, the charges and results as ``marshal`` data (plain tuples,
faster to read and write than pickled named tuples). Batches are answered in order; the
node sends from one thread and receives in another, so a full pipe never blocks both. The
child is the node's own (same interpreter, same code); it stops when its stdin closes. A
charge the child could not price comes back as None, and the caller prices it in its own
thread (which raises the real error); a child that died is started again.
"""

from __future__ import annotations

import logging
import marshal
import os
import pickle
import struct
import subprocess
import sys
import threading
from collections.abc import Sequence
from typing import IO

from openledger.ledger.pricing.fees import Members
from openledger.ledger.receipts.content import (
    AttributionInput,
    Charge,
    ComputeProof,
    Terms,
    price_charge,
)

log = logging.getLogger(__name__)

_LEN = struct.Struct("<II")
# a charge on the wire: (terms id, payer, prompt tokens, completion tokens, request hash,
# (method, index hash, weights, query hash) or None, created at, inner receipts)
Item = tuple[
    int,
    str,
    int,
    int,
    str,
    "tuple[str, str | None, dict[int, float], str | None] | None",
    str,
    "tuple[str, ...]",
    "tuple[str, str, str, str] | None",
]


def item(terms_id: int, c: Charge) -> Item:
    a = c.attribution
    wire = None if a is None else (a.method, a.index_hash, a.weights, a.query_hash)
    return (
        terms_id,
        c.payer,
        c.prompt_tokens,
        c.completion_tokens,
        c.request_hash,
        wire,
        c.created_at,
        c.inner,
        None if c.compute is None else tuple(c.compute),
    )


def _read_exact(stream: IO[bytes], size: int) -> bytes:
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("the pricing process's pipe closed mid-message")
    return data


def _read(stream: IO[bytes]) -> tuple[bytes, bytes]:
    head, body = _LEN.unpack(_read_exact(stream, _LEN.size))
    return _read_exact(stream, head), _read_exact(stream, body)


def _write(stream: IO[bytes], head: bytes, body: bytes) -> None:
    stream.write(_LEN.pack(len(head), len(body)) + head + body)
    stream.flush()


def serve(inp: IO[bytes], out: IO[bytes]) -> None:
    """The child's loop: (new terms and sets, items) in, a Priced tuple (or None) per item
    out."""
    terms: dict[int, Terms] = {}
    sets: dict[str, Members] = {}
    while True:
        try:
            head, body = _read(inp)
        except EOFError:
            return
        if head:
            new_terms, new_sets = pickle.loads(head)
            terms.update(new_terms)
            sets.update(new_sets)
        results: list[tuple | None] = []
        for tid, payer, prompt, completion, rh, a, created_at, inner, compute in marshal.loads(
            body
        ):
            t = terms[tid]
            attribution = None if a is None else AttributionInput(*a)
            try:
                charge = Charge(
                    payer,
                    prompt,
                    completion,
                    rh,
                    attribution,
                    created_at,
                    tuple(inner),
                    None if compute is None else ComputeProof(*compute),
                )
                results.append(tuple(price_charge(t, sets[t.set_hash], charge)))
            except Exception:
                results.append(None)
        _write(out, b"", marshal.dumps(results))


class PricingProcess:
    """The parent's side: one child, started on first use and again after it died.

    ``send`` a batch, then ``receive`` its results: batches are answered in the order they
    were sent, so one thread may send the next batch while another receives the last (the
    child is never idle waiting for the parent). Thread-safe: sends are serialised, and so
    are receives."""

    def __init__(self) -> None:
        self._send_lock = threading.Lock()
        self._receive_lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._generation = 0  # moves each time a child is started
        self._terms: dict[Terms, int] = {}
        self._sent_terms: set[int] = set()
        self._sent_sets: set[str] = set()

    def terms_id(self, terms: Terms) -> int:
        with self._send_lock:
            found = self._terms.get(terms)
            if found is None:
                found = self._terms[terms] = len(self._terms) + 1
            return found

    def send(self, items: Sequence[Item], sets: dict[str, Members], terms: dict[int, Terms]) -> int:
        """Queue a batch for the child (starting one if there is none); returns the ticket
        that ``receive`` takes. ``terms`` and ``sets`` name every terms id and set the items
        use; only those this child has not had are sent. Raises OSError if the child cannot
        be started or has died (the next call starts another)."""
        with self._send_lock:
            proc = self._proc
            if proc is None or proc.poll() is not None:
                proc = self._proc = self._start()
                self._generation += 1
                self._sent_terms.clear()
                self._sent_sets.clear()
            assert proc.stdin is not None
            new_terms = {i: t for i, t in terms.items() if i not in self._sent_terms}
            new_sets = {h: m for h, m in sets.items() if h not in self._sent_sets}
            head = pickle.dumps((new_terms, new_sets)) if new_terms or new_sets else b""
            try:
                _write(proc.stdin, head, marshal.dumps(list(items)))
            except (OSError, ValueError) as exc:
                self._stop(proc)
                raise OSError(f"the pricing process did not take the batch: {exc}") from exc
            self._sent_terms.update(new_terms)
            self._sent_sets.update(new_sets)
            return self._generation

    def receive(self, ticket: int) -> list[tuple | None]:
        """The results of the oldest batch not yet received, sent with ``ticket``: per item a
        ``Priced`` as a plain tuple, or None (price it yourself). Raises EOFError if the child
        that had the batch died or was replaced (price the batch yourself)."""
        with self._receive_lock:
            proc = self._proc
            if proc is None or ticket != self._generation or proc.stdout is None:
                raise EOFError("the pricing process that had this batch is gone")
            try:
                return marshal.loads(_read(proc.stdout)[1])
            except (OSError, EOFError, ValueError) as exc:
                self._stop(proc)
                raise EOFError(f"the pricing process died: {exc}") from exc

    def price(
        self, items: Sequence[Item], sets: dict[str, Members], terms: dict[int, Terms]
    ) -> list[tuple | None]:
        """``send`` then ``receive``, for one caller with one batch at a time."""
        return self.receive(self.send(items, sets, terms))

    @staticmethod
    def _start() -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        # the child imports this checkout's package even when it is not installed
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p and os.path.isdir(p))
        return subprocess.Popen(
            [sys.executable, "-m", "openledger.ledger.pricing.process"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )

    @staticmethod
    def _stop(proc: subprocess.Popen[bytes]) -> None:
        """Close its stdin (it exits at the end of its input), or kill it."""
        try:
            if proc.stdin is not None:
                proc.stdin.close()
            proc.wait(timeout=5)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()

    def pid(self) -> int | None:
        """The running child's process id (None before the first batch or after close)."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def close(self) -> None:
        with self._send_lock, self._receive_lock:
            if self._proc is not None:
                self._stop(self._proc)
                self._proc = None


if __name__ == "__main__":  # the child: the pipe is a private copy of stdout, which (like
    # anything a library prints) goes to stderr so it cannot corrupt the protocol
    _out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    serve(sys.stdin.buffer, _out)
