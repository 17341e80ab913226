import csv
import json
import unicodedata
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openledger.datanets.limits import IngestLimits
from openledger.datanets.normalize import normalize_text
from openledger.datanets.parsers import (
    RULES,
    SUPPORTED_EXTENSIONS,
    IngestError,
    parse_file,
    parse_files,
    split_text,
)
from openledger.datanets.records import Record
from openledger.errors import ValidationError

LIMITS = IngestLimits()


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", newline="")
    return path


def jsonl(*objects: object) -> str:
    return "".join(json.dumps(o) + "\n" for o in objects)


def fails(path: Path, rule: str, location: str | None, *words: str, **kw: object) -> IngestError:
    """Parse ``path`` expecting ``rule``; the message names the file, location and rule."""
    with pytest.raises(IngestError) as info:
        parse_file(path, limits=kw.pop("limits", LIMITS), **kw)  # type: ignore[arg-type]
    err = info.value
    message = str(err)
    assert err.rule == rule
    assert err.file == path.name and message.startswith(path.name)
    assert err.location == location
    if location:
        assert message.startswith(f"{path.name} {location}: ")
    assert RULES[rule] in message
    for word in words:
        assert word in message
    assert err.fix and "Fix: " in message
    assert isinstance(err, ValidationError) and err.http_status == 422
    assert err.to_dict()["rule"] == rule and err.to_dict()["file"] == path.name
    return err


# --- formats ---------------------------------------------------------------------------------


def test_txt_paragraphs_are_packed_into_records(tmp_path: Path) -> None:
    text = "First  paragraph\r\nstill first.\r\n\r\n\r\n  \r\nSecond\tone.\n\nThird."
    records = parse_file(write(tmp_path, "notes.txt", text), limits=LIMITS)
    assert [r.text for r in records] == ["First paragraph\nstill first.\n\nSecond one.\n\nThird."]
    assert records[0].kind == "text"
    assert records[0].source == "notes.txt"
    assert records[0].location == "paragraphs 1-3 (line 1)"


def test_txt_paragraphs_of_pack_chars_are_records_of_their_own(tmp_path: Path) -> None:
    paras = [f"Paragraph {i} is long enough to stand alone: " + "word " * 40 for i in range(3)]
    records = parse_file(write(tmp_path, "p.txt", "\n\n".join(paras)), limits=IngestLimits())
    assert [r.location for r in records] == [
        "paragraph 1 (line 1)",
        "paragraph 2 (line 3)",
        "paragraph 3 (line 5)",
    ]


def test_txt_packing_respects_chunk_chars(tmp_path: Path) -> None:
    paras = [f"Paragraph {i} " + "word " * 30 for i in range(40)]
    path = write(tmp_path, "a.txt", "\n\n".join(paras))
    limits = IngestLimits(chunk_chars=500, pack_chars=300)
    records = parse_file(path, limits=limits)
    assert all(r.char_len <= 500 for r in records)
    assert len(records) > 1
    # short paragraphs are joined only until the record holds pack_chars characters
    for record, following in zip(records, records[1:], strict=False):
        first_next = len(following.text.split("\n\n")[0])
        assert record.char_len >= 300 or record.char_len + 2 + first_next > 500
    # nothing lost, order kept, paragraphs intact
    assert "\n\n".join(r.text for r in records) == normalize_text("\n\n".join(paras))
    assert records[0].location == "paragraphs 1-2 (line 1)"
    assert records[1].location == "paragraphs 3-4 (line 5)"


def test_txt_long_paragraph_is_split_at_sentence_ends(tmp_path: Path) -> None:
    sentence = "This sentence has exactly eight words in it. "
    path = write(tmp_path, "long.txt", "Intro.\n\n" + sentence * 60 + "\n\nOutro.")
    records = parse_file(path, limits=IngestLimits(chunk_chars=200))
    assert records[0].text == "Intro." and records[0].location == "paragraph 1 (line 1)"
    middle = records[1:-1]
    assert all(r.char_len <= 200 and r.text.endswith("in it.") for r in middle)
    assert middle[0].location.startswith("paragraph 2, part 1 of ")
    assert middle[0].location.endswith("(line 3)")
    assert " ".join(r.text for r in middle) == normalize_text(sentence * 60)
    assert records[-1].text == "Outro." and records[-1].location == "paragraph 3 (line 5)"


