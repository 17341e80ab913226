"""factory.data: tokenisation and loss masks per kind, truncation, eval split, lineage.

Also home of the tiny offline model the factory tests share (``tiny_tokenizer``,
``tiny_model``): a byte-level BPE tokenizer with the project's special tokens and a
2-layer Llama with hidden size 64, built in memory in milliseconds.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from openledger.datanets.normalize import normalize_text
from openledger.errors import ValidationError
from openledger.factory.data import (
    DEFAULT_CHAT_TEMPLATE,
    IGNORE,
    build_examples,
    collate,
    encode_pair,
    lineage,
    split_eval,
)

# Wider than Llama's 0.02 so a frozen random base leaves LoRA room to learn (logit scale).
INIT_RANGE = 0.3
SPECIALS = ["<|pad|>", "<|bos|>", "<|eos|>", "<|system|>", "<|user|>", "<|assistant|>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>\n{{ message['content'] }}<|eos|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
CORPUS = [
    "The capital of France is Paris. The capital of Italy is Rome.",
    "Question: what colour is the sky? Answer: blue, mostly, on a clear day.",
    "def add(a, b):\n    return a + b\n",
    "Contributors earn OPEN when their data shapes an answer.",
    "zebra quartz jumps; vexing fog whirls 0123456789 !?.,:;'\"()[]{}<>",
]


@functools.cache
def _tokenizer_json(vocab_size: int) -> str:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS * 20, trainer)
    return tok.to_str()


def tiny_tokenizer(*, chat_template: str | None = CHAT_TEMPLATE, vocab_size: int = 400) -> Any:
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(_tokenizer_json(vocab_size)),
        bos_token="<|bos|>",
        eos_token="<|eos|>",
        pad_token="<|pad|>",
        additional_special_tokens=SPECIALS[3:],
    )
    tok.chat_template = chat_template
    return tok


def tiny_model(tokenizer: Any, *, seed: int = 0) -> Any:
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=256,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
        initializer_range=INIT_RANGE,
    )
    config._attn_implementation = "eager"
    torch.manual_seed(seed)
    return LlamaForCausalLM(config).eval()


def row(record: int, kind: str = "text", **fields: Any) -> dict[str, Any]:
    base = {
        "record": record,
        "sha256": hashlib.sha256(f"record-{record}-{fields}".encode()).hexdigest(),
        "kind": kind,
        "text": None,
        "prompt": None,
        "completion": None,
        "messages": None,
        "contribution": 100 + record // 3,
        "contributor": f"0x{record % 7:040x}",
    }
    base.update(fields)
    return base


@pytest.fixture(scope="module")
def tok() -> Any:
    return tiny_tokenizer()


def enc(tok: Any, text: str) -> list[int]:
    return tok(text, add_special_tokens=False)["input_ids"]


def one(rows: list[dict[str, Any]], tok: Any, max_seq_len: int = 512, **kw: Any) -> Any:
    out = build_examples(rows, tok, max_seq_len=max_seq_len, snapshot="dn@1", **kw)
    assert len(out) == 1
    return out[0]


# --------------------------------------------------------------------------- masks


def test_text_trains_on_every_token_after_bos(tok: Any) -> None:
    ex = one([row(0, text="The capital of Italy is Rome.")], tok)
    body = enc(tok, "The capital of Italy is Rome.")
    assert list(ex.input_ids) == [tok.bos_token_id, *body, tok.eos_token_id]
    assert list(ex.labels) == [IGNORE, *body, tok.eos_token_id]
    assert ex.loss_tokens == len(body) + 1


def test_prompt_completion_trains_only_on_completion_and_eos(tok: Any) -> None:
    ex = one([row(1, "prompt_completion", prompt="Question: the sky?", completion="blue")], tok)
    prompt, completion = enc(tok, "Question: the sky?"), enc(tok, "blue")
    assert list(ex.input_ids) == [tok.bos_token_id, *prompt, *completion, tok.eos_token_id]
    expected = [IGNORE] * (1 + len(prompt)) + completion + [tok.eos_token_id]
    assert list(ex.labels) == expected


def test_one_text_path_normalises_like_ingest(tok: Any) -> None:
    """A record and a query become tokens through encode_pair: leading or trailing spaces
    and CRLF line ends change nothing (ingest stored the record normalised)."""
    base = encode_pair(tok, "Question: the sky?", "It is blue.\nMostly.")
    for prompt, completion in [
        ("Question: the sky?", " It is blue.\nMostly."),
        ("  Question: the sky? ", "It is blue.\r\nMostly.  "),
        ("Question:  the sky?\r\n", "\tIt is blue.\r\nMostly.\r\n"),
    ]:
        assert encode_pair(tok, prompt, completion) == base
    ex = one(
        [
            row(
                1,
                "prompt_completion",
                prompt=" Question: the sky?",
                completion=" It is blue.\r\nMostly.",
            )
        ],
        tok,
    )
    assert (list(ex.input_ids), list(ex.labels)) == base
    assert encode_pair(tok, "Q?", "A.", eos=False)[0][-1] != tok.eos_token_id


def _loss_text(tok: Any, ex: Any) -> str:
    return tok.decode([t for t in ex.labels if t != IGNORE])


CHAT = [
    {"role": "system", "content": "Answer briefly."},
    {"role": "user", "content": "The capital of France?"},
    {"role": "assistant", "content": "Paris."},
    {"role": "user", "content": "And of Italy?"},
    {"role": "assistant", "content": "Rome."},
]


def test_chat_with_template_masks_token_by_token(tok: Any) -> None:
    ex = one([row(2, "chat", messages=CHAT)], tok)
    # The expected sequence, built piece by piece by hand from the template.
    pieces = [
        (
            "<|system|>\nAnswer briefly.<|eos|>\n<|user|>\nThe capital of France?<|eos|>\n"
            "<|assistant|>\n",
            False,
        ),
        ("Paris.<|eos|>", True),
        ("\n<|user|>\nAnd of Italy?<|eos|>\n<|assistant|>\n", False),
        ("Rome.<|eos|>", True),
        ("\n", False),
    ]
    ids, labels = [], []
    for text, loss in pieces:
        t = enc(tok, text)
        ids += t
        labels += t if loss else [IGNORE] * len(t)
    assert list(ex.input_ids) == ids
    assert list(ex.labels) == labels
    # The pieces tokenise as the whole rendering does (what a server would feed).
    rendered = tok.apply_chat_template(CHAT, tokenize=False)
    assert list(ex.input_ids) == enc(tok, rendered)
    assert _loss_text(tok, ex) == "Paris.<|eos|>Rome.<|eos|>"
    # every eos that ends an assistant turn is trained on, no other
    eos_positions = [i for i, t in enumerate(ex.input_ids) if t == tok.eos_token_id]
    trained = [i for i in eos_positions if ex.labels[i] != IGNORE]
    assert len(eos_positions) == 5 and len(trained) == 2


def test_chat_masks_with_the_tiny_base_template(tiny_base_dir: Path) -> None:
    from openledger.factory.base import load_base

    _, base_tok = load_base(tiny_base_dir)
    ex = one([row(2, "chat", messages=CHAT)], base_tok)
    pieces = [
        (
            "<|bos|><|system|>\nAnswer briefly.<|eos|><|user|>\nThe capital of France?<|eos|>"
            "<|assistant|>\n",
            False,
        ),
        ("Paris.<|eos|>", True),
        ("<|user|>\nAnd of Italy?<|eos|><|assistant|>\n", False),
        ("Rome.<|eos|>", True),
    ]
    ids, labels = [], []
    for text, loss in pieces:
        t = enc(base_tok, text)
        ids += t
        labels += t if loss else [IGNORE] * len(t)
    assert list(ex.input_ids) == ids and list(ex.labels) == labels
    # the same ids the base's own chat template gives for the whole conversation
    assert list(ex.input_ids) == list(base_tok.apply_chat_template(CHAT)["input_ids"])
    assert ex.input_ids.count(base_tok.bos_token_id) == 1
    text = one([row(3, text="Paris.")], base_tok)
    assert text.input_ids == (
        base_tok.bos_token_id,
        *enc(base_tok, "Paris."),
        base_tok.eos_token_id,
    )


def test_chat_without_template_uses_documented_default(tok: Any) -> None:
    bare = tiny_tokenizer(chat_template=None)
    ex = one([row(3, "chat", messages=CHAT[1:3])], bare)
    rendered = bare.apply_chat_template(
        CHAT[1:3], chat_template=DEFAULT_CHAT_TEMPLATE, tokenize=False
    )
    assert (
        rendered == "<|bos|><|user|>\nThe capital of France?<|eos|>\n<|assistant|>\nParis.<|eos|>\n"
    )
    prompt = enc(bare, "<|bos|><|user|>\nThe capital of France?<|eos|>\n<|assistant|>\n")
    answer = enc(bare, "Paris.<|eos|>")
    tail = enc(bare, "\n")
    assert list(ex.input_ids) == prompt + answer + tail
    assert list(ex.labels) == [IGNORE] * len(prompt) + answer + [IGNORE] * len(tail)
    assert ex.input_ids[0] == bare.bos_token_id


def test_chat_assistant_first_and_empty_reply(tok: Any) -> None:
    ex = one(
        [
            row(
                4,
                "chat",
                messages=[
                    {"role": "assistant", "content": "Hello."},
                    {"role": "user", "content": "Hi"},
                    {"role": "assistant", "content": ""},
                ],
            )
        ],
        tok,
    )
    assert _loss_text(tok, ex) == "Hello.<|eos|><|eos|>"
    assert ex.labels[0] == IGNORE  # never predicted


def test_chat_messages_as_pairs_and_unknown_role(tok: Any) -> None:
    ex = one([row(5, "chat", messages=[("user", "Hi"), ("assistant", "Rome.")])], tok)
    assert _loss_text(tok, ex) == "Rome.<|eos|>"
    with pytest.raises(ValidationError) as err:
        one([row(6, "chat", messages=[{"role": "robot", "content": "x"}])], tok)
    assert err.value.field == "messages.role" and "user" in err.value.fix


def test_chat_template_without_a_generation_prompt_still_masks_the_reply() -> None:
    # The role header lands inside the assistant turn: only the content and eos train.
    plain = tiny_tokenizer(
        chat_template="{% for message in messages %}<|{{ message['role'] }}|>\n"
        "{{ message['content'] | trim }}<|eos|>\n{% endfor %}"
    )
    ex = one([row(7, "chat", messages=CHAT[1:3])], plain)
    assert _loss_text(plain, ex) == "Paris.<|eos|>"
    header = enc(plain, "<|user|>\nThe capital of France?<|eos|>\n<|assistant|>\n")
    assert ex.labels[: len(header)] == (IGNORE,) * len(header)


def test_chat_template_that_rewrites_history_is_refused(tok: Any) -> None:
    # Shows only the last two messages: not prefix-stable, so masks can't be derived.
    bad = tiny_tokenizer(
        chat_template=(
            "{% for message in messages[-2:] %}<|{{ message['role'] }}|>{{ message['content'] }}"
            "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
        )
    )
    with pytest.raises(ValidationError) as err:
        one([row(7, "chat", messages=CHAT)], bad)
    assert err.value.field == "chat_template" and "default" in err.value.fix


@settings(max_examples=40, deadline=None)
@given(prompt=st.text(max_size=40), completion=st.text(min_size=1, max_size=40))
def test_prompt_completion_loss_decodes_to_completion(prompt: str, completion: str) -> None:
    tok = tiny_tokenizer()
    ex = one([row(8, "prompt_completion", prompt=prompt, completion=completion)], tok)
    # both sides normalised as ingest normalises records (the one text path)
    assert _loss_text(tok, ex) == normalize_text(completion) + "<|eos|>"
    n = sum(1 for t in ex.labels if t == IGNORE)
    assert tok.decode(ex.input_ids[1:n]) == normalize_text(prompt)


def test_unknown_kind_is_refused(tok: Any) -> None:
    with pytest.raises(ValidationError) as err:
        build_examples([row(9, "image")], tok, max_seq_len=64, snapshot="dn@1")
    assert err.value.field == "kind" and "prompt_completion" in err.value.fix


# --------------------------------------------------------------------------- truncation


def test_truncation_and_skipped_rows_record_why(tok: Any) -> None:
    long_text = "The capital of France is Paris. " * 20
    rows = [
        row(10, text=long_text),
        row(11, "prompt_completion", prompt=long_text, completion=" Paris"),
        row(12, "prompt_completion", prompt="Q?", completion=long_text),
        row(13, "chat", messages=[{"role": "user", "content": "no reply"}]),
        row(14, "prompt_completion", prompt="Q?", completion=None),
    ]
    skipped: list[dict[str, Any]] = []
    out = build_examples(rows, tok, max_seq_len=16, snapshot="dn@1", skipped=skipped)
    assert [e.record for e in out] == [10, 12]
    for e in out:
        assert len(e.input_ids) == len(e.labels) == 16
    assert out[0].labels[1:] == out[0].input_ids[1:]
    full = [tok.bos_token_id, *enc(tok, "Q?"), *enc(tok, long_text)][:16]
    assert list(out[1].input_ids) == full
    assert out[1].labels[: 1 + len(enc(tok, "Q?"))] == (IGNORE,) * (1 + len(enc(tok, "Q?")))
    reasons = {s["record"]: s["reason"] for s in skipped}
    assert set(reasons) == {11, 13, 14}
    assert "max_seq_len=16" in reasons[11]
    assert "assistant" in reasons[13]
    assert skipped[0]["sha256"] == rows[1]["sha256"]


# --------------------------------------------------------------------------- split, lineage


def _texts(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [row(i, text=f"fact number {i}") for i in range(start, start + n)]


def test_split_is_deterministic_and_stable_when_the_snapshot_grows(tok: Any) -> None:
    small = build_examples(_texts(200), tok, max_seq_len=64, snapshot="dn@1")
    grown = build_examples(_texts(400), tok, max_seq_len=64, snapshot="dn@2")
    train1, eval1 = split_eval(small, 0.2, seed=0)
    train2, eval2 = split_eval(grown, 0.2, seed=0)
    assert split_eval(small, 0.2, seed=0) == (train1, eval1)
    assert len(train1) + len(eval1) == 200 and 20 <= len(eval1) <= 60
    held1 = {e.sha256 for e in eval1}
    held2 = {e.sha256 for e in eval2}
    assert held1 == {sha for sha in held2 if sha in {e.sha256 for e in small}}
    assert not ({e.sha256 for e in train2} & held1)
    # order within each side follows the snapshot
    assert [e.record for e in train1] == sorted(e.record for e in train1)
    # a different seed gives a different split
    assert {e.sha256 for e in split_eval(small, 0.2, seed=1)[1]} != held1


def test_split_never_leaves_a_side_empty(tok: Any) -> None:
    two = build_examples(_texts(2), tok, max_seq_len=64, snapshot="dn@1")
    for fraction in (0.01, 0.99):
        train, evals = split_eval(two, fraction, seed=0)
        assert len(train) == 1 and len(evals) == 1
    with pytest.raises(ValidationError) as err:
        split_eval(two, 1.0)
    assert err.value.field == "eval_split"


def test_eval_split_zero_holds_nothing_out(tok: Any) -> None:
    five = build_examples(_texts(5), tok, max_seq_len=64, snapshot="dn@1")
    train, evals = split_eval(five, 0.0, seed=3)
    assert evals == [] and [e.record for e in train] == [e.record for e in five]


def test_lineage_keeps_every_id(tok: Any) -> None:
    rows = _texts(5)
    out = build_examples(rows, tok, max_seq_len=64, snapshot="medical@3")
    ids = lineage(out)
    assert [i["example_id"] for i in ids] == [f"medical@3#{r}" for r in range(5)]
    for got, r in zip(ids, rows, strict=True):
        assert got == {
            "example_id": f"medical@3#{r['record']}",
            "snapshot": "medical@3",
            "record": r["record"],
            "sha256": r["sha256"],
            "contribution": r["contribution"],
            "contributor": r["contributor"],
        }


def test_collate_pads_dynamically(tok: Any) -> None:
    out = build_examples(
        [row(0, text="a"), row(1, text="The capital of France is Paris.")],
        tok,
        max_seq_len=64,
        snapshot="dn@1",
    )
    b = collate(out, pad_id=tok.pad_token_id)
    width = max(len(e) for e in out)
    assert b["input_ids"].shape == (2, width)
    n = len(out[0])
    assert b["input_ids"][0, n:].tolist() == [tok.pad_token_id] * (width - n)
    assert b["labels"][0, n:].tolist() == [IGNORE] * (width - n)
    assert b["attention_mask"].sum(1).tolist() == [len(out[0]), len(out[1])]
    assert b["input_ids"].dtype == torch.long
