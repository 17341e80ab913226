"""User-facing error types.

Every failure a person can cause or fix raises one of these. The message says what was
wrong (the field and the value) and what to do about it; the CLI prints it without a
traceback and exits non-zero, the API returns it as JSON with ``http_status``.
"""

from __future__ import annotations

from typing import Any, Protocol


class OpenLedgerError(Exception):
    """Base of every user-facing error."""

    http_status: int = 400
    exit_code: int = 1

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        value: Any = None,
        fix: str | None = None,
    ) -> None:
        self.message = message
        self.field = field
        self.value = value
        self.fix = fix
        super().__init__(self.__str__())

    def __str__(self) -> str:
        text = self.message
        if self.fix:
            text = f"{text} Fix: {self.fix}"
        return text

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": type(self).__name__, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        if self.value is not None:
            body["value"] = (
                self.value if isinstance(self.value, int | float | bool) else str(self.value)
            )
        if self.fix is not None:
            body["fix"] = self.fix
        return body


class ConfigError(OpenLedgerError):
    """A setting, config file or node home is missing or malformed."""


class ValidationError(OpenLedgerError):
    """Input that breaks a rule (wrong type, out of range, malformed)."""

    http_status = 422


class NotFoundError(OpenLedgerError):
    """A named thing (account, datanet, blob, receipt...) does not exist."""

    http_status = 404


class ConflictError(OpenLedgerError):
    """The request clashes with existing state (already exists, already done)."""

    http_status = 409


class AuthError(OpenLedgerError):
    """Missing or wrong credentials (keystore password, signature, session)."""

    http_status = 401


class ForbiddenError(OpenLedgerError):
    """The credential is valid but does not allow this: another account's, a missing scope,
    a request from another site."""

    http_status = 403


class Requester(Protocol):
    """Who asks a service for something that is not everyone's (``auth.principal.Principal``
    is one): whether it may act on what ``address`` owns (``None``: what the node itself
    owns, such as the jobs queued from its CLI; only the operator does), and the 403 that
    refuses it. The service decides; the requester words the refusal for its credential."""

    def owns(self, address: str | None) -> bool: ...

    def forbid(self, other: str, what: str = "act") -> ForbiddenError: ...


class PayloadTooLargeError(OpenLedgerError):
    """A request body over the node's cap."""

    http_status = 413


class RateLimitedError(OpenLedgerError):
    """Too many requests from one API key or address; ``retry_after`` is in seconds."""

    http_status = 429

    def __init__(self, message: str, *, retry_after: int, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class KeystoreError(AuthError):
    """The keystore cannot be read or its password is wrong."""


class PaymentRequiredError(OpenLedgerError):
    """The account's inference credit does not cover the request."""

    http_status = 402


class StoreError(OpenLedgerError):
    """The metadata database or blob store is unusable."""

    http_status = 503


class BlobCorruptedError(StoreError):
    """A blob's content no longer matches its sha256 name."""


class ChainError(OpenLedgerError):
    """Base of failures talking to the EVM chain."""

    http_status = 502


class ChainUnreachableError(ChainError):
    """The JSON-RPC endpoint does not answer."""

    http_status = 503


class WrongChainError(ChainError):
    """The endpoint's chain id is not the configured one."""


class ContractNotDeployedError(ChainError):
    """No contract code at a configured address."""


class TransactionRevertedError(ChainError):
    """The chain rejected a transaction; ``reason`` is the decoded revert string."""

    http_status = 409

    def __init__(self, message: str, *, reason: str | None = None, **kwargs: Any) -> None:
        self.reason = reason
        super().__init__(message, **kwargs)


class InsufficientFundsError(TransactionRevertedError):
    """An OPEN balance, allowance or ETH for gas is too small."""

    http_status = 402


class DevnetError(ChainError):
    """The local anvil devnet cannot be started, stopped or found."""

    http_status = 503
