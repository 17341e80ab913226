"""Datanet access fees (issue 22): prices, payment through the one write path, admission
of exports and training jobs, and the signed records that pay the fees out through the
epochs.

- **Prices** live on chain (``DatanetRegistry.setAccessPrices``, the datanet owner only,
  each at most ``ProtocolParams.max_access_price``): one per snapshot export and one per
  training job on a snapshot, in wei of OPEN; 0 is free.
- **Who pays**: anyone but the snapshot's contributors (accounts with an approved
  contribution in it) and the datanet's owner, who read their own data free. A paid export
  lets its payer export that snapshot (again, in any format); a paid training access is
  spent by one job.
- **Payment** is ``approve`` + ``DatanetRegistry.payAccess(datanet, version, kind)``, a
  :class:`~openledger.chain.calls.Plan` like every write: the node sends it for the
  accounts it holds, a wallet sends it itself (prepare → sign → submit). The fee moves
  from the payer straight to the RewardDistributor.
- **Records**: the event sync applies each ``AccessPaid`` once (by its access id) as an
  :class:`AccessRow` whose body is the fee's split by the ``ProtocolParams`` basis points
  in force: platform → treasury, owner → the datanet's owner, stakers → the snapshot's
  approved contributions pro rata to their stake, contributors → the same contributions
  pro rata to their approved records (the two pools are divided at the epoch's seal over
  the snapshot's beneficiary set, as receipts' pools are). No compute is served, so the
  compute share does not apply: the platform part goes to the treasury whole.
- **Settlement**: the seal of the next epoch signs each record (the operator's EIP-191
  signature of its content hash), divides its pools, and adds its payouts to the
  cumulative leaves; the RewardDistributor already holds the fee, so the root pays it.
  ``openledger audit`` recomputes every record and checks it against its event on chain.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from openledger.chain.addr import to_checksum_address
from openledger.chain.calls import Plan, approval, build, resumable
from openledger.datanets import queries as q
from openledger.errors import (
    ConflictError,
    ForbiddenError,
    InsufficientFundsError,
    NotFoundError,
    PaymentRequiredError,
    TransactionRevertedError,
    ValidationError,
)
from openledger.ledger.pricing.fees import FeeSplit, Members, Payout, divide_pools, split_fee
from openledger.ledger.receipts.canonical import canonical_json, check_head, hash_hex
from openledger.ledger.settlement import beneficiaries as bene
from openledger.store.datanet_tables import ContributionRow, DatanetRow, SnapshotRow
from openledger.store.db import WRITE_LOCK_KEY, Database
from openledger.store.ledger_tables import (
    ACCESS_KINDS,
    AccessEarningRow,
    AccessRow,
    BeneficiarySetRow,
)
from openledger.store.models import utcnow
from openledger.units import fmt_open

if TYPE_CHECKING:
    from openledger.chain.deploy import Contracts
    from openledger.chain.sync import ChainEventRecord, EventSync
    from openledger.chain.tx import TxResult
    from openledger.ledger.pricing.params import ParamsCache

ACCESS_VERSION = 1
KIND_CODES = {kind: code for code, kind in enumerate(ACCESS_KINDS)}  # payAccess's uint8


# ---- the record: a pure function of the payment and what the node knew of the snapshot ----


def access_set_body(datanet_id: int, version: int, members: list[bene.Beneficiary]) -> dict:
    """The beneficiary set of a snapshot's access fees (stored like a model's set)."""
    body = bene.set_body(0, members)
    del body["model"]
    return {"datanet": datanet_id, "version": version, **body}


def access_body(
    *,
    chain_id: int,
    operator: str,
    created_at: str,
    access: dict[str, Any],
    amount: int,
    split: FeeSplit,
    treasury: str,
    owner: str,
    set_hash: str,
    members: Members | list[bene.Beneficiary],
) -> dict[str, Any]:
    """The canonical content of an access record: who paid what for which snapshot, and the
    fee's split (payouts to named accounts, pools divided at the seal over ``set_hash``)."""
    sp = split_fee(
        amount, split, treasury=treasury, owner=owner, contributions=members, attribution={}
    )
    return {
        "v": ACCESS_VERSION,
        "type": "access",
        "chain_id": chain_id,
        "operator": operator,
        "created_at": created_at,
        "access": access,
        "fee": str(amount),
        "split": {
            "params_version": split.version,
            "bps": list(split.bps),
            **{role: str(v) for role, v in sp.parts.items()},
        },
        "treasury": treasury,
        "owner": owner,
        "beneficiaries": set_hash,
        "payouts": [p.to_dict() for p in sp.payouts],
        "pools": {role: str(v) for role, v in sp.pools.items()},
    }


