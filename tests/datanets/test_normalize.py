import unicodedata

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from openledger.datanets.normalize import normalize_text

# Everything that normalisation touches, mixed with ordinary letters.
tricky = st.sampled_from(
    list("\ufeff\r\n\t \x00\x01\x0b\x0c\x1f\x7f\x85\x9f\xa0\u1680\u2000\u2001\u200a\u202f")
    + list("\u205f\u3000\u2028\u2029\ud800\udfff\u0301\u0308\u0327\u1100\u1161\u11a8\u200b")
    + list("eaAé#.-=`")
)
texts = st.one_of(
    st.text(),
    st.text(alphabet=st.characters(codec=None)),
    st.text(alphabet=tricky, max_size=60),
    st.lists(st.one_of(tricky, st.characters()), max_size=60).map("".join),
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("\ufeffhello", "hello"),  # BOM
        ("a\ufeffb", "ab"),
        ("e\u0301te\u0301", "été"),  # NFC
        ("one\r\ntwo\rthree", "one\ntwo\nthree"),
        ("a\u2028b\u2029c\x85d", "a\nb\nc\nd"),
        ("a\x00b\x07c\x1bd\x7fe\x9ff", "abcdef"),  # controls removed
        ("a\x0bb\x0cc", "a b c"),  # vertical tab / form feed separate words
        ("a\tb  \t c", "a b c"),
        ("a\u00a0\u00a0b\u3000c\u2009d", "a b c d"),
        ("line one   \nline two\t\n", "line one\nline two"),
        ("  indented\n    more", "indented\n more"),  # runs inside a line become one space
        ("a\n\n\n\nb\n \n\t\n\nc", "a\n\nb\n\nc"),
        ("\n\n  padded  \n\n", "padded"),
        ("lone \ud800 surrogate", "lone surrogate"),
        ("e\x00\u0301", "é"),  # a removed control does not block composition
        ("", ""),
        (" \t\r\n\x00 ", ""),
    ],
)
def test_examples(raw: str, expected: str) -> None:
    assert normalize_text(raw) == expected


@settings(max_examples=500, derandomize=True)
@given(texts)
@example("\u2000\u0301")
@example("e\n \u0301")
@example("\u1100\x01\u1161")
def test_idempotent(text: str) -> None:
    once = normalize_text(text)
    assert normalize_text(once) == once


@settings(max_examples=300, derandomize=True)
@given(texts)
def test_output_invariants(text: str) -> None:
    out = normalize_text(text)
    assert unicodedata.is_normalized("NFC", out)
    assert out == out.strip()
    assert "\r" not in out and "\t" not in out and "\ufeff" not in out
    assert "  " not in out and " \n" not in out and "\n\n\n" not in out
    assert all(c in "\n " or not c.isspace() for c in out)
    assert all(c == "\n" or unicodedata.category(c) not in ("Cc", "Cs") for c in out)
    out.encode("utf-8")  # always encodable
