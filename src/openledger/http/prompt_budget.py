"""An over-long prompt is refused before any of it is tokenised.

No token of a vocabulary covers more characters of text than its longest entry (a
byte-level BPE entry is one character per byte, and a character is at least one byte), so a
text of more than ``longest × context`` characters cannot fit the context whatever it says:
it is refused from its length alone, an O(1) check, instead of after tokenising all of it
(a 10 MB prompt took 12.7 s of CPU to tokenise). A prompt under that bound is tokenised and
checked exactly (``ServingService.check_fits``), so nothing that fits is ever refused here.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

from openledger.errors import ValidationError

_LONGEST: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def longest_token_chars(tokenizer: Any) -> int:
    """The most characters one token of ``tokenizer`` can stand for (cached per tokenizer)."""
    with _LOCK:
        found = _LONGEST.get(tokenizer)
    if found is None:
        found = max((len(t) for t in tokenizer.get_vocab()), default=1)
        found = max(1, found)
        with _LOCK:
            _LONGEST[tokenizer] = found
    return found


def max_prompt_chars(tokenizer: Any, max_ctx: int) -> int:
    """More characters than this cannot fit ``max_ctx`` tokens."""
    return longest_token_chars(tokenizer) * max_ctx


def check_prompt_chars(tokenizer: Any, max_ctx: int, chars: int, field: str) -> None:
    """ValidationError (400, ``context_length_exceeded`` under /v1) naming ``field`` when a
    prompt of ``chars`` characters cannot fit the context, before it is tokenised."""
    limit = max_prompt_chars(tokenizer, max_ctx)
    if chars > limit:
        raise ValidationError(
            f"this model's maximum context length is {max_ctx} tokens, and a prompt of "
            f"{chars:,} characters cannot fit it (at most {limit:,} characters could: no token "
            f"covers more than {limit // max_ctx}).",
            field=field,
            value=chars,
            fix=f"send a prompt of well under {limit:,} characters (and check its tokens "
            "against the context).",
        )
