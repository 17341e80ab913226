"""Text normalisation applied to every record before it is hashed.

Two uploads that differ only in encoding noise (a BOM, Windows line ends, decomposed
accents, trailing spaces, tabs) normalise to the same text and so to the same record hash.
:func:`normalize_text` is idempotent: ``normalize_text(normalize_text(s)) == normalize_text(s)``.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["normalize_text"]

# Everything the first pass rewrites: C0/C1 controls other than \t and \n (\r and NEL
# included), the BOM / zero-width no-break space, the Unicode line and paragraph
# separators, and lone surrogates (json.loads lets "\ud800" through; it cannot be UTF-8).
_SPECIAL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ufeff\u2028\u2029\ud800-\udfff]")
_NEWLINES = {"\r": "\n", "\x85": "\n", "\u2028": "\n", "\u2029": "\n"}
# vertical tab and form feed separate words: they become a space rather than vanish
_SPACES = {"\x0b": " ", "\x0c": " "}

# After the first pass the only whitespace left besides "\n" and " " is the tab and the
# Unicode spaces (every other str.isspace() character is a control or a line separator).
_OTHER_SPACE = re.compile("[\t\xa0\u1680\u2000-\u200a\u202f\u205f\u3000]")
_SPACE_RUN = re.compile(" {2,}")
_BLANK_LINES = re.compile(r"\n{3,}")


def _special(match: re.Match[str]) -> str:
    char = match.group()
    return _NEWLINES.get(char) or _SPACES.get(char, "")


def normalize_text(text: str) -> str:
    """Normalise ``text`` for hashing and storage.

    In order: strip a BOM (U+FEFF, anywhere); ``\\r\\n``, ``\\r``, NEL, U+2028 and U+2029
    become ``\\n``; other control characters except ``\\n`` and ``\\t`` are removed (vertical
    tab and form feed become a space), as are lone surrogates; Unicode NFC; every run of
    horizontal whitespace (tabs, spaces, no-break and other Unicode spaces) inside a line
    becomes one space; trailing spaces of each line are stripped; three or more newlines
    become two (one blank line); both ends are stripped.
    """
    if _SPECIAL.search(text) is not None:
        text = _SPECIAL.sub(_special, text.replace("\r\n", "\n"))
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    if "\t" in text or not text.isascii():
        text = _OTHER_SPACE.sub(" ", text)
    if "  " in text:
        text = _SPACE_RUN.sub(" ", text)
    if " \n" in text:
        text = text.replace(" \n", "\n")
    if "\n\n\n" in text:
        text = _BLANK_LINES.sub("\n\n", text)
    return text.strip()
