"""Who the web app acts for: SIWE sign-in, dev-account sign-in on the devnet, sessions.

``WebAuth`` is the service (no HTTP); ``router`` puts it under ``/web/auth``. Sign-ins and
sessions live in the node's database (``siwe.NonceBook``, ``sessions.SessionStore``). A
sign-in message names the node's own host:port (``api_host:api_port``, or one of
``web_hosts``) and nothing else; the Host header is only checked against that list, never
trusted. Every state-changing request needs the web app's header (which a cross-site form
cannot send), and the request guard refuses any from another origin (``http.guard``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any

from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from fastapi import APIRouter, Depends, Request, Response, Security
from fastapi.security import APIKeyCookie
from pydantic import BaseModel, Field

from openledger.auth.principal import SCOPES, Principal
from openledger.chain.accounts import DEV_NAMES, AccountBook
from openledger.config import DEVNET_CHAIN_ID, Settings
from openledger.errors import AuthError, ConfigError, NotFoundError
from openledger.http.guard import node_hosts
from openledger.store.db import Database
from openledger.web import siwe
from openledger.web.sessions import COOKIE, Session, SessionStore

CSRF_HEADER = "x-openledger-web"


def host_allowed(host: str, settings: Settings) -> bool:
    """Whether sign-ins may name ``host`` (host:port) as their domain: the node's own
    ``api_host:api_port`` (any loopback name for a loopback host) or one of ``web_hosts``."""
    return host in node_hosts(settings)


class WebAuth:
    def __init__(
        self,
        settings: Settings,
        accounts: AccountBook,
        db: Database,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.accounts = accounts
        self.clock = clock
        self.nonces = siwe.NonceBook(db, clock=clock)
        self.sessions = SessionStore(db, clock=clock)

    @property
    def devnet(self) -> bool:
        return self.settings.chain_id == DEVNET_CHAIN_ID

    def expected(self, host: str, scheme: str = "http") -> siwe.Expected:
        return siwe.Expected(
            domain=host, origin=f"{scheme}://{host}", chain_id=self.settings.chain_id
        )

    def message(self, address: str, expected: siwe.Expected) -> str:
        """A fresh sign-in message for ``address`` (its nonce works once, for 5 minutes)."""
        nonce = self.nonces.issue()
        return siwe.new_message(address, expected, nonce, now=self.clock()).text()

    def sign_in(self, text: str, signature: str, expected: siwe.Expected) -> tuple[Session, str]:
        msg = siwe.verify(text, signature, expected, self.nonces, clock=self.clock)
        return self.sessions.issue(msg.address, msg.chain_id, dev=self.dev_name(msg.address))

    def dev_accounts(self) -> list[dict[str, str]]:
        """The node's named dev accounts (devnet only; empty on any other chain)."""
        if not self.devnet:
            return []
        return [
            {"name": n, "address": self.accounts.address(n)}
            for n in self.accounts.names()
            if n in DEV_NAMES
        ]

    def dev_sign_in(self, name: str, expected: siwe.Expected) -> tuple[Session, str]:
        """Sign in as a dev account: the node signs the SIWE message with its dev key and
        verifies it like any other. Refused on any chain but the devnet."""
        if not self.devnet or expected.chain_id != DEVNET_CHAIN_ID:
            raise AuthError(
                f"Dev accounts are refused on chain id {expected.chain_id}: their keys are public.",
                field="account",
                value=name,
                fix="sign in with your own wallet.",
            )
        if name not in DEV_NAMES:
            raise NotFoundError(
                f"No dev account named {name[:40]!r}.",
                field="account",
                value=name[:40],
                fix=f"use one of: {', '.join(DEV_NAMES)}.",
            )
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
                "transaction for you.",
                field="account",
                value=session.address,
                fix="send it from your wallet (the page offers it where it can), or use the "
                "CLI with your own key.",
            )
        try:
            return self.accounts.signer(name)
        except ConfigError as exc:  # not the devnet after all
            raise AuthError(exc.message, field="account", value=name, fix=exc.fix) from exc

    def principal(self, session: Session) -> Principal:
        """A session as a principal: its account (a dev name on the devnet), every scope."""
        return Principal(
            kind="session",
            address=session.address,
            account=self.dev_name(session.address),
            scopes=frozenset(SCOPES),
            session_id=session.id,
        )


# ---------------------------------------------------------------------------- HTTP

cookie = APIKeyCookie(
    name=COOKIE,
    auto_error=False,
    scheme_name="session",
    description="The web app's session (sign in under /web/auth).",
)


def get_auth(request: Request) -> WebAuth:
    return request.app.state.web_auth


