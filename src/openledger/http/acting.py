"""Who signs a write: the node, or the account's own wallet (prepare → sign → submit).

``actor(node, principal, as_)`` resolves the account a request acts for. Only the operator
token may name one of the node's accounts with ``"as"`` (the operator, or a dev account on
the devnet); any other credential acts for its own account, and naming another is a 403.

``act(node, actor, plan)``: the node signs and sends ``plan`` when it holds the account's
key — the operator's, or on the devnet a dev account's — and otherwise keeps it as a
prepared write and answers ``{"wallet": {"pending", "txs", "sign", …}}``; the account sends
the transactions from its own key and reports them to ``POST /wallet/submit`` (or the web
app's ``/web/api/wallet/submit``). Off the devnet the node signs only as the operator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from openledger.auth.principal import Principal
from openledger.chain.accounts import OPERATOR
from openledger.chain.calls import Plan
from openledger.config import DEVNET_CHAIN_ID
from openledger.errors import ForbiddenError
from openledger.node import Node


@dataclass(frozen=True)
class Actor:
    address: str
    name: str | None  # the node-held account the node signs as; None: the wallet signs


def _node_signs_for(node: Node, name: str | None) -> bool:
    return name is not None and (name == OPERATOR or node.settings.chain_id == DEVNET_CHAIN_ID)


def actor(node: Node, principal: Principal, as_: str | None = None) -> Actor:
    """The account this request writes for (see the module docstring)."""
    if principal.kind == "operator":
        name = (as_ or OPERATOR).strip()
        if name.startswith("0x"):
            address = node.accounts.resolve(name)
            held = node.accounts.name_of(address)
            if held is None:
                raise ForbiddenError(
                    f"{address} is not an account this node holds a key for.",
                    field="as",
                    value=name,
                    fix="name the operator or a dev account, or let that "
                    "account write with its own credential.",
                )
            name = held
        address = node.accounts.address(name)  # an unknown name: NotFoundError
        if not _node_signs_for(node, name):
            raise ForbiddenError(
                f"Off the devnet the node signs only as the operator, not as {name!r}.",
                field="as",
                value=name,
                fix="let that account write with its own key.",
            )
        return Actor(address, name)
    if as_ is not None and as_.strip():
        wanted = as_.strip()
        if not node.accounts.refers_to(wanted, principal.address):
            raise principal.forbid(wanted)
    name = principal.account
    return Actor(principal.address, name if _node_signs_for(node, name) else None)


def act(node: Node, who: Actor, plan: Plan) -> dict[str, Any]:
    """Send ``plan`` with the node's key for ``who``, or offer it to ``who``'s wallet. A plan
    with nothing to send or sign (a claim with nothing claimable) is finished at once."""
    if not plan.calls and plan.message is None:
        return plan.finish([], None)
    if who.name is not None:
        return plan.run(node.accounts.signer(who.name))
    return {"wallet": node.prepared.offer(who.address, plan)}
