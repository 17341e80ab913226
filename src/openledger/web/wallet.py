"""Writes for accounts the node holds no key for: the browser wallet sends them.

Every write route builds a :class:`~openledger.chain.calls.Plan` through its service and hands
it to :func:`act`. For a dev account the node signs and sends it (``Plan.run``); for a wallet
session the plan waits here (in memory, 15 minutes, bound to the account) and the page gets
the unsigned transactions (approve first where one is needed). The page sends them in order
with ``eth_sendTransaction`` and reports the hashes to ``POST /web/api/wallet/submit``, which
checks each (mined, succeeded, from the account, to the prepared contract with the prepared
calldata) and only then records the off-chain side through the plan's ``finish``, exactly as
the dev-account path does. A refused report leaves the plan waiting, so the right hash can
still be reported; a restart of the node forgets waiting plans (prepare again).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from openledger.chain.calls import Finish, Plan, Recorder, check_sent
from openledger.chain.client import ChainClient
from openledger.errors import ConflictError, NotFoundError, ValidationError
from openledger.web.auth import SessionDep, WebAuth
from openledger.web.sessions import Session

PENDING_TTL_S = 15 * 60
MAX_PER_ACCOUNT = 20


class PendingWrites:
    """Prepared writes waiting for the wallet's transactions, and the hashes already used."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._plans: dict[str, tuple[str, float, Plan]] = {}
        self._used: dict[str, float] = {}

    def offer(self, session: Session, plan: Plan) -> dict[str, Any]:
        """Keep ``plan`` for the account; what the page needs to send it."""
        pid = secrets.token_urlsafe(12)
        now = self.clock()
        with self._lock:
            self._expire(now)
            mine = sorted((t, k) for k, (a, t, _) in self._plans.items() if a == session.address)
            for _, old in mine[: max(0, len(mine) - MAX_PER_ACCOUNT + 1)]:
                self._plans.pop(old, None)
            self._plans[pid] = (session.address, now + PENDING_TTL_S, plan)
        chain_id = plan.client.expected_chain_id
        return {
            "pending": pid,
            "what": plan.what,
            "txs": [c.unsigned(session.address, chain_id) for c in plan.calls],
            "sign": "0x" + plan.message.hex() if plan.message is not None else None,
            "expires": int(now + PENDING_TTL_S),
        }

    def submit(self, session: Session, pid: str, hashes: list[str],
               signature: str | None) -> dict[str, Any]:  # fmt: skip
        """Check the reported transactions against the plan, then record the off-chain side."""
        with self._lock:
            self._expire(self.clock())
            entry = self._plans.get(pid)
            if entry is None or entry[0] != session.address:
                raise NotFoundError(
                    "No prepared write by that id is waiting for this account (it was "
                    "completed, or expired after 15 minutes, or the node restarted).",
                    field="pending", value=pid, fix="start the action again from its page.",
                )  # fmt: skip
            used = [h for h in hashes if h.lower() in self._used]
            if used:
                raise ConflictError(f"The transaction {used[0]} was already reported for "
                                    "another write.", field="tx_hash", value=used[0],
                                    fix="send the prepared transaction itself.")  # fmt: skip
            self._plans.pop(pid)  # one report at a time
        try:
            plan = entry[2]
            if len(hashes) != len(plan.calls):
                raise ValidationError(
                    f"This write takes {len(plan.calls)} transaction(s) "
                    f"({', '.join(c.label for c in plan.calls)}); {len(hashes)} were reported.",
                    field="hashes", value=len(hashes), fix="send each prepared transaction "
                    "in order and report every hash.",
                )  # fmt: skip
            plan.check_signature(signature)
            results = [check_sent(plan.client, h, c, session.address)
                       for h, c in zip(hashes, plan.calls, strict=True)]  # fmt: skip
            with self._lock:
                self._used.update({h.lower(): self.clock() for h in hashes})
        except BaseException:
            with self._lock:
                self._plans.setdefault(pid, entry)
            raise
        return plan.finish(results, signature)

    def _expire(self, now: float) -> None:
        for k in [k for k, (_, t, _) in self._plans.items() if t < now]:
            del self._plans[k]
        for h in [h for h, t in self._used.items() if t < now - 24 * 3600]:
            del self._used[h]


def get_pending(request: Request) -> PendingWrites:
    return request.app.state.web_pending


PendingDep = Annotated[PendingWrites, Depends(get_pending)]


def act(plan: Plan, auth: WebAuth, session: Session, pending: PendingWrites) -> dict[str, Any]:
    """Send ``plan`` with the node's dev key for a dev account; otherwise offer it to the
    wallet (``{"wallet": {...}}``: the page sends it and reports to ``/wallet/submit``)."""
    if auth.dev_name(session.address) is not None:
        return plan.run(auth.signer(session))
    return {"wallet": pending.offer(session, plan)}


def act_recorded(client: ChainClient, auth: WebAuth, session: Session, pending: PendingWrites,
                 send: Callable[[Any], dict[str, Any]], finish: Finish,
                 what: str, names: Mapping[str, str] | None = None) -> dict[str, Any]:  # fmt: skip
    """:func:`act` for a service that sends directly: a dev account runs ``send(signer)``; for
    a wallet the calls ``send`` would make (its checks run) are recorded and offered, and
    ``finish`` records the rest once they are mined. ``names`` (contract name → address)
    lets refusals name the contract a call was for."""
    if auth.dev_name(session.address) is not None:
        return send(auth.signer(session))
    calls, done = Recorder.calls_of(session.address, send, names)
    if not calls:  # the service had nothing to send
        return done
    return act(Plan(client, session.address, calls, finish, what=what), auth, session, pending)


# ---------------------------------------------------------------------------- HTTP

router = APIRouter(prefix="/web/api", tags=["web"])


class SubmitBody(BaseModel):
    pending: str
    hashes: list[str] = Field(default_factory=list)
    signature: str | None = None


@router.post("/wallet/submit")
def submit(body: SubmitBody, pending: PendingDep, session: SessionDep) -> dict[str, Any]:
    """The wallet sent the prepared transactions: check them, then record the write."""
    return pending.submit(session, body.pending, body.hashes, body.signature)