AuthDep = Annotated[WebAuth, Depends(get_auth)]


def _expected(request: Request, auth: WebAuth) -> siwe.Expected:
    host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    if not host_allowed(host, auth.settings):
        allowed = ", ".join(sorted(node_hosts(auth.settings)))
        raise AuthError(
            f"This node does not take sign-ins for the host {host[:80]!r}.",
            field="host",
            value=host[:80],
            fix=f"open the node as one of: {allowed} (set api.host/api.port, "
            "or list more names in api.web_hosts / OPENLEDGER_WEB_HOSTS).",
        )
    return auth.expected(host, request.url.scheme)


def current_session(request: Request, auth: AuthDep) -> Session | None:
    session = auth.sessions.read(request.cookies.get(COOKIE))
    if session is not None and session.chain_id != auth.settings.chain_id:
        return None
    return session


def from_web_app(request: Request) -> None:
    """Writes need the web app's header, which a cross-site form cannot send."""
    if request.method not in ("GET", "HEAD") and request.headers.get(CSRF_HEADER) != "1":
        raise AuthError(
            "This request did not come from the web app.",
            field=CSRF_HEADER,
            fix="use the node's own pages.",
        )


def require_session(
    request: Request, auth: AuthDep, _: Annotated[str | None, Security(cookie)]
) -> Session:
    """The signed-in account (401 otherwise), for a request from the web app."""
    from_web_app(request)
    session = current_session(request, auth)
    if session is None:
        raise AuthError(
            "You are not signed in (or your session expired).",
            field="session",
            fix="sign in again.",
        )
    return session


SessionDep = Annotated[Session, Depends(require_session)]


def only_own_account(request: Request) -> None:
    """A web write acts for the signed-in account only: ``?as=`` naming another is a 403."""
    wanted = request.query_params.get("as")
    if not wanted or request.method in ("GET", "HEAD"):
        return
    auth = get_auth(request)
    session = auth.sessions.read(request.cookies.get(COOKIE))
    if session is None:
        return  # the route's own check answers 401
    node = request.app.state.node
    if not node.accounts.refers_to(wanted, session.address):  # an unknown name is not it
        raise auth.principal(session).forbid(wanted[:64])


def sign_in_limit(request: Request) -> None:
    """Sign-in messages and sign-ins per client address (429 over ``rate_signin``)."""
    request.app.state.limits.sign_in(request)


router = APIRouter(prefix="/web/auth", tags=["web"], dependencies=[Depends(from_web_app)])


class MessageRequest(BaseModel):
    address: Annotated[str, Field(max_length=64)]


class VerifyRequest(BaseModel):
    message: Annotated[str, Field(max_length=4000)]
    signature: Annotated[str, Field(max_length=200)]


class DevRequest(BaseModel):
    name: Annotated[str, Field(max_length=64)]


def _set_cookie(response: Response, token: str, request: Request) -> None:
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="strict",
        path="/",
        secure=request.url.scheme == "https",
        max_age=int(get_auth(request).sessions.ttl),
    )


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


@router.post("/message", dependencies=[Depends(sign_in_limit)])
def message(body: MessageRequest, request: Request, auth: AuthDep) -> dict[str, Any]:
    """An EIP-4361 message for the wallet to sign (with a fresh single-use nonce)."""
    return {"message": auth.message(body.address, _expected(request, auth))}


@router.post("/verify", dependencies=[Depends(sign_in_limit)])
def verify(
    body: VerifyRequest, request: Request, response: Response, auth: AuthDep
) -> dict[str, Any]:
    session, token = auth.sign_in(body.message, body.signature, _expected(request, auth))
    _set_cookie(response, token, request)
    return _session_view(auth, session)


@router.post("/dev", dependencies=[Depends(sign_in_limit)])
def dev(body: DevRequest, request: Request, response: Response, auth: AuthDep) -> dict[str, Any]:
    """Sign in as one of the node's dev accounts (devnet only)."""
    session, token = auth.dev_sign_in(body.name, _expected(request, auth))
    _set_cookie(response, token, request)
    return _session_view(auth, session)


@router.post("/logout", dependencies=[Depends(only_own_account)])
def logout(
    request: Request, response: Response, auth: AuthDep, session: SessionDep
) -> dict[str, Any]:
    """Sign out: the session is revoked in the database (the cookie no longer works
    anywhere, even if it was copied) and the cookie is deleted."""
    auth.sessions.revoke(request.cookies.get(COOKIE))
    response.delete_cookie(COOKIE, path="/")
    return _session_view(auth, None)


__all__ = ["AuthDep", "SessionDep", "WebAuth", "current_session", "router"]