def check_body(body: dict[str, Any], set_body: dict[str, Any] | None) -> str:
    """ "" if an access record's payouts and pools are what its own inputs give."""
    if set_body is None or bene.set_hash(set_body) != body["beneficiaries"]:
        return f"its beneficiary set {body['beneficiaries']} is missing or altered"
    split = body["split"]
    again = access_body(
        chain_id=body["chain_id"],
        operator=body["operator"],
        created_at=body["created_at"],
        access=body["access"],
        amount=int(body["fee"]),
        split=FeeSplit(*split["bps"], version=split["params_version"]),
        treasury=body["treasury"],
        owner=body["owner"],
        set_hash=body["beneficiaries"],
        members=bene.from_body(set_body),
    )
    if again != body:
        return "its split differs from the one recomputed from its own inputs"
    return ""


def _payout_rows(access_id: int, payouts: Iterable[Payout]) -> list[dict[str, Any]]:
    return [
        {
            "access_id": access_id,
            "account": p.account,
            "role": p.role,
            "amount": p.amount,
            "datanet_id": p.datanet,
            "contribution_id": p.contribution,
        }
        for p in payouts
        if p.amount
    ]


@dataclass(frozen=True)
class AccessPaidHandler:
    """Turns an ``AccessPaid`` event into an :class:`AccessRow` (the event sync's handler)."""

    params: ParamsCache
    chain_id: int
    operator: Callable[[], str]

    def __call__(self, s: Session, rec: ChainEventRecord) -> None:
        self.record(
            s, rec.args, tx_hash=rec.tx_hash, block=rec.block_number, log_index=rec.log_index
        )

    def record(
        self, s: Session, args: dict[str, Any], *, tx_hash: str, block: int, log_index: int
    ) -> AccessRow:
        access_id = int(args["access_id"])
        found = s.get(AccessRow, access_id)
        if found is not None:
            return found
        datanet_id, version = int(args["datanet_id"]), int(args["version"])
        kind = ACCESS_KINDS[int(args["kind"])]
        amount, payer = int(args["amount"]), to_checksum_address(args["payer"])
        dn = s.scalar(select(DatanetRow).where(DatanetRow.chain_id == datanet_id))
        snap = (
            None
            if dn is None
            else s.scalar(
                select(SnapshotRow).where(
                    SnapshotRow.datanet_id == dn.id, SnapshotRow.version == version
                )
            )
        )
        # a snapshot this node never recorded has no known contributors: its stakers' and
        # contributors' parts then go to the treasury (as a split with no beneficiaries does)
        members = bene.training_contributions(s, [snap.root]) if snap is not None else []
        set_doc = access_set_body(datanet_id, version, members)
        set_hash = bene.set_hash(set_doc)
        if s.get(BeneficiarySetRow, set_hash) is None:
            s.add(
                BeneficiarySetRow(hash=set_hash, model_id=0, body=canonical_json(set_doc).decode())
            )
        p = self.params.current()
        body = access_body(
            chain_id=self.chain_id,
            operator=self.operator(),
            created_at=utcnow().replace(microsecond=0).isoformat(),
            access={
                "id": access_id,
                "tx_hash": tx_hash,
                "payer": payer,
                "datanet": datanet_id,
                "name": dn.name if dn is not None else None,
                "version": version,
                "snapshot_root": snap.root if snap is not None else None,
                "kind": kind,
            },
            amount=amount,
            split=p.split,
            treasury=p.treasury,
            owner=dn.owner if dn is not None else p.treasury,
            set_hash=set_hash,
            members=members,
        )
        text = canonical_json(body).decode()
        row = AccessRow(
            access_id=access_id,
            tx_hash=tx_hash,
            block_number=block,
            log_index=log_index,
            payer=payer,
            datanet_id=datanet_id,
            version=version,
            kind=kind,
            amount=amount,
            body=text,
            content_hash=hash_hex(text.encode()),
            signature="",
        )
        s.add(row)
        s.flush()
        payouts = [
            Payout(
                x["account"], x["role"], int(x["amount"]), x.get("datanet"), x.get("contribution")
            )
            for x in body["payouts"]
        ]
        rows = _payout_rows(access_id, payouts)
        if rows:
            s.execute(AccessEarningRow.__table__.insert(), rows)
        return row


