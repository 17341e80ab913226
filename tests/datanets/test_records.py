import hashlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openledger.chain.merkle import SimpleMerkleTree, verify
from openledger.datanets.records import (
    Record,
    contribution_proof,
    contribution_root,
)
from openledger.errors import NotFoundError, ValidationError

TEXT = Record(kind="text", text="Hello, world.", source="a.txt", location="paragraph 1")
PC = Record(kind="prompt_completion", prompt="2+2?", completion="4")
CHAT = Record(kind="chat", messages=(("user", "Hi"), ("assistant", "Hello! Café?")))

any_text = st.text(alphabet=st.characters(codec="utf-8"))
roles = st.sampled_from(["system", "user", "assistant"])
records = st.one_of(
    st.builds(lambda t: Record(kind="text", text=t), any_text),
    st.builds(
        lambda p, c: Record(kind="prompt_completion", prompt=p, completion=c), any_text, any_text
    ),
    st.builds(
        lambda m: Record(kind="chat", messages=tuple(m)),
        st.lists(st.tuples(roles, any_text), min_size=1, max_size=5),
    ),
)


def test_canonical_has_only_the_kinds_fields() -> None:
    assert TEXT.canonical() == {"kind": "text", "text": "Hello, world."}
    assert PC.canonical() == {"kind": "prompt_completion", "prompt": "2+2?", "completion": "4"}
    assert CHAT.canonical() == {
        "kind": "chat",
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello! Café?"},
        ],
    }
    # fields of another kind are not part of the identity
    assert Record(kind="text", text="x", prompt="ignored").sha256 == Record("text", "x").sha256


def test_canonical_json_and_hash() -> None:
    assert TEXT.canonical_json() == b'{"kind":"text","text":"Hello, world."}'
    assert PC.canonical_json() == b'{"completion":"4","kind":"prompt_completion","prompt":"2+2?"}'
    assert "Café".encode() in CHAT.canonical_json()  # UTF-8, not \u escapes
    assert TEXT.sha256 == hashlib.sha256(TEXT.canonical_json()).hexdigest()
    assert TEXT.sha256 == "f3bf5b93658dec4d47f639005dc415a7df4dcec6adc3e64dbb9e33f9d8b75e12"
    assert TEXT.leaf == bytes.fromhex(TEXT.sha256) and len(TEXT.leaf) == 32


def test_source_and_location_do_not_change_the_hash() -> None:
    other = Record(kind="text", text="Hello, world.", source="b.jsonl", location="line 9")
    assert other.sha256 == TEXT.sha256
    assert other.canonical_json() == TEXT.canonical_json()


def test_text_views() -> None:
    assert TEXT.content_text == "Hello, world." and TEXT.char_len == 13
    assert PC.content_text == "2+2?\n4"
    assert CHAT.content_text == "user: Hi\nassistant: Hello! Café?"
    assert CHAT.char_len == len(CHAT.content_text)
    long = Record(kind="text", text="word\n" * 100)
    assert long.preview() == long.preview(160)
    assert len(long.preview(20)) == 20 and long.preview(20).endswith("…")
    assert "\n" not in long.preview(500)
    assert PC.preview() == "2+2? 4"


@settings(derandomize=True)
@given(records)
def test_round_trip_through_canonical_json(record: Record) -> None:
    data = json.loads(record.canonical_json())
    back = Record.from_canonical(data, "f.jsonl", "line 3")
    assert back.canonical_json() == record.canonical_json()
    assert back.sha256 == record.sha256
    assert back == Record(
        kind=record.kind,
        text=record.text if record.kind == "text" else None,
        prompt=record.prompt,
        completion=record.completion,
        messages=record.messages,
        source="f.jsonl",
        location="line 3",
    )


@pytest.mark.parametrize(
    "data",
    [
        [],
        {"kind": "poem", "text": "x"},
        {"kind": "text"},
        {"kind": "text", "text": 3},
        {"kind": "text", "text": "x", "extra": 1},
        {"kind": "prompt_completion", "prompt": "p"},
        {"kind": "chat", "messages": "hi"},
        {"kind": "chat", "messages": [{"role": "bot", "content": "x"}]},
        {"kind": "chat", "messages": [{"role": "user"}]},
    ],
)
def test_from_canonical_rejects_bad_input(data: object) -> None:
    with pytest.raises(ValidationError):
        Record.from_canonical(data)  # type: ignore[arg-type]


def test_constructor_checks_the_kind_and_fields() -> None:
    with pytest.raises(ValidationError):
        Record(kind="poem", text="x")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        Record(kind="prompt_completion", prompt="p")
    with pytest.raises(ValidationError):
        Record(kind="chat", messages=(("robot", "x"),))
    with pytest.raises(ValidationError):
        Record(kind="chat", messages=("not a pair",))  # type: ignore[arg-type]
    # messages given as lists are stored as tuples (hashable, frozen)
    chat = Record(kind="chat", messages=[["user", "a"], ["assistant", "b"]])  # type: ignore[arg-type]
    assert chat.messages == (("user", "a"), ("assistant", "b"))
    assert hash(chat) == hash(Record(kind="chat", messages=(("user", "a"), ("assistant", "b"))))


def test_contribution_root_matches_openzeppelin() -> None:
    # SimpleMerkleTree.of([sha256 leaves]) with @openzeppelin/merkle-tree 1.0.8
    root = contribution_root([TEXT, PC, CHAT])
    assert root.hex() == "9a96a2c7cd9a73d869945aae39e1ca97ce09591f73cda7398584699089ed245c"
    assert contribution_root([CHAT, TEXT, PC]) == root  # order-free
    assert [p.hex() for p in contribution_proof([TEXT, PC, CHAT], 0)] == [
        "7323e61a7c53f2faa78dbd7e55e024214e3e4a0a2597db75f17edf18ab7d9a96"
    ]
    assert contribution_root([TEXT]) == TEXT.leaf  # one leaf is the root, not re-hashed


@settings(derandomize=True)
@given(st.lists(records, min_size=1, max_size=12, unique_by=lambda r: r.sha256))
def test_every_record_has_a_proof(batch: list[Record]) -> None:
    root = contribution_root(batch)
    assert root == SimpleMerkleTree.from_leaves([r.leaf for r in batch]).root
    for i, record in enumerate(batch):
        assert verify(root, record.leaf, contribution_proof(batch, i))


def test_contribution_errors() -> None:
    with pytest.raises(ValidationError):
        contribution_root([])
    with pytest.raises(ValidationError):
        contribution_proof([TEXT], 1)
    with pytest.raises(NotFoundError):
        SimpleMerkleTree.from_leaves([TEXT.leaf]).proof(PC.leaf)
