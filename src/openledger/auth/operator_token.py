"""The operator token: the credential for the accounts the node itself holds.

``openledger init`` writes ``olo_`` + 43 random characters into ``<home>/operator.token``
(mode 0600). Whoever can read that file administers the node: with the token a request may
act as the operator or, on the devnet, as one of the dev accounts (``"as"``), and the CLI
and the demo refuse to sign as a node-held account without it. An API key or a web session
never can.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import stat
from pathlib import Path

from openledger.errors import AuthError, ConfigError
from openledger.fsutil import write_atomic

TOKEN_PREFIX = "olo_"
TOKEN_LEN = len(TOKEN_PREFIX) + 43
FILE_NAME = "operator.token"


def token_path(home: Path) -> Path:
    return home / FILE_NAME


def ensure_token(home: Path) -> bool:
    """Write a new token into ``home`` unless a well-formed one is there (a home made before
    nodes had one gets its token this way); whether one was written."""
    path = token_path(home)
    if path.exists() and _well_formed(path.read_text(encoding="ascii", errors="replace").strip()):
        return False
    write_atomic(path, TOKEN_PREFIX + secrets.token_urlsafe(32) + "\n", mode=0o600)
    return True


def _well_formed(token: str) -> bool:
    return len(token) == TOKEN_LEN and token.startswith(TOKEN_PREFIX)


def read_token(home: Path) -> str:
    """The node's token, refusing a file others can read (as ssh refuses such a key)."""
    path = token_path(home)
    try:
        mode = path.stat().st_mode
        token = path.read_text(encoding="ascii").strip()
    except FileNotFoundError as exc:
        raise ConfigError(
            f"The node home {home} has no operator token ({path}): it was made before nodes "
            "had one, or the file was deleted. The CLI and the API need it to act as the "
            "node's own accounts.",
            field="operator.token",
            value=str(path),
            fix=f"run `OPENLEDGER_HOME={home} openledger init`: on an existing home it keeps "
            "the keys and the data and only writes the missing token (mode 0600).",
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"Cannot read the operator token {path}: {exc}.",
            field="operator.token",
            value=str(path),
            fix="make it readable by the node's user only (chmod 600).",
        ) from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"The operator token {path} can be read by other users (mode {oct(mode & 0o777)}).",
            field="operator.token",
            value=str(path),
            fix=f"run `chmod 600 {path}`.",
        )
    if not _well_formed(token):
        raise ConfigError(
            f"The operator token {path} is malformed.",
            field="operator.token",
            value=str(path),
            fix="delete it and run `openledger init`.",
        )
    return token


class OperatorToken:
    """Checks a presented token against the node home's (read once)."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self._digest: bytes | None = None

    def matches(self, presented: str) -> bool:
        if self._digest is None:
            self._digest = hashlib.sha256(read_token(self.home).encode()).digest()
        return hmac.compare_digest(hashlib.sha256(presented.encode()).digest(), self._digest)

    def verify(self, presented: str) -> None:
        if not self.matches(presented):
            raise AuthError(
                "Wrong operator token.",
                field="Authorization",
                fix=f"send the token in {token_path(self.home)} as `Authorization: Bearer olo_…`.",
            )
