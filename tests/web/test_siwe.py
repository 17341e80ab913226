"""Sign-In with Ethereum: the EIP-4361 text round-trips, and every check refuses what it
must (expired or reused nonce, wrong domain, URI or chain id, bad or foreign signature,
malformed text), with dev accounts refused off the devnet; signed session cookies."""

from __future__ import annotations

from dataclasses import replace

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from openledger.config import Settings
from openledger.errors import AuthError
from openledger.store.db import Database
from openledger.web import siwe
from openledger.web.auth import WebAuth
from openledger.web.sessions import SessionStore

EXPECTED = siwe.Expected(domain="127.0.0.1:8000", origin="http://127.0.0.1:8000", chain_id=31337)
USER = Account.from_key("0x" + "11" * 32)
OTHER = Account.from_key("0x" + "22" * 32)

# The example message of EIP-4361 (with its statement and resources).
SPEC_EXAMPLE = """service.invalid wants you to sign in with your Ethereum account:
0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2

I accept the ServiceOrg Terms of Service: https://service.invalid/tos

URI: https://service.invalid/login
Version: 1
Chain ID: 1
Nonce: 32891756
Issued At: 2021-09-30T16:25:24Z
Resources:
- ipfs://bafybeiemxf5abjwjbikoz4mc3a3dla6ual3jsgpdr4cjr3oz3evfyavhwq/
- https://example.com/my-web2-claim.json"""


class Clock:
    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def sign(text: str, account=USER) -> str:
    return account.sign_message(encode_defunct(text=text)).signature.hex()


def signed(
    nonces: siwe.NonceBook, clock: Clock, account=USER, **changes: object
) -> tuple[str, str]:
    msg = siwe.new_message(account.address, EXPECTED, nonces.issue(), now=clock())
    text = replace(msg, **changes).text()
    return text, sign(text, account)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db(tmp_path) -> Database:
    db = Database.open(f"sqlite:///{tmp_path / 'web.db'}")
    yield db
    db.dispose()


@pytest.fixture
def nonces(clock: Clock, db: Database) -> siwe.NonceBook:
    return siwe.NonceBook(db, ttl=300, clock=clock)


def test_the_spec_example_parses_and_prints_back_exactly() -> None:
    msg = siwe.parse(SPEC_EXAMPLE)
    assert msg.domain == "service.invalid"
    assert msg.address == "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"
    assert msg.statement == "I accept the ServiceOrg Terms of Service: https://service.invalid/tos"
    assert (msg.chain_id, msg.nonce, msg.version) == (1, "32891756", "1")
    assert msg.resources[1] == "https://example.com/my-web2-claim.json"
    assert msg.text() == SPEC_EXAMPLE
    no_statement = SPEC_EXAMPLE.replace(
        "I accept the ServiceOrg Terms of Service: https://service.invalid/tos\n\n", ""
    )
    assert siwe.parse(no_statement).statement is None
    assert siwe.parse(no_statement).text() == no_statement


def test_a_good_signature_signs_in_once(nonces: siwe.NonceBook, clock: Clock) -> None:
    text, sig = signed(nonces, clock)
    msg = siwe.verify(text, sig, EXPECTED, nonces, clock=clock)
    assert msg.address == USER.address and msg.chain_id == 31337
    with pytest.raises(AuthError, match="unknown or was already used"):
        siwe.verify(text, sig, EXPECTED, nonces, clock=clock)  # replayed


def test_an_expired_nonce_is_refused(nonces: siwe.NonceBook, clock: Clock) -> None:
    text, sig = signed(nonces, clock, expiration_time=None)
    clock.t += 301
    with pytest.raises(AuthError, match="nonce expired"):
        siwe.verify(text, sig, EXPECTED, nonces, clock=clock)


def test_a_nonce_the_node_never_issued_is_refused(nonces: siwe.NonceBook, clock: Clock) -> None:
    text, _ = signed(nonces, clock)
    forged = text.replace(siwe.parse(text).nonce, "abcdef0123456789")
    with pytest.raises(AuthError, match="unknown or was already used"):
        siwe.verify(forged, sign(forged), EXPECTED, nonces, clock=clock)


