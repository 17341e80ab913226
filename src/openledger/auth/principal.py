"""Who a request acts for: one principal per credential.

- ``operator``: the operator token (``olo_…``, ``<home>/operator.token``): every scope, and
  the only credential that may name a node-held account with ``"as"``;
- ``key``: an API key (``olk_…``) bound to one account, with scopes;
- ``session``: a signed-in web session (SIWE, or a dev account on the devnet).

A request acts only for the account its credential is bound to: naming another account is
a 403 (``act_as``).
"""

from __future__ import annotations

from dataclasses import dataclass

from openledger.errors import ForbiddenError

SCOPES = ("inference", "read", "write")
DEFAULT_SCOPES = ("inference", "read")


@dataclass(frozen=True)
class Principal:
    kind: str  # "operator" | "key" | "session"
    address: str  # the account the credential is bound to (the operator's, for the token)
    account: str | None  # the node's name for it (operator, alice, …), None for a wallet
    scopes: frozenset[str]
    key_id: str | None = None
    session_id: int | None = None

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            raise ForbiddenError(
                f"This {self.what} lacks the {scope!r} scope (it has: "
                f"{', '.join(sorted(self.scopes)) or 'none'}).",
                field="Authorization",
                value=self.key_id or self.address,
                fix="create an API key for the account with the scopes "
                f"{','.join(sorted(self.scopes | {scope}))}.",
            )

    @property
    def what(self) -> str:
        return {
            "operator": "operator token",
            "key": f"API key {self.key_id}",
            "session": "web session",
        }[self.kind]

    def owns(self, address: str | None) -> bool:
        """Whether the principal may act on something ``address`` owns."""
        return self.kind == "operator" or (
            address is not None and address.lower() == self.address.lower()
        )

    def forbid(self, other: str, what: str = "act") -> ForbiddenError:
        return ForbiddenError(
            f"This {self.what} is bound to {self.account or self.address}; it cannot {what} "
            f"for {other}.",
            field="as",
            value=other,
            fix="use a credential of that account (its own API key or web session); only "
            "the node's operator token names the node's own accounts.",
        )


# kept for the modules that name the API key's principal by its old name
ApiPrincipal = Principal
