"""Agents: register them in AgentRegistry, keep them in the store, pause and resume them.

One code path for the CLI and the API: ``plan_*`` does every check and builds the contract
call (nothing is sent when a check fails), ``Plan.run(signer)`` sends it with a key the node
holds, ``finish_*`` records the result from the mined receipt. The event sync
(:func:`subscribe`) applies the registry's events, so agents registered through another
node or a wallet appear here too, and price, active flag and configuration hash follow the
chain.
"""

from __future__ import annotations

from collections.abc import Callable, Container
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from openledger.agents.config import AgentConfig, check_name
from openledger.agents.graph import MAX_DEPTH, call_chain
from openledger.errors import (
    ConflictError,
    ContractNotDeployedError,
    ForbiddenError,
    NotFoundError,
    Requester,
    ValidationError,
)
from openledger.store.agent_tables import AgentRow
from openledger.store.db import Database
from openledger.store.factory_tables import ModelRow
from openledger.store.models import digits_id

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from openledger.agents.retrieval import AgentRetrieval, Passage
    from openledger.agents.wallet import AgentWallets
    from openledger.chain.bindings import AgentRegistry
    from openledger.chain.calls import Plan
    from openledger.chain.deploy import Contracts
    from openledger.chain.sync import ChainEventRecord, EventSync
    from openledger.chain.tx import TxResult
    from openledger.datanets.registry import DatanetService
    from openledger.factory.publish import ModelService
    from openledger.ledger.receipts.content import AgentTerms

NOT_DEPLOYED_FIX = "ask the node's operator to deploy the AgentRegistry (once per deployment)."


def agent_dict(row: AgentRow, model_name: str | None) -> dict[str, Any]:
    return {
        "id": row.chain_id,
        "name": row.name,
        "model": model_name,
        "model_id": row.model_id,
        "owner": row.owner,
        "price": str(row.price),
        "active": row.active,
        "depth": row.depth,
        "config_hash": row.config_hash,
        "config": row.config,
        "callee_agents": list(row.callee_agents),
        "callee_models": list(row.callee_models),
        "tx_hash": row.tx_hash,
        "wallet": row.wallet,
        "created_at": row.created_at.isoformat(),
    }


