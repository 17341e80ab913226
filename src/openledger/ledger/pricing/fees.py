"""Fees and their split (DESIGN §5), in exact integer wei.

``fee`` prices an inference from the model's prices per 1,000 tokens. ``split_fee`` divides
it among the platform (treasury), the model owner, the stakers and the data contributors by
the protocol's basis points, then each part over its beneficiaries by integer weights. Every
division uses the largest-remainder rule with ties broken by key order, so the parts always
add up to the fee exactly and the same inputs always give the same wei to the same accounts.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple, NoReturn, TypeVar

from openledger.errors import ValidationError

K = TypeVar("K")

BPS = 10_000
WEIGHT_SCALE = 10**9  # attribution weights are carried as parts per billion
ROLES = ("platform", "owner", "stakers", "contributors")


def fee(prompt_tokens: int, completion_tokens: int, price_in: int, price_out: int) -> int:
    """prompt/1000·price_in + completion/1000·price_out, rounded **up** to a whole wei
    (a request is never free because it was short)."""
    for name, v in (
        ("prompt_tokens", prompt_tokens),
        ("completion_tokens", completion_tokens),
        ("price_in", price_in),
        ("price_out", price_out),
    ):
        if not isinstance(v, int) or v < 0:
            raise ValidationError(
                f"{name} must be a non-negative integer, got {v!r}.",
                field=name,
                value=v,
                fix="pass token counts and wei prices as integers ≥ 0.",
            )
    return -(-(prompt_tokens * price_in + completion_tokens * price_out) // 1000)


def allocate(amount: int, weights: Mapping[K, int]) -> dict[K, int]:
    """``amount`` over ``weights`` (integers ≥ 0): floor shares, then one wei each to the
    largest remainders (ties: smallest key first; keys of one call must be comparable).
    Sums to ``amount`` exactly; keys with weight 0 get nothing. Empty or all-zero weights
    allocate nothing (returns {})."""
    positive = [(k, w) for k, w in weights.items() if w > 0]
    total = sum(w for _, w in positive)
    if amount <= 0 or total <= 0:
        return {}
    out: dict[K, int] = {}
    rems: list[tuple[int, K]] = []
    given = 0
    for k, w in positive:
        q, r = divmod(amount * w, total)
        out[k] = q
        given += q
        rems.append((-r, k))
    left = amount - given  # < number of keys: one wei each to the largest remainders
    if left:
        for _, k in heapq.nsmallest(left, rems):
            out[k] += 1
    return out


@dataclass(frozen=True)
class FeeSplit:
    """The protocol's basis points (they sum to 10,000) and the version they came from."""

    platform_bps: int
    owner_bps: int
    stakers_bps: int
    contributors_bps: int
    version: int = 0
    compute_bps: int = 0  # a compute provider's share of a fee it served, out of platform_bps

    def __post_init__(self) -> None:
        total = self.platform_bps + self.owner_bps + self.stakers_bps + self.contributors_bps
        if total != BPS or min(self.bps) < 0:
            raise ValidationError(
                f"the fee split must be four non-negative basis points summing to 10000, "
                f"got {self.bps} (sum {total}).",
                field="fee split",
                value=list(self.bps),
                fix="set platform/owner/stakers/contributors so that they add up to 100 %.",
            )
        if not 0 <= self.compute_bps <= self.platform_bps:
            raise ValidationError(
                f"the compute share {self.compute_bps} bps is outside [0, platform "
                f"{self.platform_bps} bps].",
                field="compute_share_bps",
                value=self.compute_bps,
                fix="keep the compute share at most the platform share.",
            )

    def compute_part(self, amount: int) -> int:
        """A provider's wei of a fee of ``amount`` it served: ⌊amount·compute_bps/10⁴⌋, never
        more than the platform part it is carved from (that part is ≥ the same floor)."""
        return amount * self.compute_bps // BPS

    @property
    def bps(self) -> tuple[int, int, int, int]:
        return (self.platform_bps, self.owner_bps, self.stakers_bps, self.contributors_bps)

    def parts(self, amount: int) -> dict[str, int]:
        """``amount`` over the four roles by these basis points (``allocate``'s rule, every
        role present)."""
        out = allocate(amount, dict(zip(ROLES, self.bps, strict=True)))
        return {r: out.get(r, 0) for r in ROLES}


class Payout(NamedTuple):
    """One beneficiary's wei from one inference, and why it earned."""

    account: str
    role: str  # platform | compute | owner | staker | contributor | unattributed
    amount: int
    datanet: int | None = None
    contribution: int | None = None

    def to_dict(self) -> dict[str, object]:
        """As a receipt lists it; ``datanet`` and ``contribution`` only when there is one."""
        if self.contribution is None:
            return {"account": self.account, "role": self.role, "amount": str(self.amount)}
        return {
            "account": self.account,
            "role": self.role,
            "amount": str(self.amount),
            "datanet": self.datanet,
            "contribution": self.contribution,
        }


@dataclass(frozen=True)
class Beneficiary:
    """A contribution of the model's training data: who gets its share and by what weight."""

    contribution: int
    datanet: int
    contributor: str
    records: int
    stake: int


@dataclass(frozen=True)
class Members:
    """A beneficiary set prepared once for many splits: by id, and whether anything is
    staked or recorded (else those parts go to the treasury)."""

    items: tuple[Beneficiary, ...]
    by_id: Mapping[int, Beneficiary]
    staked: bool
    recorded: bool

    @classmethod
    def of(cls, contributions: Sequence[Beneficiary]) -> Members:
        items = tuple(contributions)
        return cls(
            items,
            {c.contribution: c for c in items},
            any(c.stake > 0 for c in items),
            any(c.records > 0 for c in items),
        )


