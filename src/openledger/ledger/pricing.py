"""Fees and their split (DESIGN §5), in exact integer wei.

``fee`` prices an inference from the model's prices per 1,000 tokens. ``split_fee`` divides
it among the platform (treasury), the model owner, the stakers and the data contributors by
the protocol's basis points, then each part over its beneficiaries by integer weights. Every
division uses the largest-remainder rule with ties broken by key order, so the parts always
add up to the fee exactly and the same inputs always give the same wei to the same accounts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

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
    largest remainders (ties: smallest key first). Sums to ``amount`` exactly; keys with
    weight 0 get nothing. Empty or all-zero weights allocate nothing (returns {})."""
    positive = {k: w for k, w in weights.items() if w > 0}
    total = sum(positive.values())
    if amount <= 0 or total <= 0:
        return {}
    out: dict[K, int] = {}
    rems: list[tuple[int, K]] = []
    for k, w in positive.items():
        q, r = divmod(amount * w, total)
        out[k] = q
        rems.append((r, k))
    left = amount - sum(out.values())
    rems.sort(key=lambda rk: (-rk[0], _order(rk[1])))
    for _, k in rems[:left]:
        out[k] += 1
    return out


def _order(key: object) -> tuple:
    return key if isinstance(key, tuple) else (key,)


@dataclass(frozen=True)
class FeeSplit:
    """The protocol's basis points (they sum to 10,000) and the version they came from."""

    platform_bps: int
    owner_bps: int
    stakers_bps: int
    contributors_bps: int
    version: int = 0

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

    @property
    def bps(self) -> tuple[int, int, int, int]:
        return (self.platform_bps, self.owner_bps, self.stakers_bps, self.contributors_bps)


@dataclass(frozen=True)
class Payout:
    """One beneficiary's wei from one inference, and why it earned."""

    account: str
    role: str  # platform | owner | staker | contributor | unattributed
    amount: int
    datanet: int | None = None
    contribution: int | None = None

    def to_dict(self) -> dict[str, object]:
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


def split_fee(
    amount: int,
    split: FeeSplit,
    *,
    treasury: str,
    owner: str,
    contributions: Sequence[Beneficiary],
    attribution: Mapping[int, int],
) -> tuple[dict[str, int], list[Payout]]:
    """Divide ``amount`` wei; returns the four parts and the payouts (they sum to ``amount``).

    - platform → the treasury; owner → the model owner;
    - stakers → the contributors of ``contributions`` pro rata to their stake (all of it
      to the treasury when nothing is staked);
    - contributors → the contributions of ``attribution`` (contribution → weight in parts
      per billion, summing to at most 10⁹) by weight; the unattributed rest → the training
      contributions pro rata to their records (the model's datanets pro rata to approved
      records, then within each datanet by record). With no training contributions at
      all, the unattributed rest goes to the treasury.
    """
    parts = allocate(amount, dict(zip(ROLES, split.bps, strict=True)))
    parts = {r: parts.get(r, 0) for r in ROLES}
    by_id = {c.contribution: c for c in contributions}
    payouts: list[Payout] = []
    if parts["platform"]:
        payouts.append(Payout(treasury, "platform", parts["platform"]))
    if parts["owner"]:
        payouts.append(Payout(owner, "owner", parts["owner"]))

    staked = allocate(parts["stakers"], {c.contribution: c.stake for c in contributions})
    for cid in sorted(staked):
        c = by_id[cid]
        payouts.append(Payout(c.contributor, "staker", staked[cid], c.datanet, cid))
    if parts["stakers"] and not staked:
        payouts.append(Payout(treasury, "staker", parts["stakers"]))

    weights = {cid: w for cid, w in attribution.items() if w > 0}
    attributed_ppb = min(sum(weights.values()), WEIGHT_SCALE)
    keyed: dict[tuple[int, int], int] = {(0, cid): w for cid, w in weights.items()}
    if attributed_ppb < WEIGHT_SCALE:
        keyed[(1, 0)] = WEIGHT_SCALE - attributed_ppb
    shares = allocate(parts["contributors"], keyed)
    for (kind, cid), wei in sorted(shares.items()):
        if kind == 0:
            c = by_id.get(cid)
            account = c.contributor if c else _unknown_contribution(cid)
            payouts.append(Payout(account, "contributor", wei, c.datanet if c else None, cid))
    rest = shares.get((1, 0), 0)
    if rest:
        by_records = allocate(rest, {c.contribution: c.records for c in contributions})
        for cid in sorted(by_records):
            c = by_id[cid]
            payouts.append(Payout(c.contributor, "unattributed", by_records[cid], c.datanet, cid))
        if not by_records:
            payouts.append(Payout(treasury, "unattributed", rest))
    return parts, [p for p in payouts if p.amount]


def _unknown_contribution(cid: int) -> str:
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
