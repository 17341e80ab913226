"""Tables of the API: keys that let programs act for one account (with scopes)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from openledger.store.models import Base, utcnow


class ApiKeyRow(Base):
    """An API key bound to a named account. Only the sha256 of the secret is stored.

    ``scopes`` (comma-separated: ``inference``, ``read``, ``write``) says what it may do.
    ``key_id`` is the key's public prefix (``olk_`` and 8 more characters): it names the key
    in listings and finds its row; the hash decides whether a presented secret is right.
    """

    __tablename__ = "api_keys"
    __table_args__ = (UniqueConstraint("key_id"), Index(None, "account"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key_id: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64))
    account: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(42))
    label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    scopes: Mapped[str] = mapped_column(String(200), default="inference,read")

    def __repr__(self) -> str:
        return f"ApiKeyRow(key_id={self.key_id!r}, account={self.account!r})"
