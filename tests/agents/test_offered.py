"""AgentService.offered: which agents GET /v1/models offers as ``agent/NAME`` (active, with
their configuration known here, running a model this node serves)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from openledger.agents.service import AgentService
from openledger.store.agent_tables import AgentRow
from openledger.store.db import Database
from openledger.store.factory_tables import JobRow, ModelRow

OWNER = "0x" + "ab" * 20
CONFIG = {"calls": []}


@pytest.fixture
def agents(tmp_path: Path) -> AgentService:
    db = Database.open(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with db.session() as s:
        job = JobRow(kind="train", params={}, work_dir="", owner=None)
        s.add(job)
        s.flush()
        for chain_id, name in ((1, "m1"), (2, "m2")):
            s.add(
                ModelRow(
                    chain_id=chain_id,
                    name=name,
                    owner=OWNER,
                    base="base",
                    base_fingerprint="",
                    adapter_sha="00" * 32,
                    adapter_dir="",
                    snapshot_roots=[],
                    index_hash="0x",
                    price_in=1,
                    price_out=2,
                    job_id=job.id,
                    card={},
                    tx_hash="0x",
                )
            )
    return AgentService(db, lambda: None, None)  # type: ignore[arg-type,return-value]


def _agent(agents: AgentService, chain_id: int, name: str, model_id: int, **kw: Any) -> None:
    with agents.db.session() as s:
        s.add(
            AgentRow(
                chain_id=chain_id,
                name=name,
                owner=OWNER,
                model_id=model_id,
                config_hash="0x" + "11" * 32,
                config=kw.pop("config", CONFIG),
                price=5,
                active=kw.pop("active", True),
                depth=0,
                callee_agents=[],
                callee_models=[],
                tx_hash="0x",
            )
        )


def test_only_active_agents_known_here_on_a_served_model_are_offered(
    agents: AgentService,
) -> None:
    _agent(agents, 1, "helper", 1)
    _agent(agents, 2, "paused", 1, active=False)
    _agent(agents, 3, "unsynced", 1, config=None)  # its configuration is not known here
    _agent(agents, 4, "elsewhere", 2)  # m2 is not served
    _agent(agents, 5, "orphan", 9)  # a model this node does not know
    _agent(agents, 6, "second", 1)
    offered = agents.offered({"m1": object()})
    assert [a["name"] for a in offered] == ["helper", "second"]
    assert offered[0] == agents.get("helper")
    assert [a["name"] for a in agents.offered({"m1", "m2"})] == ["helper", "elsewhere", "second"]
    assert agents.offered(set()) == []


def test_every_page_of_agents_is_read(agents: AgentService) -> None:
    for i in range(1, 451):
        _agent(agents, i, f"a{i}", 1 if i % 3 else 2)
    offered = agents.offered({"m1"})
    assert len(offered) == 300 and offered[-1]["name"] == "a449"
