"""Sampling parameters, the next-token choice and streamed text around stop sequences."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from openledger.errors import ValidationError
from openledger.serving.sampling import SamplingParams, TextStream, choose_tokens


class CharTokenizer:
    """Token i is the i-th byte; bytes decode as UTF-8 with replacement (like byte-level BPE)."""

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return bytes(ids).decode("utf-8", errors="replace")


def stream_all(text: str, stop: tuple[str, ...]) -> tuple[list[str], TextStream]:
    s = TextStream(CharTokenizer(), stop)
    pieces = [s.push(b) for b in text.encode()]
    pieces.append(s.finish())
    return pieces, s


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("max_tokens", {"max_tokens": 0}),
        ("max_tokens", {"max_tokens": True}),
        ("temperature", {"temperature": -0.1}),
        ("temperature", {"temperature": 2.5}),
        ("top_p", {"top_p": 0.0}),
        ("top_p", {"top_p": 1.2}),
        ("stop", {"stop": ("",)}),
        ("stop", {"stop": ("a", "b", "c", "d", "e")}),
        ("seed", {"seed": -1}),
    ],
)
def test_invalid_parameters_name_their_field(field: str, kwargs: dict) -> None:
    with pytest.raises(ValidationError) as info:
        SamplingParams(**kwargs)
    assert info.value.field == field


def test_greedy_rows_take_the_argmax_and_sampled_rows_follow_their_seed() -> None:
    logits = torch.tensor([[0.0, 3.0, 1.0], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0]])
    params = [SamplingParams(temperature=0), SamplingParams(seed=1), SamplingParams(seed=1)]
    gens = [p.generator() for p in params]
    first = choose_tokens(logits, params, gens)
    assert first[0] == 1 and first[1] == first[2]  # same seed, same draw


def test_top_p_keeps_only_the_nucleus() -> None:
    logits = torch.log(torch.tensor([[0.6, 0.3, 0.05, 0.05]]))
    params = [SamplingParams(top_p=0.5, seed=s) for s in range(50)]
    picks = {choose_tokens(logits, [p], [p.generator()])[0] for p in params}
    assert picks == {0}
    wide = [SamplingParams(top_p=0.85, seed=s) for s in range(200)]
    picks = {choose_tokens(logits, [p], [p.generator()])[0] for p in wide}
    assert picks == {0, 1}


def test_sampling_frequencies_follow_the_temperature() -> None:
    logits = torch.log(torch.tensor([[0.7, 0.2, 0.1]]))
    counts = torch.zeros(3)
    for s in range(2000):
        p = SamplingParams(seed=s)
        counts[choose_tokens(logits, [p], [p.generator()])[0]] += 1
    assert torch.allclose(counts / 2000, torch.tensor([0.7, 0.2, 0.1]), atol=0.04)


def test_stream_cuts_at_the_first_stop_and_never_shows_part_of_it() -> None:
    pieces, s = stream_all("Hello world. END and more END", ("END",))
    assert "".join(pieces) == "Hello world. "
    assert s.stopped
    assert all("E" not in p for p in pieces)


def test_stream_holds_back_half_characters() -> None:
    pieces, _ = stream_all("naïve ☃ café", ())
    assert "".join(pieces) == "naïve ☃ café"
    assert all("\ufffd" not in p for p in pieces)


@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet="ab☃c ", max_size=40),
    st.lists(st.text(alphabet="ab☃c", min_size=1, max_size=4), max_size=3),
)
def test_stream_ends_where_a_stop_first_completes(text: str, stops: list[str]) -> None:
    """As text grows a character at a time, the first time any stop sequence is complete
    the output ends at the earliest one then present (what vLLM and OpenAI do)."""
    pieces, _ = stream_all(text, tuple(stops))
    expected = text
    for end in range(1, len(text) + 1):
        hits = [text[:end].find(s) for s in stops if s in text[:end]]
        if hits:
            expected = text[: min(hits)]
            break
    assert "".join(pieces) == expected