def test_split_text_falls_back_to_whitespace_then_hard() -> None:
    words = "lorem ipsum dolor sit amet " * 20
    pieces = split_text(normalize_text(words), 50)
    assert all(len(p) <= 50 for p in pieces) and " ".join(pieces) == normalize_text(words)
    assert all(not p.startswith(" ") and not p.endswith(" ") for p in pieces)
    hard = split_text("x" * 125, 50)
    assert hard == ["x" * 50, "x" * 50, "x" * 25]
    # a hard cut never lands just before a combining mark (q + dot above has no NFC form)
    marks = "q\u0307" * 40
    pieces = split_text(marks, 51)
    assert all(unicodedata.combining(p[0]) == 0 for p in pieces) and "".join(pieces) == marks
    assert split_text("", 10) == [] and split_text("short", 10) == ["short"]


@settings(
    max_examples=60, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    paras=st.lists(
        st.text(alphabet=st.sampled_from("ab .!?\n\t\u00e9"), min_size=0, max_size=400),
        min_size=1,
        max_size=12,
    ),
    chunk=st.integers(20, 300),
)
def test_chunking_bounds_and_no_content_lost(tmp_path: Path, paras: list[str], chunk: int) -> None:
    text = "\n\n".join(paras)
    if not normalize_text(text):
        return
    path = write(tmp_path, "prop.txt", text)
    records = parse_file(path, limits=IngestLimits(chunk_chars=chunk))
    assert all(0 < r.char_len <= chunk for r in records)
    assert all(r.text == normalize_text(r.text) for r in records)
    assert "".join(("".join(r.text.split())) for r in records) == "".join(text.split())


def test_md_heading_stays_with_the_next_paragraph(tmp_path: Path) -> None:
    md = (
        "# Rivers\n\nThe Amazon is long.\n\n## Lakes\n### Deep ones\n\nBaikal is deep.\n\n"
        "Setext title\n============\n\nUnder it.\n\n# Trailing heading"
    )
    path = write(tmp_path, "doc.md", md)
    records = parse_file(path, limits=IngestLimits(chunk_chars=40))
    assert [r.text for r in records] == [
        "# Rivers\n\nThe Amazon is long.",
        "## Lakes\n### Deep ones\n\nBaikal is deep.",
        "Setext title\n============\n\nUnder it.",
        "# Trailing heading",
    ]
    assert [r.location for r in records] == [
        "paragraphs 1-2 (line 1)",
        "paragraphs 3-4 (line 5)",
        "paragraphs 5-6 (line 10)",
        "paragraph 7 (line 15)",
    ]
    # in a .txt file the same heading line is just a paragraph
    txt = parse_file(write(tmp_path, "doc.txt", md), limits=IngestLimits(chunk_chars=20))
    assert txt[0].text == "# Rivers"


def test_md_fenced_code_block_is_kept_whole(tmp_path: Path) -> None:
    md = "Intro.\n\n```python\ndef f():\n\n    return 1\n```\n\nAfter."
    records = parse_file(write(tmp_path, "code.md", md), limits=IngestLimits(chunk_chars=35))
    assert records[1].text == "```python\ndef f():\n\nreturn 1\n```"
    assert records[1].location == "paragraphs 2-3 (line 3)"


def test_jsonl_all_three_kinds(tmp_path: Path) -> None:
    content = (
        jsonl(
            {"text": "Plain  text\r\nhere.", "id": 7, "meta": {"x": 1}},
            {"prompt": " What is 2+2? ", "completion": "4\t", "source": "ignored"},
        )
        + "\n   \n"
        + jsonl(
            {
                "messages": [
                    {"role": "system", "content": "Be  brief."},
                    {"role": "user", "content": "Cafe\u0301?", "name": "bob"},
                    {"role": "assistant", "content": "Yes.  "},
                ]
            }
        )
    )
    records = parse_file(write(tmp_path, "mix.jsonl", "\ufeff" + content), limits=LIMITS)
    text, pc, chat = records
    assert text == Record(
        kind="text", text="Plain text\nhere.", source="mix.jsonl", location="line 1"
    )
    assert (pc.kind, pc.prompt, pc.completion, pc.location) == (
        "prompt_completion",
        "What is 2+2?",
        "4",
        "line 2",
    )
    assert chat.kind == "chat" and chat.location == "line 5"
    assert chat.messages == (("system", "Be brief."), ("user", "Café?"), ("assistant", "Yes."))
    assert chat.canonical()["messages"][1] == {"role": "user", "content": "Café?"}


