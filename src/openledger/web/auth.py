"""Who the web app acts for: SIWE sign-in, dev-account sign-in on the devnet, sessions,
and the key the node signs a signed-in account's transactions with.

``WebAuth`` is the service (no HTTP); ``router`` puts it under ``/web/auth``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from functools import cached_property
from typing import Annotated, Any

from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel

from openledger.chain.accounts import DEV_NAMES, AccountBook
from openledger.config import DEVNET_CHAIN_ID, Settings
from openledger.errors import AuthError, ConfigError, NotFoundError
from openledger.web import siwe
from openledger.web.sessions import COOKIE, Session, SessionCodec, load_key

CSRF_HEADER = "x-openledger-web"
HOSTS_ENV = "OPENLEDGER_WEB_HOSTS"
LOOPBACK = ("127.0.0.1", "localhost", "[::1]")


def host_allowed(host: str, configured: str | None) -> bool:
    """Whether sign-ins may name ``host`` (host[:port]) as their domain: one of the comma-
    separated ``configured`` hosts (``OPENLEDGER_WEB_HOSTS``), else a loopback name. The
    Host header alone is not trusted: a client can send any, and a message signed for
    another site must not open a session here."""
    if configured:
        return host in {h.strip() for h in configured.split(",") if h.strip()}
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return name in LOOPBACK


class WebAuth:
    def __init__(self, settings: Settings, accounts: AccountBook, *,
                 clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        self.settings = settings
        self.accounts = accounts
        self.clock = clock
        self.nonces = siwe.NonceBook(clock=clock)

    @cached_property
    def codec(self) -> SessionCodec:
        """Sessions signed with the key in ``<home>/web/session.key`` (made on first use)."""
        return SessionCodec(load_key(self.settings.home / "web" / "session.key"), clock=self.clock)

    @property
    def devnet(self) -> bool:
        return self.settings.chain_id == DEVNET_CHAIN_ID

    def expected(self, host: str, scheme: str = "http") -> siwe.Expected:
        return siwe.Expected(domain=host, origin=f"{scheme}://{host}",
                             chain_id=self.settings.chain_id)  # fmt: skip

    def message(self, address: str, expected: siwe.Expected) -> str:
        """A fresh sign-in message for ``address`` (its nonce works once, for 5 minutes)."""
        nonce = self.nonces.issue()
        return siwe.new_message(address, expected, nonce, now=self.clock()).text()

    def sign_in(self, text: str, signature: str, expected: siwe.Expected) -> tuple[Session, str]:
        msg = siwe.verify(text, signature, expected, self.nonces, clock=self.clock)
        return self.codec.issue(msg.address, msg.chain_id, dev=self.dev_name(msg.address))

    def dev_accounts(self) -> list[dict[str, str]]:
        """The node's named dev accounts (devnet only; empty on any other chain)."""
        if not self.devnet:
            return []
        return [{"name": n, "address": self.accounts.address(n)}
                for n in self.accounts.names() if n in DEV_NAMES]  # fmt: skip

    def dev_sign_in(self, name: str, expected: siwe.Expected) -> tuple[Session, str]:
        """Sign in as a dev account: the node signs the SIWE message with its dev key and
        verifies it like any other. Refused on any chain but the devnet."""
        if not self.devnet or expected.chain_id != DEVNET_CHAIN_ID:
            raise AuthError(
                f"Dev accounts are refused on chain id {expected.chain_id}: their keys are "
                "public.", field="account", value=name,
                fix="sign in with your own wallet.",
            )  # fmt: skip
        if name not in DEV_NAMES:
            raise NotFoundError(f"No dev account named {name!r}.", field="account", value=name,
                                fix=f"use one of: {', '.join(DEV_NAMES)}.")  # fmt: skip
        signer = self.accounts.signer(name)
        text = self.message(signer.address, expected)
        signature = signer.sign_message(encode_defunct(text=text)).signature.hex()
        return self.sign_in(text, "0x" + signature.removeprefix("0x"), expected)

    def dev_name(self, address: str) -> str | None:
        """The dev-account name of ``address`` on the devnet, else None."""
        if not self.devnet:
            return None
        for acct in self.dev_accounts():
            if acct["address"] == address:
                return acct["name"]
        return None

    def signer(self, session: Session) -> LocalAccount:
        """The key the node signs for ``session`` with (its dev key on the devnet)."""
        name = self.dev_name(session.address)
        if name is None:
            raise AuthError(
                f"This node holds no key for {session.address}, so it cannot send this "
                "transaction for you.", field="account", value=session.address,
                fix="send it from your wallet (the page offers it where it can), or use the "
                "CLI with your own key.",
            )  # fmt: skip
        try:
            return self.accounts.signer(name)
        except ConfigError as exc:  # not the devnet after all
            raise AuthError(exc.message, field="account", value=name, fix=exc.fix) from exc


