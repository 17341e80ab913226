from __future__ import annotations

import pytest

from openledger.attribution.policy import format_policy, mix, parse_policy
from openledger.attribution.types import Attribution, Evidence, Share
from openledger.errors import ValidationError


def test_parse_single_mix_and_normalise() -> None:
    assert parse_policy(None) == {"provenance": 1.0}  # Model Factory models (issue 17)
    assert parse_policy("spans") == {"spans": 1.0}
    assert parse_policy("gradient:3, spans:1") == {"gradient": 0.75, "spans": 0.25}
    assert parse_policy({"rag": 2, "gradient": 2}) == {"gradient": 0.5, "rag": 0.5}
    assert parse_policy("gradient:1,gradient:1,rag:2") == {"gradient": 0.5, "rag": 0.5}
    assert format_policy(parse_policy("gradient:0.7,spans:0.3")) == "gradient:0.7,spans:0.3"


@pytest.mark.parametrize(
    "bad", ["magic", "gradient:0", "gradient:-1", "gradient:x", ",", "gradient:nan", "spans:inf"]
)
def test_bad_policies_name_the_field(bad: str) -> None:
    with pytest.raises(ValidationError) as err:
        parse_policy(bad, field="attribution")
    assert err.value.field == "attribution" and err.value.value == bad


def _a(method: str, weights: dict[int, float]) -> Attribution:
    shares = tuple(
        Share(c, f"0x{c}", w, w, (Evidence(c, w, f"text {c}", record=c),))
        for c, w in weights.items()
    )
    return Attribution(
        method, {"p": 1}, shares, evidence=tuple(e for s in shares for e in s.evidence)
    )


def test_mix_weights_by_policy_and_keeps_unattributed() -> None:
    grad = _a("gradient", {1: 0.75, 2: 0.25})
    spans = _a("spans", {2: 0.5})  # half of it unattributed
    out = mix([(0.6, grad), (0.4, spans)], model="m", index_hash="0xh")
    assert out.method == "mix" and out.model == "m" and out.index_hash == "0xh"
    assert out.weights() == pytest.approx({1: 0.45, 2: 0.15 + 0.2})
    assert out.unattributed == pytest.approx(0.2)
    assert out.params["policy"] == {"gradient": 0.6, "spans": 0.4}
    assert [c["method"] for c in out.params["components"]] == ["gradient", "spans"]
    assert {e.detail["method"] for e in out.evidence} == {"gradient", "spans"}
    assert [s.contribution for s in out.shares] == [1, 2]


def test_a_single_method_policy_returns_that_result() -> None:
    grad = _a("gradient", {1: 1.0})
    assert mix([(1.0, grad)]) is grad
