"""Training examples from a datanet snapshot: tokenisation, loss masks, eval split, lineage.

Every example keeps the ids of the row it came from (snapshot, record, sha256,
contribution, contributor) so a trained adapter can be traced back to the data, and
attribution can credit it.

Formats (the row's ``kind``):

- ``text``: ``bos + text + eos``, loss on every token after ``bos`` (causal LM).
- ``prompt_completion``: ``bos + prompt + completion + eos``, loss only on the completion
  tokens and the ``eos``.
- ``chat``: the messages rendered with the tokenizer's chat template, or with
  :data:`DEFAULT_CHAT_TEMPLATE` when it has none; loss only on each assistant message's
  content and its end-of-turn marker (``eos`` in the default template).

Loss masks for chat are found by rendering the conversation prefix by prefix (as text):
for an assistant message ``i`` the text of ``messages[:i]`` with the generation prompt is
a prefix of the text of ``messages[:i + 1]``, and the difference is the assistant turn.
The conversation is then tokenised piece by piece (prompt pieces and assistant pieces
separately, concatenated), so the mask is exact at token level whatever the BPE merges,
and each prompt piece is tokenised exactly as the server tokenises a prompt that ends
with the generation prompt. Templates that are not prefix-stable are refused.

Labels use -100 where there is no loss (HF convention). ``labels[0]`` is always -100:
the first token is never predicted.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from openledger.datanets.normalize import normalize_text
from openledger.errors import ValidationError

log = logging.getLogger(__name__)

IGNORE = -100
KINDS = ("text", "prompt_completion", "chat")
ROLES = ("system", "user", "assistant")

#: Used for chat rows when the tokenizer has no chat template of its own. Each message is
#: ``<|role|>\n{content}{eos}\n``; the generation prompt is ``<|assistant|>\n``. The loss
#: covers an assistant message's content and its ``eos``.
DEFAULT_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>\n{{ message['content'] }}{{ eos_token }}\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


@dataclass(frozen=True)
class Example:
    """One training example and the snapshot row it came from."""

    example_id: str
    snapshot: str
    record: int
    sha256: str
    contribution: int
    contributor: str
    input_ids: tuple[int, ...]
    labels: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def loss_tokens(self) -> int:
        """How many tokens this example is trained on."""
        return sum(1 for t in self.labels if t != IGNORE)


def example_id(snapshot: str, record: int) -> str:
    return f"{snapshot}#{record}"


# --------------------------------------------------------------------------- tokenising


def _encode(tokenizer: Any, text: str) -> list[int]:
    if not text:
        return []
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _special(tokenizer: Any, name: str) -> list[int]:
    tid = getattr(tokenizer, f"{name}_token_id", None)
    return [] if tid is None else [int(tid)]


def render_chat(
    tokenizer: Any,
    messages: Sequence[Mapping[str, str]],
    *,
    generation_prompt: bool = True,
    bos: bool = True,
) -> str:
    """``messages`` as text in the tokenizer's chat template, or in
    :data:`DEFAULT_CHAT_TEMPLATE` when it has none: what training, serving and attribution
    all render a chat with. With ``generation_prompt``, the header of the assistant's turn
    follows (the text a model continues). With ``bos=False``, without the template's leading
    bos token (attribution puts bos before any prompt itself)."""
    template = None if getattr(tokenizer, "chat_template", None) else DEFAULT_CHAT_TEMPLATE
    text: str = tokenizer.apply_chat_template(
        list(messages),
        chat_template=template,
        tokenize=False,
        add_generation_prompt=generation_prompt,
    )
    lead = "" if bos else tokenizer.bos_token or ""
    return text[len(lead) :] if lead and text.startswith(lead) else text


def _chat_pieces(
    tokenizer: Any, messages: list[dict[str, str]], record: int
) -> list[tuple[str, bool]]:
    """Split the rendered conversation into (text, has_loss) pieces."""
    full = render_chat(tokenizer, messages, generation_prompt=False)
    pieces: list[tuple[str, bool]] = []
    cursor = 0
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        upto = render_chat(tokenizer, messages[: i + 1], generation_prompt=False)
        if i:
            prefix = render_chat(tokenizer, messages[:i])
        else:  # nothing before it: the turn starts after the template's own preamble
            try:
                prefix = render_chat(tokenizer, [])
            except Exception:  # some templates refuse an empty conversation
                prefix = ""
            if not upto.startswith(prefix):
                prefix = ""
        if not (upto.startswith(prefix) and full.startswith(upto) and len(prefix) >= cursor):
            raise ValidationError(
                f"The tokenizer's chat template is not prefix-stable (record {record}): "
                "rendering the conversation up to an assistant message does not give a "
                "prefix of the whole conversation, so the assistant tokens cannot be masked.",
                field="chat_template",
                value=record,
                fix="use a template that renders earlier turns unchanged (most do), or "
                "remove tokenizer.chat_template to use the documented default.",
            )
        turn = upto[len(prefix) :]
        content = message["content"]
        if content and turn.startswith(content):
            start = 0
        else:  # after a role header the template wrote, or trimmed by the template
            start = turn.find(content.strip()) if content.strip() else -1
        if start < 0:
            start = len(turn) - len(turn.lstrip())
        end = len(turn.rstrip())
        if end <= start:  # an empty turn: train on what the template wrote for it
            start, end = 0, len(turn)
        pieces.append((full[cursor : len(prefix) + start], False))
        pieces.append((turn[start:end], True))
        cursor = len(prefix) + end
    pieces.append((full[cursor:], False))
    return pieces


def _tokenize_pieces(tokenizer: Any, pieces: Iterable[tuple[str, bool]]) -> tuple[list, list]:
    ids: list[int] = []
    labels: list[int] = []
    for text, has_loss in pieces:
        toks = _encode(tokenizer, text)
        ids.extend(toks)
        labels.extend(toks if has_loss else [IGNORE] * len(toks))
    return ids, labels


def _check_messages(messages: Any, record: int) -> list[dict[str, str]] | str:
    if not messages:
        return "no messages"
    out = []
    for m in messages:
        role, content = (m.get("role"), m.get("content")) if isinstance(m, Mapping) else m
        if role not in ROLES:
            raise ValidationError(
                f"Record {record} has a chat message with role {role!r}.",
                field="messages.role",
                value=role,
                fix=f"use one of {', '.join(ROLES)}.",
            )
        out.append({"role": role, "content": content or ""})
    if not any(m["role"] == "assistant" for m in out):
        return "no assistant message to train on"
    return out


def encode_pair(
    tokenizer: Any, prompt: str, completion: str, *, eos: bool = True
) -> tuple[list[int], list[int]]:
    """(input_ids, labels) of a prompt and its completion: ``bos + prompt + completion +
    eos``, the loss on the completion and the ``eos``.

    The one way a prompt/completion pair becomes tokens — for a training record and for an
    attribution query alike. Both texts are normalised as ingest normalises records
    (:func:`~openledger.datanets.normalize.normalize_text`: line ends, spaces, both ends
    stripped), so a completion written ``" This is …"`` or with CRLF line ends gives the
    tokens the record was trained on; normalising a stored record again changes nothing.
    """
    bos = _special(tokenizer, "bos")
    head = bos + _encode(tokenizer, normalize_text(prompt))
    tail = _encode(tokenizer, normalize_text(completion))
    if eos:
        tail += _special(tokenizer, "eos")
    return head + tail, [IGNORE] * len(head) + tail


def tokenize_row(row: Mapping[str, Any], tokenizer: Any) -> tuple[list[int], list[int]] | str:
    """(input_ids, labels) for one snapshot row, untruncated; or why it has none."""
    kind = row.get("kind")
    record = row.get("record")
    bos, eos = _special(tokenizer, "bos"), _special(tokenizer, "eos")
    if kind == "text":
        if row.get("text") is None:
            return "text row without text"
        body = _encode(tokenizer, row["text"]) + eos
        return bos + body, [IGNORE] * len(bos) + body
    if kind == "prompt_completion":
        if row.get("prompt") is None or row.get("completion") is None:
            return "prompt_completion row without prompt or completion"
        return encode_pair(tokenizer, row["prompt"], row["completion"])
    if kind == "chat":
        messages = _check_messages(row.get("messages"), record)
        if isinstance(messages, str):
            return messages
        return _tokenize_pieces(tokenizer, _chat_pieces(tokenizer, messages, record))
    raise ValidationError(
        f"Record {record} has kind {kind!r}.",
        field="kind",
        value=kind,
        fix=f"snapshot rows must be one of {', '.join(KINDS)}.",
    )


def build_examples(
    rows: Iterable[Mapping[str, Any]],
    tokenizer: Any,
    *,
    max_seq_len: int,
    snapshot: str,
    skipped: list[dict[str, Any]] | None = None,
) -> list[Example]:
    """One :class:`Example` per usable row, truncated to ``max_seq_len`` tokens.

    Rows with nothing to train on (an empty chat, or every loss token cut off by the
    truncation) are left out; when ``skipped`` is given, each is appended to it as
    ``{"record", "sha256", "reason"}``.
    """
    if max_seq_len < 2:
        raise ValidationError(
            f"max_seq_len {max_seq_len} is too short to train on.",
            field="max_seq_len",
            value=max_seq_len,
            fix="use at least 8 tokens (e.g. 256).",
        )
    out: list[Example] = []
    for row in rows:
        record = int(row["record"])
        tokenized = tokenize_row(row, tokenizer)
        reason = tokenized if isinstance(tokenized, str) else None
        if reason is None:
            ids, labels = tokenized
            ids, labels = ids[:max_seq_len], labels[:max_seq_len]
            if labels:
                labels[0] = IGNORE
            if all(t == IGNORE for t in labels):
                reason = (
                    f"no loss tokens within the first max_seq_len={max_seq_len} tokens "
                    f"(the example has {len(tokenized[0])})"
                )
        if reason is not None:
            log.info("snapshot %s record %s skipped: %s", snapshot, record, reason)
            if skipped is not None:
                skipped.append({"record": record, "sha256": row.get("sha256"), "reason": reason})
            continue
        out.append(
            Example(
                example_id=example_id(snapshot, record),
                snapshot=snapshot,
                record=record,
                sha256=str(row["sha256"]),
                contribution=int(row["contribution"]),
                contributor=str(row["contributor"]),
                input_ids=tuple(ids),
                labels=tuple(labels),
            )
        )
    return out


# --------------------------------------------------------------------------- split, lineage


def _unit(sha256: str, seed: int) -> float:
    digest = hashlib.sha256(f"openledger-eval-split:{seed}:{sha256}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_eval(
    examples: Sequence[Example], eval_split: float, seed: int = 0
) -> tuple[list[Example], list[Example]]:
    """(train, eval): an example is held out when a hash of (seed, its record's sha256)
    falls below ``eval_split``. The choice depends on the record alone, so when a snapshot
    grows, records keep their side (no eval record ever leaks into a later training set).

    With at least two examples and ``eval_split > 0`` neither side is left empty: if the
    hash puts every example on one side, the one closest to the threshold moves
    (deterministically). ``eval_split == 0`` holds nothing out.
    """
    if not 0 <= eval_split < 1:
        raise ValidationError(
            f"eval_split {eval_split} is not at least 0 and below 1.",
            field="eval_split",
            value=eval_split,
            fix="hold out a fraction such as 0.1, or 0 to train on every record.",
        )
    if eval_split == 0:
        return list(examples), []
    keyed = [(_unit(e.sha256, seed), e) for e in examples]
    held = {id(e) for u, e in keyed if u < eval_split}
    if len(keyed) >= 2 and not held:
        held = {id(min(keyed, key=lambda p: (p[0], p[1].record))[1])}
    elif len(keyed) >= 2 and len(held) == len(keyed):
        held.discard(id(max(keyed, key=lambda p: (p[0], p[1].record))[1]))
    train = [e for e in examples if id(e) not in held]
    evals = [e for e in examples if id(e) in held]
    return train, evals


def lineage(examples: Iterable[Example]) -> list[dict[str, Any]]:
    """The ids that tie each example to the snapshot row and contribution it came from."""
    return [
        {
            "example_id": e.example_id,
            "snapshot": e.snapshot,
            "record": e.record,
            "sha256": e.sha256,
            "contribution": e.contribution,
            "contributor": e.contributor,
        }
        for e in examples
    ]


# --------------------------------------------------------------------------- batching


def collate(batch: Sequence[Example], pad_id: int) -> dict[str, Any]:
    """Right-pad a batch to its longest example: ``input_ids``, ``attention_mask`` and
    ``labels`` (-100 on padding) as int64 tensors."""
    import torch

    width = max(len(e.input_ids) for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, e in enumerate(batch):
        n = len(e.input_ids)
        ids[i, :n] = torch.tensor(e.input_ids, dtype=torch.long)
        labels[i, :n] = torch.tensor(e.labels, dtype=torch.long)
        mask[i, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}
