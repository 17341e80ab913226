"""Schemathesis over the node's whole OpenAPI schema, seeded: every operation gets cases
generated from its schema, valid ones (positive) and ones that break it (negative), with the
operator token so that writes get past the credential check. Each response is checked for a
5xx and against what the schema declares for it: its status code, content type, headers and
body. Used by tests/api/test_fuzz.py (bounded) and benchmarks/fuzz.py (longer, writes
fuzz.json)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

#: what "conforms to its declared schema" means here
CHECKS = (
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
)
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
SEED = 18


@dataclass
class FuzzReport:
    cases: int = 0
    endpoints: int = 0
    fuzzed: int = 0  # operations that got their cases before the budget was spent
    server_errors: int = 0
    schema_violations: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cases": self.cases,
            "endpoints": self.endpoints,
            "fuzzed": self.fuzzed,
            "server_errors": self.server_errors,
            "schema_violations": self.schema_violations,
            "seconds": round(self.seconds, 1),
            "failures": self.failures[:50],
        }


def _cases(
    operation: Any,
    mode: GenerationMode,
    headers: dict[str, str],
    examples: int,
    seed: int,
    report: FuzzReport,
) -> Any:
    """The seeded hypothesis test of one operation in one generation mode."""

    @hypothesis_seed(seed)
    @settings(
        max_examples=examples, database=None, deadline=None, suppress_health_check=list(HealthCheck)
    )
    @given(case=operation.as_strategy(mode))
    def run(case: Any) -> None:
        case.headers = {**(case.headers or {}), **headers}
        where = f"{case.method} {case.formatted_path} ({mode.value})"
        report.cases += 1
        try:
            response = case.call()
        except Exception as exc:
            report.server_errors += 1
            report.failures.append(f"{where}: raised {type(exc).__name__}: {str(exc)[:160]}")
            return
        if response.status_code >= 500:
            report.server_errors += 1
            report.failures.append(f"{where}: {response.status_code} {response.text[:160]}")
        for check in CHECKS:
            try:
                case.validate_response(response, checks=[check])
            except Exception as exc:
                report.schema_violations += 1
                report.failures.append(
                    f"{where}: {check.__name__}, {response.status_code}: {str(exc)[:160]}"
                )

    return run


def fuzz(
    app: Any, headers: dict[str, str], *, examples: int, seed: int = SEED, budget_s: float = 120.0
) -> FuzzReport:
    """Run up to ``examples`` cases per operation and generation mode (positive, negative);
    operations left when ``budget_s`` is spent are counted in ``endpoints`` only."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    report = FuzzReport()
    start = time.monotonic()
    for result in schema.get_all_operations():
        operation = result.ok()
        report.endpoints += 1
        if time.monotonic() - start > budget_s:
            continue
        report.fuzzed += 1
        for mode in MODES:
            try:
                _cases(operation, mode, headers, examples, seed, report)()
            except Unsatisfiable:
                # nothing in this operation can be made invalid (no parameters, or only a
                # free-form string path segment): it has positive cases only
                if mode is not GenerationMode.NEGATIVE:
                    raise
    report.seconds = time.monotonic() - start
    return report