def subscribe(sync: EventSync, handler: AccessPaidHandler) -> None:
    sync.subscribe("DatanetRegistry.AccessPaid", handler)


# ---- settlement -------------------------------------------------------------------------------


def unsealed_count(s: Session) -> int:
    return int(
        s.scalar(select(func.count()).select_from(AccessRow).where(AccessRow.epoch.is_(None))) or 0
    )


def _pool_sums(rows: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """``(set hash, role) → wei`` over access bodies (``(body, _)`` pairs)."""
    sums: dict[tuple[str, str], int] = defaultdict(int)
    for text, _ in rows:
        body = json.loads(text)
        for role, amount in body["pools"].items():
            sums[(body["beneficiaries"], role)] += int(amount)
    return sums


def divide_open_pools(s: Session) -> list[Payout]:
    """The pools of the access records not in an epoch yet, divided as the seal would."""
    rows = s.execute(
        select(AccessRow.body, AccessRow.access_id).where(AccessRow.epoch.is_(None))
    ).all()
    sums = _pool_sums(rows)
    if not sums:
        return []
    sets = bene.load_sets(s, {h for h, _ in sums})
    sums = {k: v for k, v in sums.items() if k[0] in sets}
    return [p for _, p in divide_pools(sums, sets)]


def seal(s: Session, number: int, sign: Callable[[str], str]) -> dict[str, int]:
    """Inside an epoch's seal: sign the unsealed access records, give them the epoch
    ``number``, divide their pools (shares recorded on the last of them) and return what
    they add to each account's cumulative earnings."""
    rows = s.scalars(
        select(AccessRow).where(AccessRow.epoch.is_(None)).order_by(AccessRow.access_id)
    ).all()
    if not rows:
        return {}
    for row in rows:
        row.signature = sign(row.content_hash)
        row.epoch = number
    sums = _pool_sums((r.body, r.access_id) for r in rows)
    shares = divide_pools(sums, bene.load_sets(s, {h for h, _ in sums})) if sums else []
    pool_rows = _payout_rows(rows[-1].access_id, [p for _, p in shares])
    if pool_rows:
        s.execute(AccessEarningRow.__table__.insert(), pool_rows)
    s.flush()
    added: dict[str, int] = defaultdict(int)
    for account, amount in s.execute(
        select(AccessEarningRow.account, AccessEarningRow.amount)
        .join(AccessRow, AccessRow.access_id == AccessEarningRow.access_id)
        .where(AccessRow.epoch == number)
    ):
        added[account] += amount
    return dict(added)


def epoch_summary(s: Session, number: int) -> dict[str, Any]:
    """How many access fees epoch ``number`` settles and their sum (wei string)."""
    amounts = list(s.scalars(select(AccessRow.amount).where(AccessRow.epoch == number)))
    return {"accesses": len(amounts), "access_fees": str(sum(amounts))}


# ---- audit ------------------------------------------------------------------------------------


def audit(
    s: Session,
    number: int,
    operator: str,
    sets: dict[str, Any],
    events: Callable[[int, int], dict[int, dict[str, Any]]],
) -> tuple[dict[str, int], list[str]]:
    """Recompute the access records of epochs 1…``number``: each body (canonical, content
    hash, operator signature), its split from its own inputs, its event on chain (payer,
    datanet, snapshot, kind, amount, transaction), the access ids without a gap; then each
    epoch's pools divided as sealed. Returns what they add to the cumulative leaves and the
    problems found. ``events(from_block, to_block)`` gives the chain's ``AccessPaid`` events
    by access id."""
    rows = s.execute(
        select(
            AccessRow.access_id,
            AccessRow.body,
            AccessRow.content_hash,
            AccessRow.signature,
            AccessRow.epoch,
            AccessRow.block_number,
            AccessRow.tx_hash,
        )
        .where(AccessRow.epoch.is_not(None), AccessRow.epoch <= number)
        .order_by(AccessRow.access_id)
    ).all()
    leaves: dict[str, int] = defaultdict(int)
    problems: list[str] = []
    if not rows:
        return {}, problems
    chain = events(min(r.block_number for r in rows), max(r.block_number for r in rows))
    pools: dict[int, dict[tuple[str, str], int]] = defaultdict(lambda: defaultdict(int))
    expected = 1
    for access_id, text, chash, signature, ep, _block, tx_hash in rows:
        if access_id != expected:
            problems.append(f"access {expected} is missing (the next settled one is {access_id})")
        expected = access_id + 1
        where = f"access {access_id}"
        try:
            body = json.loads(text)
        except ValueError:
            problems.append(f"{where}: its body is not JSON")
            continue
        if canonical_json(body).decode() != text:
            problems.append(f"{where}: its body is not in canonical form (it was edited)")
            continue
        if hash_hex(text.encode()) != chash:
            problems.append(f"{where}: its body hashes to {hash_hex(text.encode())}, not {chash}")
            continue
        bad = check_head(access_id, chash, signature, operator)
        if bad:
            problems.append(f"{where}: {bad.replace('head signature', 'signature')}")
        bad = check_body(body, sets.get(body["beneficiaries"]))
        if bad:
            problems.append(f"{where}: {bad}")
            continue
        ev, a = chain.get(access_id), body["access"]
        mine = (a["payer"], a["datanet"], a["version"], a["kind"], body["fee"], a["tx_hash"])
        theirs = (
            None
            if ev is None
            else (
                to_checksum_address(ev["payer"]),
                int(ev["datanet_id"]),
                int(ev["version"]),
                ACCESS_KINDS[int(ev["kind"])],
                str(int(ev["amount"])),
                ev["tx_hash"],
            )
        )
        if theirs is None:
            problems.append(f"{where}: no AccessPaid event with this id is on chain")
            continue
        if theirs != mine or tx_hash != a["tx_hash"]:
            problems.append(f"{where}: it records {mine}, the chain's event says {theirs}")
            continue
        for p in body["payouts"]:
            leaves[p["account"]] += int(p["amount"])
        for role, amount in body["pools"].items():
            pools[ep][(body["beneficiaries"], role)] += int(amount)
    for ep in sorted(pools):
        parsed = {h: bene.from_body(sets[h]) for h, _ in pools[ep]}
        for _, p in divide_pools(pools[ep], parsed):
            leaves[p.account] += p.amount
    return dict(leaves), problems


# ---- the service: prices, quotes, payment, admission -------------------------------------------


@dataclass(frozen=True)
class Grant:
    """Why an account may read a snapshot now: ``reason`` is ``free`` (no price),
    ``contributor``, ``owner`` or ``paid`` (``access`` names the payment)."""

    datanet: str
    version: int
    kind: str
    account: str
    price: int
    reason: str
    access: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "datanet": self.datanet,
            "version": self.version,
            "kind": self.kind,
            "account": self.account,
            "price": str(self.price),
            "price_open": fmt_open(self.price),
            "reason": self.reason,
            "access": self.access,
        }