POOLED_ROLES = ("staker", "unattributed")  # divided over a beneficiary set once per epoch
_REST = 2**256  # the unattributed rest's key: larger than any contribution id


@dataclass(frozen=True)
class Split:
    """One fee divided: the four parts, the payouts to named accounts, and the pooled
    amounts (role → wei) that the epoch's seal divides over the receipt's beneficiary set."""

    parts: dict[str, int]
    payouts: list[Payout]
    pools: dict[str, int]


def split_fee(
    amount: int,
    split: FeeSplit,
    *,
    treasury: str,
    owner: str,
    contributions: Sequence[Beneficiary] | Members,
    attribution: Mapping[int, int],
    provider: str | None = None,
) -> Split:
    """Divide ``amount`` wei; payouts and pools together sum to ``amount``.

    - platform → the treasury, less the compute share (``split.compute_part``) that goes to
      the ``provider`` that served the request, when one did (docs/providers.md);
    - owner → the model owner;
    - stakers → pooled: the seal of the epoch divides the pool of each beneficiary set
      over its contributions pro rata to stake (all of it to the treasury at once when
      nothing is staked);
    - contributors → the contributions of ``attribution`` (contribution → weight in parts
      per billion, summing to at most 10⁹) by weight; the unattributed rest is pooled and
      divided at the seal over the training contributions pro rata to their approved
      records (to the treasury at once when there are none).

    Pooling divides the stakers' and the unattributed parts once per epoch and set instead
    of once per receipt: a receipt names 10–20 payouts instead of one per training
    contribution, and the integer division of a sum loses less to rounding than the sum of
    divisions did. ``divide_pools`` is the second half of the rule.
    """
    members = contributions if isinstance(contributions, Members) else Members.of(contributions)
    parts = split.parts(amount)
    payouts: list[Payout] = []
    pools: dict[str, int] = {}
    compute = split.compute_part(amount) if provider else 0
    if parts["platform"] - compute:
        payouts.append(Payout(treasury, "platform", parts["platform"] - compute))
    if compute:
        payouts.append(Payout(str(provider), "compute", compute))
    if parts["owner"]:
        payouts.append(Payout(owner, "owner", parts["owner"]))
    if parts["stakers"]:
        if members.staked:
            pools["staker"] = parts["stakers"]
        else:
            payouts.append(Payout(treasury, "staker", parts["stakers"]))

    weights = {cid: w for cid, w in attribution.items() if w > 0}
    attributed_ppb = min(sum(weights.values()), WEIGHT_SCALE)
    if attributed_ppb < WEIGHT_SCALE:  # the rest, keyed after every contribution id in ties
        weights[_REST] = WEIGHT_SCALE - attributed_ppb
    shares = allocate(parts["contributors"], weights)
    rest = shares.pop(_REST, 0)
    by_id = members.by_id
    for cid in sorted(shares):
        c = by_id.get(cid)
        if c is None:
            _unknown_contribution(cid)
        payouts.append(Payout(c.contributor, "contributor", shares[cid], c.datanet, cid))
    if rest:
        if members.recorded:
            pools["unattributed"] = rest
        else:
            payouts.append(Payout(treasury, "unattributed", rest))
    return Split(parts, [p for p in payouts if p.amount], pools)


def divide_pools(
    pools: Mapping[tuple[str, str], int], sets: Mapping[str, Sequence[Beneficiary]]
) -> list[tuple[str, Payout]]:
    """The pooled wei of one epoch, ``(set hash, role) → wei``, over each set's
    contributions: stakers' pools by stake, unattributed pools by records (largest
    remainder, ties by contribution id). Returns ``(set hash, payout)`` pairs summing to the
    pools exactly, sorted by set, role and contribution."""
    out: list[tuple[str, Payout]] = []
    for (set_hash, role), amount in sorted(pools.items()):
        if amount <= 0:
            continue
        members = sets.get(set_hash)
        if members is None:
            raise ValidationError(
                f"beneficiary set {set_hash} of a pooled {role} share is not stored.",
                field="beneficiaries",
                value=set_hash,
                fix="restore the ledger_beneficiary_sets table from a backup of the node.",
            )
        by_id = {c.contribution: c for c in members}
        weight = {c.contribution: (c.stake if role == "staker" else c.records) for c in members}
        shares = allocate(amount, weight)
        if not shares:
            raise ValidationError(
                f"the {role} pool of beneficiary set {set_hash} ({amount} wei) has no "
                "positive weight to be divided by.",
                field="beneficiaries",
                value=set_hash,
                fix="this set should have paid the treasury directly; re-run the audit.",
            )
        for cid in sorted(shares):
            if shares[cid]:
                c = by_id[cid]
                out.append((set_hash, Payout(c.contributor, role, shares[cid], c.datanet, cid)))
    return out


def _unknown_contribution(cid: int) -> NoReturn:
    raise ValidationError(
        f"attribution names contribution #{cid}, which is not in the model's training data.",
        field="attribution",
        value=cid,
        fix="rebuild the model's attribution index from its training snapshot.",
    )


def weights_ppb(weights: Mapping[int, float]) -> dict[int, int]:
    """Float attribution weights (≥ 0, sum ≤ 1) as integer parts per billion whose sum never
    exceeds 10⁹ (so the receipt carries exactly what the split used)."""
    clean = {c: w for c, w in weights.items() if w > 0}
    total = sum(clean.values())
    scale = WEIGHT_SCALE / total if total > 1 else WEIGHT_SCALE
    ppb = {c: int(w * scale) for c, w in clean.items()}
    return {c: v for c, v in ppb.items() if v > 0}
