"""JobService.own: who may cancel, resume or publish a job (the routes of both faces ask it);
JobService.submit_train_for: whose job a request queues."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from openledger.auth.principal import SCOPES, Principal
from openledger.errors import ForbiddenError, NotFoundError
from openledger.factory.jobs import JobService
from openledger.store.db import Database
from openledger.store.factory_tables import JobRow

ALICE = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
BOB = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"


def _principal(kind: str, address: str, account: str | None = None) -> Principal:
    key_id = "olk_abcd1234" if kind == "key" else None
    return Principal(
        kind=kind, address=address, account=account, scopes=frozenset(SCOPES), key_id=key_id
    )


@pytest.fixture
def jobs(tmp_path: Path) -> JobService:
    return JobService(Database.open(f"sqlite:///{tmp_path / 'db.sqlite'}"), None, tmp_path)


def _queue(jobs: JobService, owner: str | None) -> int:
    with jobs.db.session() as s:
        row = JobRow(kind="train", params={}, work_dir="", owner=owner)
        s.add(row)
        s.flush()
        return row.id


def test_the_account_that_queued_a_job_acts_on_it_in_any_case(jobs: JobService) -> None:
    job = _queue(jobs, ALICE)
    assert jobs.own(job, _principal("key", ALICE.lower()))["id"] == job
    assert jobs.own(job, _principal("session", ALICE), what="publish")["owner"] == ALICE


def test_the_operator_acts_on_every_job(jobs: JobService) -> None:
    operator = _principal("operator", BOB, "operator")
    assert jobs.own(_queue(jobs, ALICE), operator)["owner"] == ALICE
    assert jobs.own(_queue(jobs, None), operator)["owner"] is None


def test_another_account_is_refused_in_the_requesters_words(jobs: JobService) -> None:
    job = _queue(jobs, ALICE)
    with pytest.raises(ForbiddenError) as err:
        jobs.own(job, _principal("key", BOB, "bob"))
    assert err.value.message == (
        f"This API key olk_abcd1234 is bound to bob; it cannot act on it for job {job} (queued by "
        f"{ALICE})."
    )
    with pytest.raises(ForbiddenError) as err:
        jobs.own(job, _principal("session", BOB), nodes_own=True, what="publish")
    assert err.value.message == (
        f"This web session is bound to {BOB}; it cannot publish for job {job} (queued by {ALICE})."
    )


def test_the_nodes_own_jobs_only_where_the_face_allows_them(jobs: JobService) -> None:
    job = _queue(jobs, None)
    with pytest.raises(ForbiddenError) as err:
        jobs.own(job, _principal("key", BOB, "bob"))
    assert f"job {job} (queued by the node)" in err.value.message
    assert jobs.own(job, _principal("session", BOB), nodes_own=True)["id"] == job


def test_an_unknown_job_is_a_404_before_any_owner_check(jobs: JobService) -> None:
    with pytest.raises(NotFoundError):
        jobs.own(99, _principal("key", BOB))


def _queued_as(
    jobs: JobService,
    monkeypatch: pytest.MonkeyPatch,
    requester: Principal,
    account: str,
    named: bool,
) -> dict:
    """What ``submit_train_for`` hands to ``submit_train`` (the queueing itself is tested
    end to end in test_jobs.py)."""
    seen: dict = {}

    def submit_train(
        datanet: str, base: str, config: dict, owner: str | None = None, **kw: Any
    ) -> dict:
        seen.update(datanet=datanet, base=base, config=config, owner=owner, **kw)
        return {"id": 1, "owner": owner}

    monkeypatch.setattr(jobs, "submit_train", submit_train)
    out = jobs.submit_train_for(
        requester, "facts@1", "base", {"rank": 4}, account=account, named=named, access=7
    )
    assert out == {"id": 1, "owner": seen["owner"]}
    assert (seen["datanet"], seen["base"], seen["config"]) == ("facts@1", "base", {"rank": 4})
    assert (seen["payer"], seen["access"]) == (account, 7)  # the acting account always pays
    return seen


def test_the_operator_naming_no_account_queues_the_nodes_own_job(
    jobs: JobService, monkeypatch: pytest.MonkeyPatch
) -> None:
    operator = _principal("operator", BOB, "operator")
    assert _queued_as(jobs, monkeypatch, operator, BOB, named=False)["owner"] is None


def test_a_job_queued_for_a_named_account_or_by_a_key_is_that_accounts(
    jobs: JobService, monkeypatch: pytest.MonkeyPatch
) -> None:
    operator = _principal("operator", BOB, "operator")
    assert _queued_as(jobs, monkeypatch, operator, ALICE, named=True)["owner"] == ALICE
    assert _queued_as(jobs, monkeypatch, operator, BOB, named=True)["owner"] == BOB
    key = _principal("key", ALICE, "alice")
    assert _queued_as(jobs, monkeypatch, key, ALICE, named=False)["owner"] == ALICE
    assert _queued_as(jobs, monkeypatch, key, ALICE, named=True)["owner"] == ALICE