def test_jsonl_crlf_and_unicode_line_separators_inside_strings(tmp_path: Path) -> None:
    raw = '{"text": "a\u2028b"}\r\n{"text": "c"}\r\n'
    records = parse_file(write(tmp_path, "crlf.jsonl", raw), limits=LIMITS)
    assert [(r.text, r.location) for r in records] == [("a\nb", "line 1"), ("c", "line 2")]


def test_csv_default_and_named_column(tmp_path: Path) -> None:
    path = tmp_path / "table.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", " text ", "body"])
        writer.writerow(["1", "first  text", "body one"])
        writer.writerow(["", "", ""])  # an all-empty row is skipped
        writer.writerow(["2", "multi\nline, quoted", "body two"])
    records = parse_file(path, limits=LIMITS)
    assert [(r.text, r.location) for r in records] == [
        ("first text", "row 1 (line 2)"),
        ("multi\nline, quoted", "row 3 (line 4)"),
    ]
    body = parse_file(path, limits=LIMITS, column="body")
    assert [r.text for r in body] == ["body one", "body two"]


def test_csv_prompt_completion_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "pc.csv", "\ufeffprompt,completion\nHi?,Hello.\n")
    [record] = parse_file(path, limits=LIMITS)
    assert (record.kind, record.prompt, record.completion) == ("prompt_completion", "Hi?", "Hello.")


def test_parquet_text_prompt_completion_and_chat(tmp_path: Path) -> None:
    text_path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"id": [1, 2], "body": ["one  a", "two\tb"]}), text_path)
    assert [(r.text, r.location) for r in parse_file(text_path, limits=LIMITS, column="body")] == [
        ("one a", "row 1"),
        ("two b", "row 2"),
    ]
    pc_path = tmp_path / "pc.parquet"
    pq.write_table(pa.table({"prompt": ["p?"], "completion": ["c!"]}), pc_path)
    [pc] = parse_file(pc_path, limits=LIMITS)
    assert (pc.kind, pc.prompt, pc.completion) == ("prompt_completion", "p?", "c!")
    chat_path = tmp_path / "chat.parquet"
    messages = [
        [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello  there"}],
        [{"role": "system", "content": "S"}, {"role": "assistant", "content": "A"}],
    ]
    pq.write_table(pa.table({"messages": messages, "n": [1, 2]}), chat_path)
    chats = parse_file(chat_path, limits=LIMITS)
    assert [c.messages for c in chats] == [
        (("user", "Hi"), ("assistant", "Hello there")),
        (("system", "S"), ("assistant", "A")),
    ]
    big = tmp_path / "big.parquet"
    pq.write_table(pa.table({"text": pa.array(["x", "y"], type=pa.large_string())}), big)
    assert [r.text for r in parse_file(big, limits=LIMITS)] == ["x", "y"]


def test_display_name_and_same_hash_across_formats(tmp_path: Path) -> None:
    a = parse_file(write(tmp_path, "a.txt", "Same text."), limits=LIMITS, display_name="up/a.txt")
    b = parse_file(write(tmp_path, "b.jsonl", jsonl({"text": "Same  text."})), limits=LIMITS)
    assert a[0].source == "up/a.txt"
    assert a[0].sha256 == b[0].sha256


@settings(
    max_examples=100, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.text(alphabet=st.characters(codec="utf-8"), min_size=1))
def test_jsonl_text_round_trips_to_its_normal_form(tmp_path: Path, text: str) -> None:
    if not normalize_text(text) or len(normalize_text(text)) > LIMITS.max_record_chars:
        return
    path = write(tmp_path, "p.jsonl", json.dumps({"text": text}) + "\n")
    [record] = parse_file(path, limits=LIMITS)
    assert record.text == normalize_text(text)
    assert Record.from_canonical(json.loads(record.canonical_json())).sha256 == record.sha256


# --- rules ---------------------------------------------------------------------------------------


def test_not_utf8_names_line_and_byte_offset(tmp_path: Path) -> None:
    path = write(tmp_path, "latin.txt", b"fine\nalso fine\ncaf\xe9 au lait\n")
    fails(path, "not_utf8", "line 3", "byte 0xE9", "byte offset 18", "byte 4 of the line")
    path = write(tmp_path, "latin.jsonl", b'{"text": "ok"}\n{"text": "\xff"}\n')
    fails(path, "not_utf8", "line 2", "byte offset 25")
    fails(write(tmp_path, "latin.csv", b"text\n\x80\n"), "not_utf8", "line 2")


def test_malformed_json_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "notes.jsonl", jsonl({"text": "ok"}) + '\n{"text": "a" "b"}\n')
    err = fails(path, "malformed_json", "line 3", "Expecting ',' delimiter at column 14")
    assert str(err).startswith("notes.jsonl line 3: malformed JSON (Expecting ',' delimiter")
    fails(write(tmp_path, "arr.jsonl", '["text"]\n'), "malformed_json", "line 1", "got a list")


