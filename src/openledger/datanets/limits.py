"""Ingest caps for one contribution; the defaults are the protocol's upload-cap defaults."""

from __future__ import annotations

from dataclasses import dataclass, fields

from openledger.errors import ValidationError

__all__ = ["IngestLimits"]


@dataclass(frozen=True)
class IngestLimits:
    max_file_bytes: int = 10_000_000  # per file, checked from its size before reading
    max_files_per_day: int = 20  # per account (enforced by the datanet service)
    max_record_chars: int = 20_000  # per record, on Record.content_text
    chunk_chars: int = 2_000  # .txt/.md paragraphs longer than this are split
    # .txt/.md paragraphs are records of their own; shorter ones than this are joined with the
    # next until the record has this many characters (so a one-line paragraph is not a record)
    pack_chars: int = 120
    near_dup_threshold: float = 0.8  # MinHash Jaccard estimate at which a record is a near-dup
    # exact Jaccard (character 5-grams) at which a record is a reworded copy of another
    # contributor's record: two words changed in a 100-200 character note give 0.73-0.77;
    # different facts in one template mostly stay under 0.67
    copy_threshold: float = 0.7

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("near_dup_threshold", "copy_threshold"):
                ok = isinstance(value, int | float) and 0.0 < value <= 1.0
                rule = "a number in (0, 1]"
            else:
                ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
                rule = "a positive integer"
            if not ok:
                raise ValidationError(
                    f"Ingest limit {f.name}={value!r} is not {rule}.",
                    field=f.name,
                    value=value,
                    fix=f"set {f.name} to {rule}.",
                )
        if self.copy_threshold > self.near_dup_threshold:
            raise ValidationError(
                f"Ingest limit copy_threshold={self.copy_threshold} is over "
                f"near_dup_threshold={self.near_dup_threshold}.",
                field="copy_threshold",
                value=self.copy_threshold,
                fix="make copy_threshold at most near_dup_threshold (a reworded copy is less "
                "similar than a near duplicate).",
            )
        if self.chunk_chars > self.max_record_chars:
            raise ValidationError(
                f"Ingest limit chunk_chars={self.chunk_chars} is over "
                f"max_record_chars={self.max_record_chars}.",
                field="chunk_chars",
                value=self.chunk_chars,
                fix="make chunk_chars at most max_record_chars, so text chunks fit in a record.",
            )