def _model_names(s: Session, ids: list[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = s.execute(select(ModelRow.chain_id, ModelRow.name).where(ModelRow.chain_id.in_(ids)))
    return {int(i): n for i, n in rows}


def _row(s: Session, ref: str | int) -> AgentRow | None:
    name = str(ref).removeprefix("agent/")
    row = s.scalar(select(AgentRow).where(AgentRow.name == name))
    if row is None and (chain_id := digits_id(ref)) is not None:
        row = s.scalar(select(AgentRow).where(AgentRow.chain_id == chain_id))
    return row


@dataclass(frozen=True)
class AgentRun:
    """What serving a call to an agent needs: the model it runs, its configuration and the
    terms its receipts record; for an agent that retrieves, once
    ``AgentRunner.prepare`` has retrieved for a call, the passages put into its prompt."""

    name: str
    model: str
    config: AgentConfig
    terms: AgentTerms
    passages: tuple[Passage, ...] = ()

    @property
    def ref(self) -> str:
        return f"agent/{self.name}"

    @property
    def system_prompt(self) -> str:
        """The system message its model is given: its system prompt, then the passages
        retrieved for this call as a ``Context:`` block."""
        from openledger.agents.retrieval import render_context

        return render_context(self.config.system_prompt, self.passages)


@dataclass
class AgentService:
    db: Database
    contracts: Callable[[], Contracts]
    models: ModelService
    datanets: DatanetService | None = None
    #: this node's agent wallets (None: agents made here get none; tests of registration)
    wallets: AgentWallets | None = None
    #: the node's view of an account's inference credit (LedgerService.credit)
    credit: Callable[[str], dict[str, Any]] | None = None
    #: apply new chain events now (Node.sync_chain)
    sync: Callable[[], int] | None = None
    #: retrieval over datanets (None: agents that retrieve are refused at registration)
    retrieval: AgentRetrieval | None = None

    # -- reads -----------------------------------------------------------------------------
    def registry(self) -> AgentRegistry:
        """The AgentRegistry binding (refused, naming the fix, on a deployment without it)."""
        agents = self.contracts().agents
        if agents is None:
            raise ContractNotDeployedError(
                "This deployment has no AgentRegistry.",
                field="AgentRegistry",
                fix=NOT_DEPLOYED_FIX,
            )
        return agents

    def get(self, ref: str | int) -> dict[str, Any]:
        """An agent by name (``NAME`` or ``agent/NAME``) or id."""
        with self.db.session() as s:
            row = _row(s, ref)
            if row is None:
                raise NotFoundError(
                    f"No agent {ref!r}.",
                    field="agent",
                    value=str(ref),
                    fix="name one of this node's agents, or create it first.",
                )
            return agent_dict(row, _model_names(s, [row.model_id]).get(row.model_id))

    def list(self, offset: int = 0, limit: int = 50) -> dict[str, Any]:
        with self.db.session() as s:
            total = s.scalar(select(func.count()).select_from(AgentRow)) or 0
            rows = list(
                s.scalars(select(AgentRow).order_by(AgentRow.chain_id).offset(offset).limit(limit))
            )
            names = _model_names(s, [r.model_id for r in rows])
            return {
                "items": [agent_dict(r, names.get(r.model_id)) for r in rows],
                "total": total,
                "offset": offset,
                "limit": limit,
            }

    def offered(self, models: Container[str]) -> list[dict[str, Any]]:
        """The agents offered as models (``agent/NAME`` in ``GET /v1/models``,
        docs/agents.md): every active agent whose configuration is known here and whose
        model is one of ``models`` (those this node serves), as items of :meth:`list`, in
        its order."""
        out: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = self.list(offset, 200)
            out += [
                a
                for a in page["items"]
                if (a["model"] or "") in models and a["active"] and a["config"] is not None
            ]
            offset += len(page["items"])
            if not page["items"] or offset >= page["total"]:
                return out

    def agent_callees(self, name: str) -> list[str] | None:
        """The names of the agents ``name`` may call (None: no such agent here)."""
        with self.db.session() as s:
            row = _row(s, name)
            if row is None:
                return None
            ids = list(row.callee_agents)
            q = select(AgentRow.chain_id, AgentRow.name).where(AgentRow.chain_id.in_(ids))
            found = {int(i): n for i, n in s.execute(q)} if ids else {}
            # an id the store has not synced yet still counts (as its id) in a chain
            return [found.get(i, f"#{i}") for i in ids]

    def call_chain(self, name: str) -> list[str]:
        """The deepest chain of agent calls from ``name`` over the agents known here; raises
        on a cycle or a chain over the limit (checked again before each run)."""
        callees = self.agent_callees(name)
        if callees is None:
            self.get(name)  # raises NotFoundError
        return call_chain(name, callees or [], self.agent_callees, MAX_DEPTH)

    def resolve(self, ref: str) -> AgentRun:
        """The agent a call names (``agent/NAME``), checked before anything is held: it
        exists, is active, its configuration is known here and matches the hash on chain,
        its model is the one it was registered with, and its calls form no cycle and no
        chain over the limit."""
        from openledger.agents.retrieval import RetrievingTerms
        from openledger.ledger.receipts.content import AgentTerms

        try:
            agent = self.get(ref)
        except NotFoundError as exc:
            raise NotFoundError(
                f"No agent {ref!r}.",
                field="model",
                value=ref,
                fix="list the agents and models with GET /v1/models.",
            ) from exc
        name = agent["name"]
        if not agent["active"]:
            raise ConflictError(
                f"agent/{name} is paused by its owner.",
                field="model",
                value=f"agent/{name}",
                fix="call another agent or model, or ask its owner to resume it.",
            )
        if agent["config"] is None:
            raise ConflictError(
                f"agent/{name}'s configuration ({agent['config_hash']}) is not known on this node.",
                field="model",
                value=f"agent/{name}",
                fix="call it on the node it was created on.",
            )
        config = AgentConfig.from_json(agent["config"])
        if config.hash() != agent["config_hash"] or agent["model"] != config.model:
            raise ConflictError(
                f"agent/{name}'s configuration here does not match its registration.",
                field="model",
                value=f"agent/{name}",
                fix="wait for this node to sync the chain; its owner may have changed it "
                "elsewhere.",
            )
        self.call_chain(name)
        args = (
            int(agent["id"]),
            name,
            agent["owner"],
            int(agent["price"]),
            agent["config_hash"],
            agent["wallet"] or "",
        )
        terms = (
            RetrievingTerms(*args, retrieval=tuple(config.retrieval))
            if config.retrieval
            else AgentTerms(*args)
        )
        return AgentRun(name, config.model, config, terms)

    # -- create ----------------------------------------------------------------------------
    def create(
        self, name: str, config: AgentConfig, *, price: int, signer: LocalAccount
    ) -> dict[str, Any]:
        return self.plan_create(name, config, price=price, owner=signer.address).run(signer)

    def plan_create(self, name: str, config: AgentConfig, *, price: int, owner: str) -> Plan:
        """Every check, then ``registerAgent``; the row is written once it is mined.

        Refused before anything is sent: a bad name or price, a model or callee that is not
        published here, a datanet to retrieve from that does not exist, has no snapshot or is
        priced for its owner (``agents.retrieval``), a name taken, a cycle, a chain of agents
        deeper than the limit, a deployment without AgentRegistry."""
        from openledger.chain.calls import Plan, build, resumable

        name = check_name(name)
        if isinstance(price, bool) or not isinstance(price, int) or price < 0:
            raise ValidationError(
                f"price = {price!r} is not a wei amount of 0 or more.",
                field="price",
                value=price,
                fix="give the price per call in OPEN, e.g. 0.01.",
            )
        model = self._model(config.model, "model")
        callee_models = [
            self._model(c.name, "calls")["id"] for c in config.callees if c.kind == "model"
        ]
        agent_names = [c.name for c in config.callees if c.kind == "agent"]
        call_chain(name, agent_names, self.agent_callees, MAX_DEPTH)
        with self.db.session() as s:
            if _row(s, name) is not None:
                raise ConflictError(
                    f"An agent named {name!r} already exists.",
                    field="name",
                    value=name,
                    fix="choose another name.",
                )
            q = select(AgentRow).where(AgentRow.name.in_(agent_names))
            rows = {r.name: r for r in s.scalars(q)}
            callee_agents = [rows[n].chain_id for n in agent_names]
        if config.retrieval:
            if self.retrieval is None:
                raise ValidationError(
                    "This node has no datanets to retrieve from.",
                    field="retrieval",
                    value=", ".join(config.retrieval),
                    fix="drop the datanets to retrieve from.",
                )
            # each exists, has a snapshot with records, and may be served by its owner
            self.retrieval.check(config.retrieval, owner)
        registry = self.registry()
        if registry.agent_id_of(name) != 0:
            raise ConflictError(
                f"An agent named {name!r} is registered on chain (not yet synced here).",
                field="name",
                value=name,
                fix="choose another name, or wait for this node to sync the chain.",
            )
        if self.wallets is not None:  # its wallet is made once it is mined: the key opens now
            self.wallets.check()
        digest = config.hash()
        call = build(
            registry,
            "registerAgent",
            name,
            int(model["id"]),
            bytes.fromhex(digest[2:]),
            price,
            callee_agents,
            callee_models,
        )
        args = {"name": name, "owner": owner, "config": config.to_json()}
        finish, resume = resumable("agents.finish_create", self.finish_create, args)
        return Plan(
            registry.client, owner, [call], finish, what=f"create agent {name!r}", resume=resume
        )

    def finish_create(
        self,
        args: dict[str, Any],
        _payload: bytes | None,
        results: list[TxResult],
        _sig: str | None,
    ) -> dict[str, Any]:
        """Write the row from the mined ``AgentRegistered`` (with the configuration)."""
        ev = self.registry().events(results[-1], "AgentRegistered")[0]
        wallet = self.wallets.ensure(int(ev["agent_id"])) if self.wallets else None
        with self.db.session() as s:
            row = _upsert_registered(s, ev, results[-1].tx_hash)
            row.config = dict(args["config"])
            row.wallet = wallet
            s.flush()
            return agent_dict(row, _model_names(s, [row.model_id]).get(row.model_id))

    def _model(self, name: str, field_name: str) -> dict[str, Any]:
        try:
            return self.models.get(name)
        except NotFoundError as exc:
            raise NotFoundError(
                f"Model {name!r} is not published on this node.",
                field=field_name,
                value=name,
                fix="publish it first, or name a model published on this node.",
            ) from exc

    # -- the agent's wallet -----------------------------------------------------------------
    def wallet(self, ref: str) -> dict[str, Any]:
        """The agent's own account and its inference credit (what pays for its calls)."""
        return self._wallet(self.get(ref))

    def _wallet(self, agent: dict[str, Any]) -> dict[str, Any]:
        address = self._wallet_of(agent)
        credit = self.credit(address) if self.credit else {}
        return {"agent": agent["name"], "wallet": address, **credit}

    def _wallet_of(self, agent: dict[str, Any]) -> str:
        if agent["wallet"] is None:
            raise ConflictError(
                f"agent/{agent['name']} has no wallet on this node (it was created elsewhere).",
                field="agent",
                value=agent["name"],
                fix="fund it through the node it was created on.",
            )
        return str(agent["wallet"])

    def wallet_for(self, ref: str, requester: Requester) -> dict[str, Any]:
        """:meth:`wallet`, for the agent's owner (or the operator) only: a 403 for anyone
        else."""
        return self._wallet(self._readable(ref, requester, "wallet"))

    def activity_for(self, ref: str, requester: Requester) -> dict[str, Any]:
        """:meth:`activity`, for the agent's owner (or the operator) only, each call with
        its receipt's public id (``id``), and ``wallet``: the agent's wallet address (None:
        it has none on this node)."""
        from openledger.ledger.receipts.ids import receipt_ids

        agent = self._readable(ref, requester, "activity")
        out = self._activity(agent)
        ids = receipt_ids(self.db)
        for key in ("calls_to", "calls_made"):
            out[key] = [{**c, "id": ids.public(c["seq"])} for c in out[key]]
        out["wallet"] = agent["wallet"]
        return out

    @staticmethod
    def shows_wallet(agent: dict[str, Any], requester: Requester) -> bool:
        """Whether ``requester`` may read the wallet of ``agent`` (an item of :meth:`list`):
        it has one on this node and ``requester`` owns it (or is the operator)."""
        return bool(agent["wallet"]) and requester.owns(agent["owner"])

    def _readable(self, ref: str, requester: Requester, what: str) -> dict[str, Any]:
        """The agent, if ``requester`` may read its ``what`` (its owner, or the operator)."""
        agent = self.get(ref)
        if not requester.owns(agent["owner"]):
            raise requester.forbid(f"agent/{agent['name']}'s {what}", "read")
        return agent

    def activity(self, ref: str, *, limit: int = 20) -> dict[str, Any]:
        """What the agent did, from this node's receipts: the latest ``limit`` calls made to
        it (receipts whose ``agent`` section names it) and made by it (paid by its wallet),
        and what its price earned (settled: in a sealed epoch)."""
        return self._activity(self.get(ref), limit)

    def _activity(self, agent: dict[str, Any], limit: int = 20) -> dict[str, Any]:
        import json

        from openledger.store.ledger_tables import EarningRow, ReceiptRow

        # the canonical JSON of a receipt body (sorted keys, no spaces): only an agent section
        # has "name" followed by "owner", and agent names are unique
        needle = f'"name":"{agent["name"]}","owner":'
        named = ReceiptRow.body.contains(needle, autoescape=True)

        def rows(s: Session, where: Any) -> list[dict[str, Any]]:
            q = select(ReceiptRow).where(where).order_by(ReceiptRow.seq.desc()).limit(limit)
            return [_call(r.seq, r.epoch, json.loads(r.body)) for r in s.scalars(q)]

        with self.db.session() as s:
            to = rows(s, named)
            made = rows(s, ReceiptRow.payer == agent["wallet"]) if agent["wallet"] else []
            count = s.scalar(select(func.count()).select_from(ReceiptRow).where(named)) or 0
            earned = s.execute(
                select(EarningRow.amount, ReceiptRow.epoch)
                .join(ReceiptRow, EarningRow.receipt_seq == ReceiptRow.seq)
                .where(EarningRow.role == "agent", named)
            ).all()
        settled = sum(int(a) for a, epoch in earned if epoch is not None)
        total = sum(int(a) for a, _ in earned)
        return {
            "agent": agent["name"],
            "calls_to": to,
            "calls_made": made,
            "calls": count,
            "earned": str(total),
            "settled": str(settled),
            "pending": str(total - settled),
        }

    def fund(self, ref: str, amount: int, *, signer: LocalAccount) -> dict[str, Any]:
        return self.plan_fund(ref, amount, payer=signer.address).run(signer)

    def plan_fund(self, ref: str, amount: int, *, payer: str) -> Plan:
        """``approve`` (when the allowance is short) and ``InferenceEscrow.depositFor`` the
        agent's wallet: credit it spends on the calls it makes. Refused before anything is
        sent below the minimum deposit or beyond the payer's OPEN."""
        from openledger.chain.calls import Plan, approval, build, resumable
        from openledger.units import fmt_open

        agent = self.get(ref)
        wallet = self._wallet_of(agent)
        c = self.contracts()
        minimum = c.params.snapshot().min_deposit
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < max(minimum, 1):
            raise ValidationError(
                f"Funding agent/{agent['name']} with {fmt_open(int(amount))} OPEN is below "
                f"the minimum deposit of {fmt_open(minimum)} OPEN.",
                field="amount",
                value=fmt_open(int(amount)),
                fix=f"fund at least {fmt_open(max(minimum, 1))} OPEN.",
            )
        balance = c.token.balance_of(payer)
        if balance < amount:
            raise ValidationError(
                f"{payer} holds {fmt_open(balance)} OPEN, less than the {fmt_open(amount)} "
                "OPEN to fund.",
                field="amount",
                value=fmt_open(amount),
                fix="fund at most the account's OPEN balance.",
            )
        calls = approval(c.token, payer, c.escrow.address, amount)
        calls.append(build(c.escrow, "depositFor", wallet, amount))
        args = {"name": agent["name"], "wallet": wallet, "amount": str(amount)}
        finish, resume = resumable("agents.finish_fund", self.finish_fund, args)
        return Plan(
            c.client, payer, calls, finish, what=f"fund agent/{agent['name']}", resume=resume
        )

    def finish_fund(
        self,
        args: dict[str, Any],
        _payload: bytes | None,
        results: list[TxResult],
        _sig: str | None,
    ) -> dict[str, Any]:
        if self.sync is not None:
            self.sync()
        return {
            "tx_hash": results[-1].tx_hash,
            "funded": args["amount"],
            **self.wallet(args["name"]),
        }

    # -- price ------------------------------------------------------------------------------
    def set_price(self, ref: str, price: int, *, signer: LocalAccount) -> dict[str, Any]:
        return self.plan_set_price(ref, price, owner=signer.address).run(signer)

    def plan_set_price(self, ref: str, price: int, *, owner: str) -> Plan:
        """``setPrice`` by the agent's owner (refused before sending for anyone else, and
        for a price that is not a wei amount)."""
        from openledger.chain.calls import Plan, build, resumable

        agent = self._owned(ref, owner, "reprice")
        if isinstance(price, bool) or not isinstance(price, int) or price < 0:
            raise ValidationError(
                f"price = {price!r} is not a wei amount of 0 or more.",
                field="price",
                value=price,
                fix="give the price per call in OPEN, e.g. 0.01.",
            )
        registry = self.registry()
        call = build(registry, "setPrice", agent["id"], price)
        args = {"id": agent["id"], "price": str(price)}
        finish, resume = resumable("agents.finish_set_price", self.finish_set_price, args)
        return Plan(
            registry.client,
            owner,
            [call],
            finish,
            what=f"reprice agent {agent['name']!r}",
            resume=resume,
        )

    def finish_set_price(
        self,
        args: dict[str, Any],
        _payload: bytes | None,
        results: list[TxResult],
        _sig: str | None,
    ) -> dict[str, Any]:
        with self.db.session() as s:
            row = s.scalar(select(AgentRow).where(AgentRow.chain_id == int(args["id"])))
            row.price = int(args["price"])
            s.flush()
            return agent_dict(row, _model_names(s, [row.model_id]).get(row.model_id))

    def _owned(self, ref: str, owner: str, what: str) -> dict[str, Any]:
        agent = self.get(ref)
        if agent["owner"].lower() != owner.lower():
            raise ForbiddenError(
                f"Only the owner of agent {agent['name']!r} ({agent['owner']}) can {what} it.",
                field="account",
                value=owner,
                fix="act as the agent's owner.",
            )
        return agent

    # -- pause / resume --------------------------------------------------------------------
    def set_active(self, ref: str, active: bool, *, signer: LocalAccount) -> dict[str, Any]:
        return self.plan_set_active(ref, active, owner=signer.address).run(signer)

    def plan_set_active(self, ref: str, active: bool, *, owner: str) -> Plan:
        """``setActive`` by the agent's owner (refused before sending for anyone else, and
        when the agent already is so)."""
        from openledger.chain.calls import Plan, build, resumable

        agent = self._owned(ref, owner, "resume" if active else "pause")
        if agent["active"] == active:
            raise ConflictError(
                f"Agent {agent['name']!r} is already {'active' if active else 'paused'}.",
                field="agent",
                value=agent["name"],
                fix=f"{'pause' if active else 'resume'} it instead, if that was meant.",
            )
        registry = self.registry()
        call = build(registry, "setActive", agent["id"], active)
        args = {"id": agent["id"], "active": active}
        finish, resume = resumable("agents.finish_set_active", self.finish_set_active, args)
        what = f"{'resume' if active else 'pause'} agent {agent['name']!r}"
        return Plan(registry.client, owner, [call], finish, what=what, resume=resume)

    def finish_set_active(
        self,
        args: dict[str, Any],
        _payload: bytes | None,
        results: list[TxResult],
        _sig: str | None,
    ) -> dict[str, Any]:
        with self.db.session() as s:
            row = s.scalar(select(AgentRow).where(AgentRow.chain_id == int(args["id"])))
            row.active = bool(args["active"])
            s.flush()
            return agent_dict(row, _model_names(s, [row.model_id]).get(row.model_id))


def _call(seq: int, epoch: int | None, body: dict[str, Any]) -> dict[str, Any]:
    """One receipt as an agent's activity lists it."""
    agent = body.get("agent") or {}
    return {
        "seq": seq,
        "epoch": epoch,
        "created_at": body["created_at"],
        "payer": body["payer"],
        "model": body["model"]["name"],
        "fee": body["fee"],
        "tokens": body["tokens"],
        "agent": agent.get("name"),
        "agent_price": agent.get("price"),
        "inner": len(agent.get("inner", [])),
        "retrieved": agent.get("retrieved", []),
    }


# -- the event sync ------------------------------------------------------------------------
def _upsert_registered(s: Session, args: dict[str, Any], tx_hash: str) -> AgentRow:
    agent_id = int(args["agent_id"])
    row = s.scalar(select(AgentRow).where(AgentRow.chain_id == agent_id))
    if row is not None:
        return row
    config_hash = args["config_hash"]
    if isinstance(config_hash, bytes | bytearray):
        config_hash = "0x" + bytes(config_hash).hex()
    row = AgentRow(
        chain_id=agent_id,
        name=str(args["name"]),
        owner=str(args["owner"]),
        model_id=int(args["model_id"]),
        config_hash=str(config_hash),
        config=None,
        price=int(args["price"]),
        active=True,
        depth=int(args["depth"]),
        callee_agents=[int(a) for a in args["agent_callees"]],
        callee_models=[int(m) for m in args["model_callees"]],
        tx_hash=tx_hash,
    )
    s.add(row)
    s.flush()
    return row


def _by_id(s: Session, r: ChainEventRecord) -> AgentRow | None:
    return s.scalar(select(AgentRow).where(AgentRow.chain_id == int(r.args["agent_id"])))


def on_registered(s: Session, r: ChainEventRecord) -> None:
    _upsert_registered(s, r.args, r.tx_hash)


def on_config_changed(s: Session, r: ChainEventRecord) -> None:
    row = _by_id(s, r)
    if row is None or row.config_hash == r.args["config_hash"]:
        return
    row.config_hash = str(r.args["config_hash"])
    if row.config is not None and AgentConfig.from_json(row.config).hash() != row.config_hash:
        row.config = None  # committed elsewhere: unknown here until its owner supplies it


def on_price_changed(s: Session, r: ChainEventRecord) -> None:
    if (row := _by_id(s, r)) is not None:
        row.price = int(r.args["price"])


def on_active_changed(s: Session, r: ChainEventRecord) -> None:
    if (row := _by_id(s, r)) is not None:
        row.active = bool(r.args["active"])


def on_transferred(s: Session, r: ChainEventRecord) -> None:
    if (row := _by_id(s, r)) is not None:
        row.owner = str(r.args["new_owner"])


def subscribe(sync: EventSync) -> None:
    """Apply AgentRegistry's events to the agents table (idempotent: a registration already
    written by ``finish_create`` is kept with its configuration)."""
    sync.subscribe("AgentRegistry.AgentRegistered", on_registered)
    sync.subscribe("AgentRegistry.AgentConfigChanged", on_config_changed)
    sync.subscribe("AgentRegistry.AgentPriceChanged", on_price_changed)
    sync.subscribe("AgentRegistry.AgentActiveChanged", on_active_changed)
    sync.subscribe("AgentRegistry.AgentTransferred", on_transferred)


def deploy_registry(client: Any, deployer: LocalAccount, addresses_path: Any) -> str | None:
    """Deploy AgentRegistry next to an existing deployment that lacks it and record it in the
    addresses file (`openledger agent deploy`); returns its address, or None when the
    deployment already has one (running it again does nothing)."""
    from dataclasses import replace

    from openledger.chain.deploy import Addresses, deploy_agents

    addresses = Addresses.load(addresses_path)
    if "AgentRegistry" in addresses.contracts:
        return None
    gas = dict(addresses.gas)
    new = deploy_agents(client, deployer, addresses.contracts, gas)
    replace(addresses, contracts={**addresses.contracts, **new}, gas=gas).save(addresses_path)
    return new["AgentRegistry"]