# ---------------------------------------------------------------------------- HTTP


def get_auth(request: Request) -> WebAuth:
    return request.app.state.web_auth


AuthDep = Annotated[WebAuth, Depends(get_auth)]


def _expected(request: Request, auth: WebAuth) -> siwe.Expected:
    host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    if not host_allowed(host, os.environ.get(HOSTS_ENV)):
        raise AuthError(
            f"This node does not take sign-ins for the host {host!r}.", field="host",
            value=host, fix=f"open the node by a name listed in {HOSTS_ENV} (comma-separated "
            "host:port; by default only 127.0.0.1, localhost and [::1]).",
        )  # fmt: skip
    return auth.expected(host, request.url.scheme)


def current_session(request: Request, auth: AuthDep) -> Session | None:
    session = auth.codec.read(request.cookies.get(COOKIE))
    if session is not None and session.chain_id != auth.settings.chain_id:
        return None
    return session


def from_web_app(request: Request) -> None:
    """Writes need the web app's header, which a cross-site form cannot send."""
    if request.method not in ("GET", "HEAD") and request.headers.get(CSRF_HEADER) != "1":
        raise AuthError("This request did not come from the web app.", field=CSRF_HEADER,
                        fix="use the node's own pages.")  # fmt: skip


def require_session(request: Request, auth: AuthDep) -> Session:
    """The signed-in account (401 otherwise), for a request from the web app."""
    from_web_app(request)
    session = current_session(request, auth)
    if session is None:
        raise AuthError("You are not signed in (or your session expired).", field="session",
                        fix="sign in again.")  # fmt: skip
    return session


SessionDep = Annotated[Session, Depends(require_session)]
router = APIRouter(prefix="/web/auth", tags=["web"], dependencies=[Depends(from_web_app)])


class MessageRequest(BaseModel):
    address: str


class VerifyRequest(BaseModel):
    message: str
    signature: str


class DevRequest(BaseModel):
    name: str


def _set_cookie(response: Response, token: str, request: Request) -> None:
    response.set_cookie(COOKIE, token, httponly=True, samesite="lax", path="/",
                        secure=request.url.scheme == "https",
                        max_age=int(get_auth(request).codec.ttl))  # fmt: skip


def _session_view(auth: WebAuth, session: Session | None) -> dict[str, Any]:
    return {
        "signed_in": session is not None,
        "session": session.to_dict() if session else None,
        "chain_id": auth.settings.chain_id,
        "devnet": auth.devnet,
        "dev_accounts": auth.dev_accounts(),
    }


@router.get("/session")
def show_session(request: Request, auth: AuthDep) -> dict[str, Any]:
    """Who is signed in, the node's chain id and (devnet only) its dev accounts."""
    return _session_view(auth, current_session(request, auth))


@router.post("/message")
def message(body: MessageRequest, request: Request, auth: AuthDep) -> dict[str, Any]:
    """An EIP-4361 message for the wallet to sign (with a fresh single-use nonce)."""
    return {"message": auth.message(body.address, _expected(request, auth))}


@router.post("/verify")
def verify(body: VerifyRequest, request: Request, response: Response,
           auth: AuthDep) -> dict[str, Any]:  # fmt: skip
    session, token = auth.sign_in(body.message, body.signature, _expected(request, auth))
    _set_cookie(response, token, request)
    return _session_view(auth, session)


@router.post("/dev")
def dev(body: DevRequest, request: Request, response: Response, auth: AuthDep) -> dict[str, Any]:
    """Sign in as one of the node's dev accounts (devnet only)."""
    session, token = auth.dev_sign_in(body.name, _expected(request, auth))
    _set_cookie(response, token, request)
    return _session_view(auth, session)


@router.post("/logout")
def logout(response: Response, auth: AuthDep) -> dict[str, Any]:
    response.delete_cookie(COOKIE, path="/")
    return _session_view(auth, None)


__all__ = ["AuthDep", "SessionDep", "WebAuth", "current_session", "router"]
