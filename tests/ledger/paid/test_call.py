"""A paid call of several choices without HTTP: holds, settle exactly once, release, settle
later, over real generations of the tiny model and the real ledger of an offline node."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from openledger.errors import PaymentRequiredError
from openledger.ledger.paid.call import PaidCall, committed_request
from openledger.ledger.pricing.fees import fee
from openledger.ledger.receipts.canonical import ReceiptSigner
from openledger.ledger.receipts.compute import output_hash, statement_digest
from openledger.ledger.receipts.content import ComputeProof
from openledger.node import Node
from openledger.serving.request import Event, Request
from openledger.serving.sampling import SamplingParams
from openledger.units import fmt_open
from tests.servers import wait_until
from tests.tiny import serving_node

MODEL = "ad0"
PRICE_IN, PRICE_OUT = 10, 20  # tests.tiny.register_models' prices


@pytest.fixture(scope="module")
def node(
    tmp_path_factory: pytest.TempPathFactory, tiny_base_dir: Path, adapters_dir: Path
) -> Iterator[Node]:
    node = serving_node(
        tmp_path_factory.mktemp("paid-call") / "home",
        tiny_base_dir,
        {MODEL: adapters_dir / "ad0"},
        serve_max_ctx=128,
        serve_max_batch=8,
    )
    yield node
    node.close()


@pytest.fixture
def account(node: Node) -> str:
    return node.accounts.address("alice")


def charged(node: Node, account: str) -> int:
    return int(node.ledger.credit(account)["charged"])


def held(node: Node, account: str) -> int:
    return int(node.ledger.credit(account)["held"])


def params(max_tokens: int = 6, choice: int = 0) -> SamplingParams:
    """Seeded sampling past eos: every choice produces ``max_tokens`` tokens."""
    return SamplingParams(max_tokens=max_tokens, temperature=0.8, seed=7 + choice, ignore_eos=True)


class Call:
    """A PaidCall of ``prompts[i]`` with ``sampling[i]`` per choice (the prompt billed on its
    first choice only, as /v1 bills ``n`` > 1), generated for real on ``start``."""

    def __init__(
        self, node: Node, account: str, prompts: list[str], sampling: list[SamplingParams]
    ) -> None:
        self.node, self.sampling = node, sampling
        self.call = PaidCall(node.paid, account, MODEL)
        self.ids = [node.serving.encode_prompt(p) for p in prompts]
        self.generations: list[Request] = []
        for i, (prompt, ids, p) in enumerate(zip(prompts, self.ids, sampling, strict=True)):
            first = i == 0 or prompts[i - 1] != prompt
            request = committed_request("test", "call-1", i, p, prompt=prompt)
            self.call.add(prompt, len(ids) if first else 0, p.max_tokens, request)

    def start(self, submit: Callable[[], None] | None = None) -> None:
        self.call.start(submit or self.submit)

    def submit(self) -> None:
        for ids, p in zip(self.ids, self.sampling, strict=True):
            self.generations.append(self.node.serving.submit(MODEL, ids, p))

    def wait(self) -> list[Request]:
        for g in self.generations:
            g.wait(timeout=60)
        return self.generations


def receipt_tokens(settlement: Any) -> list[tuple[int, int] | None]:
    return [
        None if r is None else (r.body["tokens"]["prompt"], r.body["tokens"]["completion"])
        for r in settlement.receipts
    ]


def test_a_call_is_settled_exactly_once(node: Node, account: str) -> None:
    before = charged(node, account)
    c = Call(node, account, ["The river"], [params()])
    c.start()
    assert held(node, account) == fee(len(c.ids[0]), 6, PRICE_IN, PRICE_OUT)
    [g] = c.wait()
    settled = c.call.settle(c.generations)
    [receipt] = settled.receipts
    assert receipt is not None and receipt_tokens(settled) == [(len(c.ids[0]), len(g.tokens))]
    assert settled.receipt_ids == [node.ledger.public_id(receipt.seq)]
    fields = settled.fields()
    assert fields["receipt_id"] == settled.receipt_ids[0] and len(fields["attributions"]) == 1
    assert charged(node, account) - before == int(receipt.body["fee"])
    assert held(node, account) == 0
    with pytest.raises(RuntimeError, match="already settled"):
        c.call.settle(c.generations)
    assert charged(node, account) - before == int(receipt.body["fee"])  # not twice


def test_release_after_settle_is_a_no_op(node: Node, account: str) -> None:
    c = Call(node, account, ["A datanet"], [params()])
    c.start()
    c.wait()
    settled = c.call.settle(c.generations)
    after = charged(node, account)
    c.call.release()
    c.call.settle_later(c.generations)
    assert c.call.closed and charged(node, account) == after and held(node, account) == 0
    assert node.ledger.receipt(settled.receipt_ids[0])["receipt"]["payer"] == account


def test_release_returns_every_hold_and_closes_the_call(node: Node, account: str) -> None:
    before = charged(node, account)
    c = Call(node, account, ["one", "two"], [params(), params()])
    c.start()
    assert held(node, account) > 0
    c.wait()
    c.call.release()
    c.call.release()  # idempotent
    assert held(node, account) == 0 and charged(node, account) == before
    with pytest.raises(RuntimeError):
        c.call.settle(c.generations)


def test_a_failed_submission_releases_every_hold(node: Node, account: str) -> None:
    c = Call(node, account, ["one", "two"], [params(), params()])

    def fail() -> None:
        raise RuntimeError("the engine is gone")

    with pytest.raises(RuntimeError, match="the engine is gone"):
        c.start(fail)
    assert held(node, account) == 0 and c.call.closed


def test_a_failed_choice_releases_its_hold(node: Node, account: str) -> None:
    before = charged(node, account)
    c = Call(node, account, ["first", "second"], [params(), params()])
    c.start()
    ok, real = c.wait()
    assert real.tokens  # as if it had produced tokens, then the engine failed it
    failed = SimpleNamespace(
        prompt=real.prompt,
        tokens=list(real.tokens),
        stop_token=None,
        finish_reason="error",
        done=True,
    )
    settled = c.call.settle([ok, failed])
    assert settled.receipts[1] is None and settled.receipt_ids[1] is None
    assert settled.attributions[1] is None
    assert receipt_tokens(settled)[0] == (len(c.ids[0]), len(ok.tokens))
    receipt = settled.receipts[0]
    assert receipt is not None
    assert charged(node, account) - before == int(receipt.body["fee"])
    assert held(node, account) == 0


def test_a_cancelled_choice_is_charged_for_the_tokens_it_produced(node: Node, account: str) -> None:
    ids = node.serving.encode_prompt("The river")
    call = PaidCall(node.paid, account, MODEL)
    p = params(max_tokens=100)
    call.add("The river", len(ids), p.max_tokens, committed_request("test", "c", 0, p))
    call.add("The river", 0, p.max_tokens, committed_request("test", "c", 1, p))
    ended = threading.Event()
    generations: list[Request] = []

    def sink(event: Event) -> None:  # on the engine thread: cancel after the first token
        if event.kind == "token":
            generations[0].cancel()
        else:
            ended.set()

    def submit() -> None:
        generations.append(node.serving.submit(MODEL, ids, p, sink=sink))

    before = charged(node, account)
    call.start(submit)
    assert ended.wait(60)
    [g] = generations
    assert g.finish_reason == "cancelled" and 1 <= len(g.tokens) < 100
    never = SimpleNamespace(
        prompt=ids, tokens=[], stop_token=None, finish_reason="cancelled", done=True
    )  # cancelled before its first token
    settled = call.settle([g, never])
    assert receipt_tokens(settled) == [(len(ids), len(g.tokens)), None]
    receipt = settled.receipts[0]
    assert receipt is not None
    assert int(receipt.body["fee"]) == fee(len(ids), len(g.tokens), PRICE_IN, PRICE_OUT)
    assert charged(node, account) - before == int(receipt.body["fee"])
    assert held(node, account) == 0


def test_n_choices_bill_the_prompt_once(node: Node, account: str) -> None:
    before = charged(node, account)
    c = Call(node, account, ["Rivers"] * 3, [params(choice=i) for i in range(3)])
    c.start()
    generations = c.wait()
    settled = c.call.settle(generations)
    prompt = len(c.ids[0])
    assert receipt_tokens(settled) == [
        (prompt if i == 0 else 0, len(g.tokens)) for i, g in enumerate(generations)
    ]
    fees = [int(r.body["fee"]) for r in settled.receipts if r is not None]
    assert fees[0] == fee(prompt, len(generations[0].tokens), PRICE_IN, PRICE_OUT)
    assert fees[1:] == [fee(0, len(g.tokens), PRICE_IN, PRICE_OUT) for g in generations[1:]]
    assert charged(node, account) - before == sum(fees)
    assert len(set(settled.receipt_ids)) == 3


def provider_generation(real: Request, proof: ComputeProof | None) -> SimpleNamespace:
    """``real``'s tokens as a compute provider would have served them (``compute``: its
    signed statement, None while it has signed none)."""
    return SimpleNamespace(
        prompt=real.prompt,
        tokens=list(real.tokens),
        stop_token=real.stop_token,
        finish_reason=real.finish_reason,
        done=True,
        compute=proof,
    )


def test_a_provider_generation_is_billed_only_with_its_statement(node: Node, account: str) -> None:
    before = charged(node, account)
    c = Call(node, account, ["served", "served"], [params(), params(choice=1)])
    c.start()
    a, b = c.wait()
    signer = ReceiptSigner(bytes([5] * 32))
    job, output = "0x" + "aa" * 32, output_hash(list(b.tokens), b.finish_reason or "stop")
    proof = ComputeProof(signer.address, job, output, signer.sign(statement_digest(job, output)))
    settled = c.call.settle([provider_generation(a, None), provider_generation(b, proof)])
    unsigned, signed = settled.receipts
    assert unsigned is None and settled.receipt_ids[0] is None
    assert signed is not None and signed.body["compute"]["provider"] == signer.address
    assert signed.body["compute"]["signature"] == proof.signature
    assert charged(node, account) - before == int(signed.body["fee"])
    assert held(node, account) == 0


def test_settle_later_waits_for_the_engine_then_charges(node: Node, account: str) -> None:
    before = charged(node, account)
    c = Call(node, account, ["Later"], [params(max_tokens=12)])
    c.start()
    c.call.settle_later(c.generations)  # the caller went away while it generates
    [g] = c.wait()
    wait_until(lambda: charged(node, account) > before)
    assert charged(node, account) - before == fee(len(c.ids[0]), len(g.tokens), PRICE_IN, PRICE_OUT)
    assert held(node, account) == 0
    with pytest.raises(RuntimeError):
        c.call.settle(c.generations)


def test_a_call_credit_cannot_cover_is_refused_whole_before_compute(node: Node) -> None:
    broke = "0x" + "77" * 20
    one = Call(node, broke, ["x"], [params()])
    with pytest.raises(PaymentRequiredError) as single:
        one.start()
    assert "can cost up to" in single.value.message and not one.generations
    several = Call(node, broke, ["x", "y", "z"], [params(max_tokens=10)] * 3)
    with pytest.raises(PaymentRequiredError) as whole:
        several.start()
    total = sum(fee(len(ids), 10, PRICE_IN, PRICE_OUT) for ids in several.ids)
    assert "this call's 3 choices can cost up to" in whole.value.message
    assert f"can cost up to {fmt_open(total)} OPEN together" in whole.value.message
    assert "InferenceEscrow" in (whole.value.fix or "") and not several.generations
    assert held(node, broke) == 0 and several.call.closed