class AccessDueError(PaymentRequiredError):
    """A priced snapshot read without a payment (402); ``grant`` is what paying gives."""

    def __init__(self, message: str, *, grant: Grant, **kwargs: Any) -> None:
        self.grant = grant
        super().__init__(message, **kwargs)


def _kind(kind: str) -> str:
    if kind not in KIND_CODES:
        raise ValidationError(
            f"Access kind {kind!r} is not known.",
            field="kind",
            value=kind,
            fix=f"use one of: {', '.join(ACCESS_KINDS)}.",
        )
    return kind


def access_dict(row: AccessRow, name: str | None = None) -> dict[str, Any]:
    return {
        "access": row.access_id,
        "payer": row.payer,
        "datanet_id": row.datanet_id,
        "datanet": name,
        "version": row.version,
        "kind": row.kind,
        "amount": str(row.amount),
        "amount_open": fmt_open(row.amount),
        "tx_hash": row.tx_hash,
        "epoch": row.epoch,
        "used_by": row.used_by,
        "content_hash": row.content_hash,
    }


class AccessService:
    """Prices, quotes, payments and admissions of datanet access (see the module doc)."""

    def __init__(
        self,
        db: Database,
        contracts: Callable[[], Contracts],
        sync: Callable[[], int],
        operator: Callable[[], str],
        check_training: Callable[[str, str, Any], Any] | None = None,
    ) -> None:
        self.db = db
        self._contracts = contracts
        self._sync = sync
        self._operator = operator
        # the Model Factory's checks of a training job (``JobService.check_train``: snapshot
        # ref, base, configuration), wired by the node; the ledger does not import factory/
        self._check_training = check_training

    # -- prices ---------------------------------------------------------------------------
    def _on_chain_prices(self, chain_id: int) -> tuple[int, int]:
        try:
            return self._contracts().datanets.access_prices(chain_id)
        except TransactionRevertedError:  # a DatanetRegistry deployed before access fees
            return 0, 0

    def prices(self, datanet: str | int) -> dict[str, Any]:
        """A datanet's access prices as ``payAccess`` charges them now, and the bound."""
        with self.db.session() as s:
            dn = q.get_datanet(s, datanet)
            name, chain_id = dn.name, dn.chain_id
        export, train = self._on_chain_prices(chain_id)
        bound = self._contracts().params.snapshot().max_access_price
        return {
            "datanet": name,
            "id": chain_id,
            "export": str(export),
            "train": str(train),
            "export_open": fmt_open(export),
            "train_open": fmt_open(train),
            "max_access_price": str(bound),
        }

    def plan_set_prices(
        self, datanet: str | int, *, export: int | None, train: int | None, owner: str
    ) -> Plan:
        """The checks and ``setAccessPrices`` (the datanet's owner only, each price at most
        ``max_access_price``); a price of None stays what it is now."""
        with self.db.session() as s:
            dn = q.get_datanet(s, datanet)
            name, chain_id, dn_owner = dn.name, dn.chain_id, dn.owner
        if export is None or train is None:
            now_export, now_train = self._on_chain_prices(chain_id)
            export = now_export if export is None else export
            train = now_train if train is None else train
        if to_checksum_address(owner) != to_checksum_address(dn_owner):
            raise ForbiddenError(
                f"Only the owner of {name!r}, {dn_owner}, sets its access prices.",
                field="as",
                value=owner,
                fix="set them as the datanet's owner.",
            )
        contracts = self._contracts()
        bound = contracts.params.snapshot().max_access_price
        for field, value in (("export", export), ("train", train)):
            if value < 0:
                raise ValidationError(
                    f"The {field} price is negative.",
                    field=field,
                    value=value,
                    fix="use 0 (free) or more.",
                )
            if value > bound:
                raise ValidationError(
                    f"An access price of {fmt_open(value)} OPEN per {field} is above the "
                    f"bound of {fmt_open(bound)} OPEN (ProtocolParams.max_access_price).",
                    field=field,
                    value=fmt_open(value),
                    fix=f"ask at most {fmt_open(bound)} OPEN, or propose a higher bound "
                    "(a governance proposal that sets max_access_price).",
                )
        registry = contracts.datanets
        args = {"datanet": name, "id": chain_id, "export": str(export), "train": str(train)}
        finish, resume = resumable("access.finish_set_prices", self.finish_set_prices, args)
        call = build(registry, "setAccessPrices", chain_id, export, train)
        return Plan(
            contracts.client,
            to_checksum_address(owner),
            [call],
            finish,
            resume=resume,
            what=f"price {name!r}: {fmt_open(export)} OPEN per export, "
            f"{fmt_open(train)} OPEN per training job",
        )

    def finish_set_prices(
        self,
        args: dict[str, Any],
        _payload: bytes | None,
        results: list[TxResult],
        _sig: str | None,
    ) -> dict[str, Any]:
        return {**self.prices(args["id"]), "tx_hash": results[-1].tx_hash}

    # -- who pays -------------------------------------------------------------------------
    def _snapshot(
        self, s: Session, ref: str, version: int | None
    ) -> tuple[DatanetRow, SnapshotRow]:
        dn = q.get_datanet(s, ref)
        return dn, q.get_snapshot(s, dn, version)

    def quote(
        self, datanet: str | int, version: int | None, kind: str, account: str | None
    ) -> dict[str, Any]:
        """What ``account`` (None: the operator) pays to ``kind`` a snapshot now: the price,
        whether it is due, and why not when it is not."""
        try:
            grant = self.admit(datanet, version, kind, account)
            return {**grant.to_dict(), "due": False}
        except AccessDueError as exc:
            return {**exc.grant.to_dict(), "due": True}

    def admit(
        self,
        datanet: str | int,
        version: int | None,
        kind: str,
        account: str | None,
        *,
        access: int | None = None,
    ) -> Grant:
        """The grant under which ``account`` may ``kind`` the snapshot, or a
        :class:`AccessDueError` (402) that names the price and how to pay it. A training
        access is found here but spent only by :meth:`spend`."""
        kind = _kind(kind)
        account = to_checksum_address(account or self._operator())
        with self.db.session() as s:
            dn, snap = self._snapshot(s, str(datanet), version)
            name, chain_id, v, owner = dn.name, dn.chain_id, snap.version, dn.owner
            contributors = set(
                s.scalars(
                    select(ContributionRow.contributor).where(
                        ContributionRow.chain_id.in_(list(snap.contribution_ids)),
                        ContributionRow.status == "approved",
                    )
                )
            )
        price = self._on_chain_prices(chain_id)[KIND_CODES[kind]]
        base = Grant(name, v, kind, account, price, "free")
        if price == 0:
            return base
        if account == to_checksum_address(owner):
            return Grant(name, v, kind, account, price, "owner")
        if account in {to_checksum_address(c) for c in contributors}:
            return Grant(name, v, kind, account, price, "contributor")
        paid = self._paid(chain_id, v, kind, account, access)
        if paid is not None:
            return Grant(name, v, kind, account, price, "paid", paid)
        what = "export" if kind == "export" else "training job"
        raise AccessDueError(
            f"{name}@{v} is priced at {fmt_open(price)} OPEN per {what}, and {account} has "
            f"no unspent payment for it (contributors and the owner read it free).",
            grant=Grant(name, v, kind, account, price, "payment due"),
            field="access",
            value=f"{name}@{v}",
            fix=f"pay the access fee of {name}@{v} for {'an' if kind == 'export' else 'a'} "
            f"{what} first; nothing was charged.",
        )

    def _paid(
        self, chain_id: int, version: int, kind: str, account: str, access: int | None
    ) -> int | None:
        self._sync()  # a payment made through another process or a wallet counts at once
        with self.db.session() as s:
            query = select(AccessRow.access_id).where(
                AccessRow.payer == account,
                AccessRow.datanet_id == chain_id,
                AccessRow.version == version,
                AccessRow.kind == kind,
            )
            if kind == "train":
                query = query.where(AccessRow.used_by.is_(None))
            if access is not None:
                query = query.where(AccessRow.access_id == access)
            return s.scalar(query.order_by(AccessRow.access_id).limit(1))

    def spend(self, grant: Grant, job: int) -> None:
        """Spend the training access of ``grant`` on ``job`` (once: a conditional update,
        so two jobs never spend one payment)."""
        if grant.reason != "paid" or grant.kind != "train":
            return
        with self.db.locked_session(WRITE_LOCK_KEY) as s:
            done = s.execute(
                update(AccessRow)
                .where(
                    AccessRow.access_id == grant.access,
                    AccessRow.used_by.is_(None),
                )
                .values(used_by=f"job:{job}")
            ).rowcount
        if done != 1:
            raise ConflictError(
                f"The training access #{grant.access} was spent by another job meanwhile.",
                field="access",
                value=grant.access,
                fix="pay for this job again, or use the job that spent it.",
            )

    def withheld(self, contribution: int, account: str | None) -> dict[str, Any] | None:
        """None when ``account`` (None: a request without a credential) may read the
        records of ``contribution`` (its chain id); else why not and how to: a priced
        datanet's records are read by its owner, validators and the contribution's
        contributor, and by accounts that may export a snapshot holding it (contributors of
        that snapshot, or payers of its export). Pending ones: by the first three only."""
        with self.db.session() as s:
            row = q.get_contribution(s, contribution)
            dn = s.get(DatanetRow, row.datanet_id)
            assert dn is not None  # foreign key
            name, chain_id = dn.name, dn.chain_id
            readers = {to_checksum_address(a) for a in [dn.owner, row.contributor, *dn.validators]}
            versions = [
                v
                for v, ids in s.execute(
                    select(SnapshotRow.version, SnapshotRow.contribution_ids)
                    .where(SnapshotRow.datanet_id == dn.id)
                    .order_by(SnapshotRow.version.desc())
                )
                if row.chain_id in ids
            ]
        price = self._on_chain_prices(chain_id)[KIND_CODES["export"]]
        if price == 0:
            return None
        who = to_checksum_address(account) if account else None
        if who in readers:
            return None
        for version in versions if who else []:
            try:
                self.admit(name, version, "export", who)
                return None
            except AccessDueError:
                continue
        where = f"{name}@{versions[0]}" if versions else name
        return {
            "message": f"{name} is priced at {fmt_open(price)} OPEN per export: its records are "
            "read by its owner, validators and contributors and by accounts that paid for "
            "an export of a snapshot holding them.",
            "price": str(price),
            "price_open": fmt_open(price),
            "version": versions[0] if versions else None,
            "fix": (
                f"pay the access fee for an export of {where}, then read with that "
                "account's credential."
                if versions
                else "it is in no snapshot yet: its validators review it."
            ),
        }

    # -- paying ---------------------------------------------------------------------------
    def plan_pay(
        self,
        datanet: str | int,
        version: int | None,
        kind: str,
        payer: str,
        *,
        training: tuple[str, Any] | None = None,
    ) -> Plan:
        """``approve`` (when the allowance is short) and ``payAccess`` from ``payer``; the
        access is recorded from its event once mined. Refused, with nothing sent, when the
        snapshot is free for ``payer`` or the balance is short. ``training``: the (base,
        configuration) of the job the payment is for, checked first, so a job that would be
        refused costs nothing."""
        if training is not None and self._check_training is not None:
            ref = f"{datanet}@{version}" if version is not None else str(datanet)
            self._check_training(ref, *training)
        payer = to_checksum_address(payer)
        try:
            grant = self.admit(datanet, version, kind, payer)
        except AccessDueError as exc:
            grant = exc.grant
        else:
            if grant.reason != "paid":
                raise ConflictError(
                    f"{grant.datanet}@{grant.version} is free to {kind} for {payer} "
                    f"({'no price is set' if grant.reason == 'free' else 'its ' + grant.reason}); "
                    "nothing to pay.",
                    field="access",
                    value=grant.reason,
                    fix="export or train without paying.",
                )
            if kind == "export":
                raise ConflictError(
                    f"{payer} already paid to export {grant.datanet}@{grant.version} (access "
                    f"#{grant.access}); an export payment covers later exports of it.",
                    field="access",
                    value=grant.access,
                    fix="export without paying again.",
                )
        contracts = self._contracts()
        balance = contracts.token.balance_of(payer)
        if balance < grant.price:
            raise InsufficientFundsError(
                f"{payer} holds {fmt_open(balance)} OPEN, less than the {fmt_open(grant.price)} "
                f"OPEN to {kind} {grant.datanet}@{grant.version}; nothing was sent.",
                reason="exceeds balance",
                field="balance",
                value=fmt_open(balance),
                fix=f"top up the account with at least {fmt_open(grant.price - balance)} OPEN.",
            )
        registry = contracts.datanets
        with self.db.session() as s:
            chain_id = q.get_datanet(s, grant.datanet).chain_id
        calls = approval(contracts.token, payer, registry.address, grant.price)
        calls.append(build(registry, "payAccess", chain_id, grant.version, KIND_CODES[kind]))
        args = {
            "datanet": grant.datanet,
            "version": grant.version,
            "kind": kind,
            "payer": payer,
            "price": str(grant.price),
        }
        finish, resume = resumable("access.finish_pay", self.finish_pay, args)
        what = "export" if kind == "export" else "training job"
        return Plan(
            contracts.client,
            payer,
            calls,
            finish,
            resume=resume,
            what=f"pay {fmt_open(grant.price)} OPEN to {kind} "
            f"{grant.datanet}@{grant.version} (one {what})",
        )

    def finish_pay(
        self,
        args: dict[str, Any],
        _payload: bytes | None,
        results: list[TxResult],
        _sig: str | None,
    ) -> dict[str, Any]:
        """A mined ``payAccess``: the event sync records it (once); its record."""
        paid = self._contracts().datanets.events(results[-1], "AccessPaid")
        if not paid:
            raise ValidationError(
                "The reported transaction paid no access fee.",
                field="tx_hash",
                value=results[-1].tx_hash,
                fix="report the payAccess transaction.",
            )
        self._sync()
        return self.get(int(paid[0]["access_id"]))

    # -- reads ----------------------------------------------------------------------------
    def get(self, access_id: int) -> dict[str, Any]:
        with self.db.session() as s:
            row = s.get(AccessRow, access_id)
            if row is None:
                raise NotFoundError(
                    f"No access #{access_id} is recorded on this node.",
                    field="access",
                    value=access_id,
                    fix="wait for the node's chain sync, then look again.",
                )
            name = s.scalar(select(DatanetRow.name).where(DatanetRow.chain_id == row.datanet_id))
            return {
                **access_dict(row, name),
                "record": json.loads(row.body),
                "signature": row.signature or None,
            }

    def list(
        self,
        *,
        payer: str | None = None,
        datanet: str | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> dict[str, Any]:
        with self.db.session() as s:
            query = select(AccessRow, DatanetRow.name).outerjoin(
                DatanetRow, DatanetRow.chain_id == AccessRow.datanet_id
            )
            if payer:
                query = query.where(AccessRow.payer == to_checksum_address(payer))
            if datanet:
                query = query.where(AccessRow.datanet_id == q.get_datanet(s, datanet).chain_id)
            rows = s.execute(
                query.order_by(AccessRow.access_id.desc()).offset(offset).limit(limit)
            ).all()
            return {"items": [access_dict(r, n) for r, n in rows], "offset": offset, "limit": limit}

    def epochs_with(self, numbers: Iterable[int]) -> dict[int, dict[str, Any]]:
        with self.db.session() as s:
            return {n: epoch_summary(s, n) for n in numbers}