@pytest.mark.parametrize(
    ("obj", "location", "words"),
    [
        ({"title": "x", "body": "y"}, "line 2", ['"title", "body"', '"text"', '"messages"']),
        ({"prompt": "p"}, "line 2", ['without "completion"']),
        ({"messages": [{"role": "user", "content": "q"}]}, "line 2", ["assistant message"]),
        ({"messages": [{"role": "assistant"}]}, "line 2, message 1", ['no "content"']),
    ],
)
def test_missing_field(tmp_path: Path, obj: dict, location: str, words: list[str]) -> None:
    path = write(tmp_path, "m.jsonl", jsonl({"text": "ok"}, obj))
    fails(path, "missing_field", location, *words)


def test_missing_field_in_csv_and_parquet(tmp_path: Path) -> None:
    fails(write(tmp_path, "short.csv", "id,text\n1,a\n2\n"), "missing_field", "row 2 (line 3)")
    path = tmp_path / "null.parquet"
    pq.write_table(pa.table({"text": ["a", None]}), path)
    fails(path, "missing_field", "row 2", '"text" is null')


@pytest.mark.parametrize(
    ("obj", "location", "words"),
    [
        ({"text": 42}, "line 1", ['"text" must be a string, got a number']),
        ({"prompt": "p", "completion": ["c"]}, "line 1", ['"completion" must be a string']),
        ({"messages": "hi"}, "line 1", ["non-empty list"]),
        ({"messages": []}, "line 1", ["an empty list"]),
        ({"messages": [{"role": "bot", "content": "x"}]}, "line 1, message 1", ["'bot'"]),
        ({"messages": [{"role": "user", "content": 1}]}, "line 1, message 1", ['"content"']),
        ({"messages": ["hi"]}, "line 1, message 1", ["must be an object"]),
    ],
)
def test_bad_field(tmp_path: Path, obj: dict, location: str, words: list[str]) -> None:
    fails(write(tmp_path, "b.jsonl", jsonl(obj)), "bad_field", location, *words)


def test_empty_record(tmp_path: Path) -> None:
    path = write(tmp_path, "e.jsonl", jsonl({"text": "ok"}, {"text": " \t\x00\u200a\n "}))
    fails(path, "empty_record", "line 2", "empty after normalisation")
    chat = {"messages": [{"role": "user", "content": "  "}, {"role": "assistant", "content": "a"}]}
    fails(write(tmp_path, "c.jsonl", jsonl(chat)), "empty_record", "line 1", "message 1 (user)")
    pc = {"prompt": "p", "completion": "\r\n"}
    fails(write(tmp_path, "pc.jsonl", jsonl(pc)), "empty_record", "line 1", "completion")
    fails(write(tmp_path, "e.csv", "id,text\n1,a\n2,  \n"), "empty_record", "row 2 (line 3)")


def test_record_too_long_names_length_and_cap(tmp_path: Path) -> None:
    limits = IngestLimits(max_record_chars=100, chunk_chars=50)
    path = write(tmp_path, "long.jsonl", jsonl({"text": "ok"}, {"text": "y" * 150}))
    fails(path, "record_too_long", "line 2", "150 characters", "the cap is 100", limits=limits)
    pc = {"prompt": "p" * 60, "completion": "c" * 60}  # counted as prompt + "\n" + completion
    path = write(tmp_path, "pc.jsonl", jsonl(pc))
    fails(path, "record_too_long", "line 1", "121 characters", limits=limits)
    path = write(tmp_path, "long.csv", "text\n" + "z" * 101 + "\n")
    fails(path, "record_too_long", "row 1 (line 2)", "101 characters", limits=limits)


def test_file_too_large_is_checked_before_reading(tmp_path: Path) -> None:
    # not UTF-8 either, but the size check comes first, from the file's size alone
    path = write(tmp_path, "big.txt", b"\xff" * 2_001)
    limits = IngestLimits(max_file_bytes=2_000)
    fails(path, "file_too_large", None, "2,001 bytes", "cap is 2,000 bytes", limits=limits)
    assert parse_file(write(tmp_path, "ok.txt", "a" * 2_000), limits=limits)[0].char_len == 2_000


