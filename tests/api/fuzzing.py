"""Schemathesis over the node's whole OpenAPI schema, seeded: every operation gets cases
generated from its schema (with the operator token, so writes get past the credential
check), each response is checked for a 5xx and against its declared schema. Used by
tests/api/test_fuzz.py (bounded) and benchmarks/fuzz.py (longer, writes fuzz.json)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import response_schema_conformance


@dataclass
class FuzzReport:
    cases: int = 0
    endpoints: int = 0
    server_errors: int = 0
    schema_violations: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"cases": self.cases, "endpoints": self.endpoints,
                "server_errors": self.server_errors, "schema_violations": self.schema_violations,
                "seconds": round(self.seconds, 1), "failures": self.failures[:50]}  # fmt: skip


def fuzz(app: Any, headers: dict[str, str], *, examples: int, seed: int = 18,
         budget_s: float = 120.0) -> FuzzReport:  # fmt: skip
    """Run ``examples`` cases per operation (stopping when ``budget_s`` is spent)."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    report = FuzzReport()
    start = time.monotonic()
    for result in schema.get_all_operations():
        operation = result.ok()
        report.endpoints += 1
        if time.monotonic() - start > budget_s:
            continue

        @settings(max_examples=examples, derandomize=True, database=None, deadline=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            case.headers = {**(case.headers or {}), **headers}
            response = case.call()
            report.cases += 1
            where = f"{case.method} {case.formatted_path}"
            if response.status_code >= 500:
                report.server_errors += 1
                report.failures.append(f"{where}: {response.status_code} {response.text[:160]}")
            try:
                case.validate_response(response, checks=[response_schema_conformance])
            except Exception as exc:  # noqa: BLE001 - every violation is counted, not raised
                report.schema_violations += 1
                report.failures.append(f"{where}: schema: {str(exc)[:160]}")

        run()
    report.seconds = time.monotonic() - start
    return report
