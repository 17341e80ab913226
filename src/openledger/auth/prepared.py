"""Prepared writes: for an account whose key the node does not hold, a write is prepared
(its checks done, its calls built) and waits in the database for the account's own
transactions; the account's wallet or script sends them and reports the hashes.

``offer`` stores the plan (its calls, the message to sign and its :class:`Resume`: which
service method records the off-chain side, with what arguments) for 15 minutes, bound to the
account. ``submit`` checks each reported transaction (mined, succeeded, from the account, to
the prepared contract with the prepared calldata) and only then runs the plan's finisher,
exactly as the node's own keys do. The rows live in the database, so a restart forgets
nothing and any API process on the same database can take the report; a report is taken by
one process at a time (``waiting`` → ``submitting``), and a transaction hash is accepted for
one write only, ever (``used_tx_hashes`` keeps them). A refused report puts the write back
to ``waiting``, so the right hashes can still be reported.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy import exc as sa_exc

from openledger.chain.calls import Call, Plan, check_sent
from openledger.chain.client import ChainClient
from openledger.chain.l2fees import estimate_cost
from openledger.errors import ConflictError, NotFoundError, ValidationError
from openledger.store.auth_tables import PreparedWriteRow, UsedTxRow
from openledger.store.db import Database
from openledger.store.models import utcnow

PENDING_TTL = timedelta(minutes=15)
MAX_PER_ACCOUNT = 20
MAX_HASHES = 8
#: the service methods a prepared write may name as its finisher ("service.method")
FINISHERS = frozenset(
    {
        "datanets.finish_create",
        "contributions.finish_contribute",
        "reviews.finish_review",
        "reviews.finish_withdraw",
        "snapshots.finish_snapshot",
        "models.finish_publish",
        "governance.finish_propose",
        "governance.finish_vote",
        "governance.finish_simple",
        "governance.finish_delegate",
        "governance.finish_proposal",
        "grants.finish_apply",
        "grants.finish_grant",
        "grants.finish_proposal",
        "escrow.finish_deposit",
        "escrow.finish_request_withdrawal",
        "escrow.finish_withdraw",
        "rewards.finish_claim",
        "access.finish_set_prices",
        "access.finish_pay",
        "agents.finish_create",
        "agents.finish_set_active",
        "agents.finish_fund",
        "agents.finish_set_price",
    }
)

Finisher = Callable[[dict[str, Any], bytes | None, list[Any], str | None], dict[str, Any]]


def _call_dict(c: Call) -> dict[str, Any]:
    return {"to": c.to, "data": c.data, "label": c.label, "contract": c.contract, "value": c.value}


class PreparedWrites:
    """The prepared writes of a node (see the module docstring)."""

    def __init__(
        self,
        db: Database,
        client: Callable[[], ChainClient],
        finisher: Callable[[str], Finisher],
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self._client = client
        self._finisher = finisher
        self.clock = clock

    def offer(self, account: str, plan: Plan) -> dict[str, Any]:
        """Keep ``plan`` for ``account``; what its wallet needs to send it."""
        if plan.resume is None or plan.resume.kind not in FINISHERS:
            raise TypeError(f"the plan {plan.what!r} cannot be finished by a wallet")
        pid = secrets.token_urlsafe(18)
        now = self.clock()
        with self.db.session() as s:
            self._expire(s, now)
            mine = s.scalars(
                select(PreparedWriteRow.id)
                .where(PreparedWriteRow.account == account)
                .order_by(PreparedWriteRow.created_at.desc())
                .offset(MAX_PER_ACCOUNT - 1)
            ).all()
            if mine:  # the oldest go: an account keeps at most MAX_PER_ACCOUNT waiting
                s.execute(delete(PreparedWriteRow).where(PreparedWriteRow.id.in_(mine)))
            s.add(
                PreparedWriteRow(
                    id=pid,
                    account=account,
                    kind=plan.resume.kind,
                    args=json.dumps(plan.resume.args),
                    payload=plan.resume.payload,
                    calls=json.dumps([_call_dict(c) for c in plan.calls]),
                    message=plan.message.hex() if plan.message is not None else None,
                    what=plan.what[:300],
                    state="waiting",
                    created_at=now,
                    expires_at=now + PENDING_TTL,
                )
            )
        chain_id = plan.client.expected_chain_id
        txs = [c.unsigned(account, chain_id) for c in plan.calls]
        return {
            "pending": pid,
            "what": plan.what,
            "txs": txs,
            # what each costs: L2 gas and, on an OP Stack chain, the L1 data fee (chain/l2fees);
            # a plan not built on a chain client (a stand-in) has no chain to ask
            "costs": [estimate_cost(plan.client, tx) for tx in txs]
            if isinstance(plan.client, ChainClient)
            else None,
            "sign": "0x" + plan.message.hex() if plan.message is not None else None,
            "expires": int((now + PENDING_TTL).timestamp()),
        }

    def submit(
        self, account: str, pid: str, hashes: list[str], signature: str | None
    ) -> dict[str, Any]:
        """Check the reported transactions against the prepared write, then record it."""
        if len(hashes) > MAX_HASHES:
            raise ValidationError(
                f"{len(hashes)} hashes reported; a write has at most {MAX_HASHES} transactions.",
                field="hashes",
                value=len(hashes),
                fix="report the prepared ones.",
            )
        row = self._take(account, pid)
        hashes = [h.lower() for h in hashes]
        marked = False
        try:
            calls = [Call(**c) for c in json.loads(row["calls"])]
            if len(hashes) != len(calls):
                raise ValidationError(
                    f"This write takes {len(calls)} transaction(s) "
                    f"({', '.join(c.label for c in calls)}); {len(hashes)} were reported.",
                    field="hashes",
                    value=len(hashes),
                    fix="send each prepared transaction in order and report every hash.",
                )
            client = self._client()
            message = bytes.fromhex(row["message"]) if row["message"] is not None else None
            plan = Plan(client, account, calls, lambda r, s: {}, message=message)
            plan.check_signature(signature)
            results = [
                check_sent(client, h, c, account) for h, c in zip(hashes, calls, strict=True)
            ]
            self._mark_used(pid, hashes)
            marked = True
            out = self._finisher(row["kind"])(
                json.loads(row["args"]), row["payload"], results, signature
            )
        except BaseException:
            self._put_back(pid, hashes if marked else [])
            raise
        with self.db.session() as s:
            s.execute(delete(PreparedWriteRow).where(PreparedWriteRow.id == pid))
        return out

    def waiting(self, account: str) -> list[dict[str, Any]]:
        """The account's prepared writes still waiting, newest first."""
        with self.db.session() as s:
            self._expire(s, self.clock())
            rows = s.scalars(
                select(PreparedWriteRow)
                .where(
                    PreparedWriteRow.account == account,
                    PreparedWriteRow.state == "waiting",
                )
                .order_by(PreparedWriteRow.created_at.desc())
            ).all()
            return [
                {"pending": r.id, "what": r.what, "expires": int(r.expires_at.timestamp())}
                for r in rows
            ]

    # -- steps --------------------------------------------------------------------------------
    def _take(self, account: str, pid: str) -> dict[str, Any]:
        """Move the write to ``submitting`` (one report at a time, in any process)."""
        now = self.clock()
        with self.db.session() as s:
            self._expire(s, now)
            taken = s.execute(
                update(PreparedWriteRow)
                .where(
                    PreparedWriteRow.id == pid,
                    PreparedWriteRow.account == account,
                    PreparedWriteRow.state == "waiting",
                )
                .values(state="submitting")
            ).rowcount
            row = s.get(PreparedWriteRow, pid) if taken == 1 else None
            if row is None:
                raise NotFoundError(
                    "No prepared write by that id is waiting for this account (it was "
                    "completed, is being reported right now, or expired after 15 minutes).",
                    field="pending",
                    value=pid[:40],
                    fix="prepare the write again.",
                )
            return {
                "kind": row.kind,
                "args": row.args,
                "payload": row.payload,
                "calls": row.calls,
                "message": row.message,
            }

    def _mark_used(self, pid: str, hashes: list[str]) -> None:
        try:
            with self.db.session() as s:
                s.add_all(
                    UsedTxRow(tx_hash=h, prepared_id=pid, used_at=self.clock()) for h in hashes
                )
        except sa_exc.IntegrityError as exc:
            raise ConflictError(
                "A transaction reported here was already reported for another write.",
                field="tx_hash",
                value=", ".join(hashes),
                fix="send the prepared transaction itself and report its hash.",
            ) from exc

    def _put_back(self, pid: str, used: list[str]) -> None:
        with self.db.session() as s:
            s.execute(
                update(PreparedWriteRow).where(PreparedWriteRow.id == pid).values(state="waiting")
            )
            if used:
                s.execute(delete(UsedTxRow).where(UsedTxRow.tx_hash.in_(used)))

    def _expire(self, s: Any, now: datetime) -> None:
        s.execute(
            delete(PreparedWriteRow).where(
                PreparedWriteRow.expires_at < now, PreparedWriteRow.state == "waiting"
            )
        )
