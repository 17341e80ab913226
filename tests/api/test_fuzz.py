"""Schemathesis in the suite: the whole OpenAPI schema, seeded, bounded (≤ 2 minutes on 2
cores), valid and invalid cases of every operation, against a node on the devnet, with the
operator token: no response of 5xx and every response as its schema declares (status code,
content type, headers and body; errors included: the project's format, OpenAI's under /v1).
`make fuzz` runs the same longer and writes benchmarks/results/fuzz.json."""

from __future__ import annotations

import time

import pytest

from openledger.app import create_app
from tests.api.fuzzing import fuzz
from tests.conftest import THOROUGH, World, operator_headers

pytestmark = pytest.mark.anvil

BUDGET_S = 100.0
EXAMPLES = 24 if THOROUGH else 3  # per operation and mode; make fuzz runs 120


def test_schemathesis_finds_no_5xx_and_no_schema_violation(world: World) -> None:
    start = time.monotonic()
    report = fuzz(
        create_app(world.node),
        operator_headers(world.node),
        examples=EXAMPLES,
        budget_s=BUDGET_S if not THOROUGH else 10 * BUDGET_S,
    )
    assert time.monotonic() - start < (120 if not THOROUGH else 1200)
    assert report.endpoints >= 90 and report.fuzzed == report.endpoints  # every operation
    assert report.cases >= EXAMPLES * report.endpoints  # positive and negative cases
    assert report.failures == []
    assert (report.server_errors, report.schema_violations) == (0, 0)