def test_a_failed_attempt_spends_the_nonce(nonces: siwe.NonceBook, clock: Clock) -> None:
    text, _ = signed(nonces, clock)
    with pytest.raises(AuthError, match="not made by the address"):
        siwe.verify(text, sign(text, OTHER), EXPECTED, nonces, clock=clock)
    with pytest.raises(AuthError, match="already used"):
        siwe.verify(text, sign(text), EXPECTED, nonces, clock=clock)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"domain": "evil.example"}, "is for 'evil.example', not this node"),
        ({"uri": "http://evil.example/login"}, "URI 'http://evil.example/login' is not on"),
        ({"chain_id": 1}, "chain id 1; this node runs on chain id 31337"),
        ({"expiration_time": "2020-01-01T00:00:00Z"}, "has expired"),
        ({"not_before": "2100-01-01T00:00:00Z"}, "not valid yet"),
        ({"issued_at": "2100-01-01T00:00:00Z"}, "issued in the future"),
    ],
)
def test_a_message_for_another_place_chain_or_time_is_refused(
    nonces: siwe.NonceBook, clock: Clock, changes: dict, match: str
) -> None:
    text, sig = signed(nonces, clock, **changes)
    with pytest.raises(AuthError, match=match):
        siwe.verify(text, sig, EXPECTED, nonces, clock=clock)


def test_a_bad_signature_is_refused(nonces: siwe.NonceBook, clock: Clock) -> None:
    text, sig = signed(nonces, clock)
    with pytest.raises(AuthError, match="not a valid Ethereum signature"):
        siwe.verify(text, "0x1234", EXPECTED, nonces, clock=clock)
    text, sig = signed(nonces, clock)
    edited = text.replace("Sign in to", "Sign away")
    with pytest.raises(AuthError, match="not made by the address"):
        siwe.verify(edited, sig, EXPECTED, nonces, clock=clock)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda t: t.replace(USER.address, USER.address.lower()), "EIP-55"),
        (lambda t: t.replace("wants you", "would like you"), "first line"),
        (lambda t: t.replace("Version: 1", "Version: 2"), "Version '2'"),
        (lambda t: t.replace("Chain ID: 31337", "Chain ID: main"), "not a number"),
        (lambda t: t.replace("Issued At: ", "Issued At: yesterday "), "RFC 3339"),
        (lambda t: t + "\nColour: blue", "not a field of EIP-4361"),
        (lambda t: "\n".join(t.split("\n")[:4]), "too short"),
    ],
)
def test_malformed_messages_say_what_is_wrong(
    nonces: siwe.NonceBook,
    clock: Clock,
    edit,
    match: str,
) -> None:
    text, _ = signed(nonces, clock)
    with pytest.raises(AuthError, match=match):
        siwe.parse(edit(text))


def test_dev_sign_in_on_the_devnet_and_refused_elsewhere(home: Settings) -> None:
    from openledger.chain.accounts import AccountBook

    db = Database.open(home.db_url)
    auth = WebAuth(home, AccountBook(home), db)
    session, token = auth.dev_sign_in("alice", auth.expected("127.0.0.1:8000"))
    alice = auth.accounts.address("alice")
    assert (session.address, session.dev, session.chain_id) == (alice, "alice", 31337)
    assert auth.sessions.read(token) == session
    assert auth.signer(session).address == alice
    assert [a["name"] for a in auth.dev_accounts()][:2] == ["alice", "bob"]

    mainnet = replace(home, chain_id=1)
    other = WebAuth(mainnet, AccountBook(mainnet), db)
    with pytest.raises(AuthError, match="Dev accounts are refused on chain id 1"):
        other.dev_sign_in("alice", other.expected("127.0.0.1:8000"))
    assert other.dev_accounts() == []
    # a wallet that signs in with a dev account's key on another chain gets no node key
    text = other.message(alice, other.expected("127.0.0.1:8000"))
    dev_key = AccountBook(home).signer("alice")
    wallet_session, _ = other.sign_in(text, sign(text, dev_key), other.expected("127.0.0.1:8000"))
    assert wallet_session.dev is None
    with pytest.raises(AuthError, match="holds no key"):
        other.signer(wallet_session)


def test_sessions_live_in_the_database_expire_and_revoke(db: Database) -> None:
    clock = Clock()
    store = SessionStore(db, ttl=60, clock=clock)
    session, token = store.issue(USER.address, 31337)
    assert store.read(token) == session
    # another process on the same database (a new store) sees it: it survives a restart
    assert SessionStore(db, ttl=60, clock=clock).read(token) == session
    other_session, other = store.issue(OTHER.address, 31337)
    assert store.read(token[:-2] + ("xx" if not token.endswith("xx") else "yy")) is None
    assert store.read("garbage") is None and store.read(None) is None
    assert store.revoke(other) and not store.revoke(other)  # logout, once
    assert store.read(other) is None and store.read(token) == session
    clock.t += 61
    assert store.read(token) is None  # expired
    with db.session() as s:  # only the hash of the cookie is stored
        from openledger.store.auth_tables import WebSessionRow

        stored = [r.token_hash for r in s.query(WebSessionRow)]
    assert token not in stored and len(stored) == 2
