"""One charge priced into a receipt's content: fee, split, payouts, pools, attribution summary,
canonical JSON and content hash.

A pure function of the charge and of what every charge of one model under one parameter
version shares (``Terms``), so that it can run in the pricing process
(``pricing_process``) or, as a fallback, in the node's own pricer thread, with the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from openledger.ledger.pricing.fees import (
    WEIGHT_SCALE,
    FeeSplit,
    Members,
    Payout,
    fee,
    split_fee,
    weights_ppb,
)
from openledger.ledger.receipts.canonical import RECEIPT_VERSION, canonical_json, hash_hex


@dataclass(frozen=True)
class AgentTerms:
    """The agent a call was made to (docs/agents.md): its price goes to its owner on top of
    the model's fee, which is split as any other."""

    id: int
    name: str
    owner: str
    price: int
    config_hash: str
    wallet: str = ""  # the agent's own account (pays the calls it makes); "" if none here

    def to_body(self) -> dict[str, Any]:
        body = {
            "id": self.id,
            "name": self.name,
            "owner": self.owner,
            "price": str(self.price),
            "config_hash": self.config_hash,
        }
        if self.wallet:
            body["wallet"] = self.wallet
        return body


def agent_payout(agent: dict[str, Any]) -> Payout | None:
    """The agent owner's payout a receipt's ``agent`` section gives (None at price 0)."""
    price = int(agent["price"])
    return Payout(agent["owner"], "agent", price) if price else None


@dataclass(frozen=True)
class Terms:
    """What the receipts of one model under one parameter version share (and, for a call to
    an agent, the agent)."""

    chain_id: int
    operator: str
    split: FeeSplit
    treasury: str
    set_hash: str  # the model's beneficiary set
    model_id: int
    model_name: str
    adapter_sha256: str
    base: str
    owner: str
    price_in: int
    price_out: int
    agent: AgentTerms | None = None


class AttributionInput(NamedTuple):
    """What a receipt records of an attribution: method, index, float weights and the hash
    of the tokens attributed."""

    method: str
    index_hash: str | None
    weights: dict[int, float]  # contribution → weight (≥ 0, sum ≤ 1)
    query_hash: str | None = None


class ComputeProof(NamedTuple):
    """The compute provider that served a request (docs/providers.md): its address, the hash
    of the job the gateway gave it, the hash of what it generated and its signature over
    both (``ledger.compute``)."""

    provider: str
    job: str
    output: str
    signature: str

    def to_body(self, bps: int) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "job": self.job,
            "output": self.output,
            "signature": self.signature,
            "bps": bps,
        }


class Charge(NamedTuple):
    """One finished request to be priced."""

    payer: str
    prompt_tokens: int
    completion_tokens: int
    request_hash: str
    attribution: AttributionInput | None
    created_at: str  # ISO 8601, to the second
    inner: tuple[str, ...] = ()  # an agent call: the receipts (link hashes) of its calls
    compute: ComputeProof | None = None  # served by a compute provider, not by this node


class Priced(NamedTuple):
    """A charge's receipt content and the accounting rows it adds."""

    text: bytes  # the canonical JSON of the receipt's content
    content_hash: str
    amount: int
    earnings: list[tuple[tuple, int]]  # ((account, role, model, datanet, contribution), wei)
    pools: list[tuple[tuple, int]]  # ((set hash, role, model), wei)


def attribution_summary(a: AttributionInput | None) -> dict[str, Any]:
    """What a receipt says about attribution: integer weights (ppb) per contribution,
    method, index."""
    if a is None:
        return {
            "method": "none",
            "index_hash": None,
            "shares": [],
            "unattributed_ppb": WEIGHT_SCALE,
        }
    ppb = weights_ppb(a.weights)
    shares = [
        {"contribution": c, "weight_ppb": w}
        for c, w in sorted(ppb.items(), key=lambda kv: (-kv[1], kv[0]))
    ]  # who each contribution pays is in the receipt's payouts
    summary = {
        "method": a.method,
        "index_hash": a.index_hash,
        "shares": shares,
        "unattributed_ppb": WEIGHT_SCALE - sum(ppb.values()),
    }
    if a.query_hash is not None:  # the tokens attributed (ledger_receipt_queries)
        summary["query_hash"] = a.query_hash
    return summary


def price_charge(terms: Terms, members: Members, c: Charge) -> Priced:
    """The fee of ``c``, its split over ``members`` and the receipt content that records it
    (everything but its place in the chain). A call to an agent adds the agent's price to
    the fee (``fee`` is what the payer pays; the model's part is split as usual) and pays it
    to the agent's owner."""
    amount = fee(c.prompt_tokens, c.completion_tokens, terms.price_in, terms.price_out)
    summary = attribution_summary(c.attribution)
    ppb = {x["contribution"]: x["weight_ppb"] for x in summary["shares"]}
    provider = c.compute.provider if c.compute is not None else None
    sp = split_fee(
        amount,
        terms.split,
        treasury=terms.treasury,
        owner=terms.owner,
        contributions=members,
        attribution=ppb,
        provider=provider,
    )
    model_id = terms.model_id
    body = {
        "v": RECEIPT_VERSION,
        "chain_id": terms.chain_id,
        "operator": terms.operator,
        "created_at": c.created_at,
        "payer": c.payer,
        "request_hash": c.request_hash,
        "model": {
            "id": model_id,
            "name": terms.model_name,
            "adapter_sha256": terms.adapter_sha256,
            "base": terms.base,
        },
        "tokens": {"prompt": c.prompt_tokens, "completion": c.completion_tokens},
        "prices": {"in": str(terms.price_in), "out": str(terms.price_out)},
        "fee": str(amount),
        "split": {
            "params_version": terms.split.version,
            "bps": list(terms.split.bps),
            **{role: str(v) for role, v in sp.parts.items()},
        },
        "beneficiaries": terms.set_hash,
        "payouts": [p.to_dict() for p in sp.payouts],
        "pools": {role: str(v) for role, v in sp.pools.items()},
        "attribution": summary,
    }
    if c.compute is not None:
        body["compute"] = c.compute.to_body(terms.split.compute_bps)
    payouts = list(sp.payouts)
    if terms.agent is not None:
        body["agent"] = terms.agent.to_body()
        if c.inner:
            body["agent"]["inner"] = list(c.inner)
        body["fee"] = str(amount + terms.agent.price)
        extra = agent_payout(body["agent"])
        if extra is not None:
            payouts.append(extra)
            body["payouts"].append(extra.to_dict())
        amount += terms.agent.price
    earnings = [
        ((p.account, p.role, model_id, p.datanet, p.contribution), p.amount) for p in payouts
    ]
    pools = [((terms.set_hash, role, model_id), v) for role, v in sp.pools.items()]
    text = canonical_json(body)
    return Priced(text, hash_hex(text), amount, earnings, pools)
