"""Tables of agents: their registrations in AgentRegistry, with the configuration they
commit to when this node knows it (docs/agents.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from openledger.store.datanet_tables import Wei
from openledger.store.models import Base, utcnow


class AgentRow(Base):
    """An agent registered on chain: written by `agent create` once its registration is
    mined and by the event sync for every registration (by anyone), kept up to date from
    the registry's events (price, configuration hash, active)."""

    __tablename__ = "agents"
    __table_args__ = (UniqueConstraint("name"), UniqueConstraint("chain_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    name: Mapped[str] = mapped_column(String(64))
    owner: Mapped[str] = mapped_column(String(42))
    model_id: Mapped[int] = mapped_column(BigInteger)  # ModelRegistry id of the model it runs
    config_hash: Mapped[str] = mapped_column(String(66))
    #: the configuration whose hash is ``config_hash`` (None: registered elsewhere, unknown
    #: here until its owner supplies it)
    config: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    price: Mapped[int] = mapped_column(Wei)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    depth: Mapped[int] = mapped_column(Integer)
    callee_agents: Mapped[list[int]] = mapped_column(JSON)  # AgentRegistry ids
    callee_models: Mapped[list[int]] = mapped_column(JSON)  # ModelRegistry ids
    tx_hash: Mapped[str] = mapped_column(String(66))
    #: the agent's own account on this node (agents/wallet.py; None: made elsewhere)
    wallet: Mapped[str | None] = mapped_column(String(42), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
