"""Sign-In with Ethereum (EIP-4361): the message format, its parser and the checks.

Pure functions plus the nonce book (in the node's database): the node issues a nonce
(single use, expires after ``NONCE_TTL_S``), the wallet signs the EIP-4361 text with
``personal_sign`` (EIP-191), and :func:`verify` checks, in this order, that the text parses,
the nonce is one the node issued and has not used or let expire, the domain and URI are this
node's, the chain id is the node's, the message's own time window holds, and the signature
recovers the address the message names. Every failure is an ``AuthError`` that says which
check failed.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import is_address, is_checksum_address, to_checksum_address
from sqlalchemy import delete, select, update

from openledger.errors import AuthError, ValidationError
from openledger.store.auth_tables import SiweNonceRow
from openledger.store.db import Database

NONCE_TTL_S = 300.0
VERSION = "1"
STATEMENT = "Sign in to the OpenLedger node."
_INTRO = "wants you to sign in with your Ethereum account:"
_HEADER = re.compile(r"^(?P<domain>[^\s]+) " + re.escape(_INTRO) + "$")
_NONCE = re.compile(r"^[A-Za-z0-9]{8,}$")
_FIELDS = {
    "URI": "uri",
    "Version": "version",
    "Chain ID": "chain_id",
    "Nonce": "nonce",
    "Issued At": "issued_at",
    "Expiration Time": "expiration_time",
    "Not Before": "not_before",
    "Request ID": "request_id",
}


@dataclass(frozen=True)
class SiweMessage:
    """The fields of an EIP-4361 message (times as RFC 3339 strings, as written)."""

    domain: str
    address: str
    uri: str
    chain_id: int
    nonce: str
    issued_at: str
    statement: str | None = None
    version: str = VERSION
    expiration_time: str | None = None
    not_before: str | None = None
    request_id: str | None = None
    resources: tuple[str, ...] = field(default_factory=tuple)

    def text(self) -> str:
        """The exact text a wallet signs (EIP-4361 ABNF)."""
        lines = [f"{self.domain} {_INTRO}", self.address, ""]
        if self.statement is not None:
            lines += [self.statement, ""]
        lines += [
            f"URI: {self.uri}",
            f"Version: {self.version}",
            f"Chain ID: {self.chain_id}",
            f"Nonce: {self.nonce}",
            f"Issued At: {self.issued_at}",
        ]
        optional = (
            ("Expiration Time", self.expiration_time),
            ("Not Before", self.not_before),
            ("Request ID", self.request_id),
        )
        for label, attr in optional:
            if attr is not None:
                lines.append(f"{label}: {attr}")
        if self.resources:
            lines.append("Resources:")
            lines += [f"- {r}" for r in self.resources]
        return "\n".join(lines)


def _bad(
    message: str, fix: str = "ask the node for a new sign-in message and sign it."
) -> AuthError:
    return AuthError(message, field="message", fix=fix)


def parse(text: str) -> SiweMessage:
    """Parse an EIP-4361 message; an ``AuthError`` names the first line that is wrong."""
    lines = text.replace("\r\n", "\n").split("\n")
    if len(lines) < 7:
        raise _bad("The sign-in message is too short to be an EIP-4361 message.")
    head = _HEADER.match(lines[0])
    if head is None:
        raise _bad(
            "The sign-in message's first line is not '<domain> wants you to sign in "
            "with your Ethereum account:'."
        )
    address = lines[1].strip()
    if not is_checksum_address(address):
        raise _bad(
            f"The sign-in message's address {address!r} is not an EIP-55 checksummed address."
        )
    if lines[2] != "":
        raise _bad("The sign-in message needs an empty line after the address.")
    i, statement = 3, None
    if not lines[3].startswith("URI: "):
        statement = lines[3]
        if len(lines) < 5 or lines[4] != "":
            raise _bad("The sign-in message needs an empty line after the statement.")
        i = 5
    values: dict[str, str] = {}
    resources: list[str] = []
    order = list(_FIELDS)
    pos = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if line == "Resources:":
            resources = [r[2:] for r in lines[i:] if r.startswith("- ")]
            if len(resources) != len(lines[i:]):
                raise _bad("Every resource line must start with '- '.")
            break
        label, sep, value = line.partition(": ")
        if not sep or label not in _FIELDS:
            raise _bad(
                f"Line {i} of the sign-in message ({line[:60]!r}) is not a field of EIP-4361."
            )
        if label not in order[pos:]:
            raise _bad(f"The field {label!r} is repeated or out of order.")
        pos = order.index(label) + 1
        values[_FIELDS[label]] = value
    for need in ("uri", "version", "chain_id", "nonce", "issued_at"):
        if need not in values:
            raise _bad(f"The sign-in message has no {need.replace('_', ' ')}.")
    if values["version"] != VERSION:
        raise _bad(f"Version {values['version']!r} is not supported (only {VERSION!r}).")
    if not (values["chain_id"].isascii() and values["chain_id"].isdigit()):
        raise _bad(f"Chain ID {values['chain_id']!r} is not a number.")
    if not _NONCE.match(values["nonce"]):
        raise _bad("The nonce must be at least 8 letters or digits.")
    for key in ("issued_at", "expiration_time", "not_before"):
        if key in values:
            parse_time(values[key], key)
    return SiweMessage(
        domain=head["domain"],
        address=address,
        statement=statement,
        uri=values["uri"],
        version=values["version"],
        chain_id=int(values["chain_id"]),
        nonce=values["nonce"],
        issued_at=values["issued_at"],
        expiration_time=values.get("expiration_time"),
        not_before=values.get("not_before"),
        request_id=values.get("request_id"),
        resources=tuple(resources),
    )


def parse_time(value: str, name: str = "time") -> float:
    """An RFC 3339 time (``Z`` or an offset) as a Unix timestamp."""
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise _bad(
            f"{name.replace('_', ' ').capitalize()} {value!r} is not an RFC 3339 time."
        ) from exc
    if dt.tzinfo is None:
        raise _bad(f"{name.replace('_', ' ').capitalize()} {value!r} has no time zone.")
    return dt.timestamp()


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def recover(text: str, signature: str) -> str:
    """The address that signed ``text`` with EIP-191 ``personal_sign``."""
    try:
        return Account.recover_message(encode_defunct(text=text), signature=signature)
    except Exception as exc:  # malformed hex, wrong length, invalid point
        raise AuthError(
            "The signature is not a valid Ethereum signature of the sign-in message.",
            field="signature",
            fix="sign the message exactly as given, with personal_sign.",
        ) from exc


class NonceBook:
    """Nonces this node issued, in its database: each expires after ``ttl`` seconds and works
    once, whichever API process issued it and whichever takes the sign-in."""

    def __init__(
        self, db: Database, ttl: float = NONCE_TTL_S, clock: Callable[[], float] = time.time
    ) -> None:
        self.db = db
        self.ttl = ttl
        self.clock = clock

    def issue(self) -> str:
        nonce = secrets.token_hex(12)
        now = self.clock()
        with self.db.session() as s:
            s.execute(delete(SiweNonceRow).where(SiweNonceRow.expires_at < _at(now - 3600)))
            s.add(SiweNonceRow(nonce=nonce, expires_at=_at(now + self.ttl)))
        return nonce

    def consume(self, nonce: str) -> None:
        """Use ``nonce`` up; ``AuthError`` if unknown, already used or expired."""
        now = self.clock()
        with self.db.session() as s:
            taken = s.execute(
                update(SiweNonceRow)
                .where(SiweNonceRow.nonce == nonce[:64], SiweNonceRow.used_at.is_(None))
                .values(used_at=_at(now))
            ).rowcount
            expires = s.scalar(
                select(SiweNonceRow.expires_at).where(SiweNonceRow.nonce == nonce[:64])
            )
        if taken != 1:
            raise AuthError(
                "This sign-in nonce is unknown or was already used.",
                field="nonce",
                fix="ask the node for a new sign-in message (each one works once).",
            )
        if expires is None or now >= expires.timestamp():
            raise AuthError(
                f"This sign-in nonce expired (nonces last {int(self.ttl)} s).",
                field="nonce",
                fix="ask the node for a new sign-in message and sign it promptly.",
            )


def _at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


@dataclass(frozen=True)
class Expected:
    """What this node accepts: its host (``domain``), origin and chain id."""

    domain: str
    origin: str
    chain_id: int


def verify(
    text: str,
    signature: str,
    expected: Expected,
    nonces: NonceBook,
    clock: Callable[[], float] = time.time,
) -> SiweMessage:
    """Check a signed sign-in message (see the module docstring); returns it."""
    msg = parse(text)
    nonces.consume(msg.nonce)  # a nonce is spent by any attempt that names it
    if msg.domain != expected.domain:
        raise _bad(
            f"The message is for {msg.domain!r}, not this node ({expected.domain!r}).",
            "sign in on the node's own page.",
        )
    if not (msg.uri == expected.origin or msg.uri.startswith(expected.origin + "/")):
        raise _bad(
            f"The message's URI {msg.uri!r} is not on {expected.origin}.",
            "sign in on the node's own page.",
        )
    if msg.chain_id != expected.chain_id:
        raise AuthError(
            f"The message is for chain id {msg.chain_id}; this node runs on chain id "
            f"{expected.chain_id}.",
            field="chain_id",
            fix=f"switch your wallet to chain id {expected.chain_id} and sign in again.",
        )
    now = clock()
    if msg.expiration_time is not None and now >= parse_time(msg.expiration_time):
        raise _bad("The sign-in message has expired.")
    if msg.not_before is not None and now < parse_time(msg.not_before):
        raise _bad("The sign-in message is not valid yet (Not Before).")
    if parse_time(msg.issued_at) > now + 60:
        raise _bad("The sign-in message was issued in the future; check the clock.")
    if recover(text, signature) != msg.address:
        raise AuthError(
            "The signature was not made by the address in the sign-in message.",
            field="signature",
            fix="sign with the account named in the message.",
        )
    return msg


def new_message(
    address: str, expected: Expected, nonce: str, *, now: float, ttl: float = NONCE_TTL_S
) -> SiweMessage:
    """The message this node asks ``address`` to sign."""
    if not is_address(address):
        raise ValidationError(
            f"{address!r} is not an Ethereum address.",
            field="address",
            fix="pass the address as the wallet gives it.",
        )
    return SiweMessage(
        domain=expected.domain,
        address=to_checksum_address(address),
        statement=STATEMENT,
        uri=expected.origin,
        chain_id=expected.chain_id,
        nonce=nonce,
        issued_at=rfc3339(now),
        expiration_time=rfc3339(now + ttl),
    )
