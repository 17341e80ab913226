"""JobService.own: who may cancel, resume or publish a job (the routes of both faces ask it)."""

from __future__ import annotations

from pathlib import Path

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