def test_unsupported_format_lists_the_supported_ones(tmp_path: Path) -> None:
    err = fails(write(tmp_path, "notes.docx", b"PK"), "unsupported_format", None, '".docx"')
    assert all(ext in str(err) for ext in SUPPORTED_EXTENSIONS)
    fails(write(tmp_path, "README", "hi"), "unsupported_format", None, "no extension")


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("empty.txt", ""),
        ("blank.md", " \n\t\n\x00\n\ufeff"),
        ("blank.jsonl", "\n  \n\n"),
        ("header.csv", "id,text\n"),
        ("nothing.csv", ""),
    ],
)
def test_empty_file(tmp_path: Path, name: str, content: str) -> None:
    fails(write(tmp_path, name, content), "empty_file", None, "no records")


def test_empty_parquet(tmp_path: Path) -> None:
    path = tmp_path / "empty.parquet"
    pq.write_table(pa.table({"text": pa.array([], type=pa.string())}), path)
    fails(path, "empty_file", None)


def test_bad_column(tmp_path: Path) -> None:
    path = write(tmp_path, "t.csv", "id,body,title\n1,a,b\n")
    fails(path, "bad_column", None, 'no column "txt"', '"id", "body", "title"', column="txt")
    fails(path, "bad_column", None, "the columns are", '"body"')
    pq_path = tmp_path / "nums.parquet"
    pq.write_table(pa.table({"text": [1, 2]}), pq_path)
    fails(pq_path, "bad_column", None, 'column "text" has type int64')


def test_malformed_csv_names_the_row_start(tmp_path: Path) -> None:
    path = write(tmp_path, "q.csv", 'text\nok\n"never closed\nmore\n')
    fails(path, "malformed_csv", "line 3", "unexpected end of data", "runs to line 4")
    fails(write(tmp_path, "q2.csv", 'text\n"a"b\n'), "malformed_csv", "line 2")


def test_malformed_parquet_and_unreadable(tmp_path: Path) -> None:
    fails(write(tmp_path, "junk.parquet", b"not parquet at all"), "malformed_parquet", None)
    fails(tmp_path / "missing.txt", "unreadable_file", None)
    (tmp_path / "dir.txt").mkdir()
    fails(tmp_path / "dir.txt", "unreadable_file", None, "not a regular file")


def test_duplicate_in_contribution_names_both_locations(tmp_path: Path) -> None:
    a = write(tmp_path, "a.jsonl", jsonl({"text": "one"}, {"text": "Hello  world."}))
    b = write(tmp_path, "b.txt", "Hello world.\r\n")
    with pytest.raises(IngestError) as info:
        parse_files([a, b], limits=LIMITS)
    err = info.value
    assert (err.rule, err.file, err.location) == (
        "duplicate_in_contribution",
        "b.txt",
        "paragraph 1 (line 1)",
    )
    assert str(err).startswith("b.txt paragraph 1 (line 1): duplicate record in this contribution")
    assert "a.jsonl line 2" in str(err)
    # and within one file
    c = write(tmp_path, "c.jsonl", jsonl({"text": "x"}, {"text": "y"}, {"text": " x "}))
    with pytest.raises(IngestError, match=r"c.jsonl line 3: .* c.jsonl line 1") as info:
        parse_files([c], limits=LIMITS)
    assert info.value.rule == "duplicate_in_contribution"


def test_parse_files_keeps_order_and_needs_a_file(tmp_path: Path) -> None:
    a = write(tmp_path, "a.txt", "A.")
    b = write(tmp_path, "b.jsonl", jsonl({"text": "B1"}, {"text": "B2"}))
    assert [(r.source, r.text) for r in parse_files([a, b], limits=LIMITS)] == [
        ("a.txt", "A."),
        ("b.jsonl", "B1"),
        ("b.jsonl", "B2"),
    ]
    with pytest.raises(ValidationError):
        parse_files([], limits=LIMITS)


def test_every_rule_has_words() -> None:
    assert {
        "not_utf8",
        "malformed_json",
        "missing_field",
        "empty_record",
        "record_too_long",
        "file_too_large",
        "unsupported_format",
        "duplicate_in_contribution",
        "bad_column",
    } <= set(RULES)


def test_limits_are_checked() -> None:
    assert IngestLimits().max_file_bytes == 10_000_000
    with pytest.raises(ValidationError):
        IngestLimits(max_record_chars=0)
    with pytest.raises(ValidationError):
        IngestLimits(near_dup_threshold=1.5)
    with pytest.raises(ValidationError):
        IngestLimits(chunk_chars=30_000)
