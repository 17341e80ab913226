"""AccountBook.resolve: the one place a name-or-address becomes an address (the CLI, both
HTTP faces and the services call it), and refers_to, the "is this that account" check of
both faces' ``?as=``."""

from __future__ import annotations

import pytest

from openledger.chain.accounts import AccountBook
from openledger.config import Settings
from openledger.errors import NotFoundError, ValidationError

ANVIL_1 = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def test_an_address_in_any_case_with_or_without_0x_is_checksummed(home: Settings) -> None:
    book = AccountBook(home)
    assert book.resolve(ANVIL_1.lower()) == ANVIL_1
    assert book.resolve(ANVIL_1.upper().replace("0X", "0x")) == ANVIL_1
    assert book.resolve(ANVIL_1[2:].lower()) == ANVIL_1  # 40 hex digits: never a name


def test_a_name_is_its_accounts_address(home: Settings) -> None:
    book = AccountBook(home)
    assert book.resolve("alice") == ANVIL_1 == book.address("alice")
    assert book.resolve("operator") == book.operator_address()


def test_what_names_nothing_is_refused_with_the_account_field(home: Settings) -> None:
    book = AccountBook(home)
    with pytest.raises(ValidationError) as bad:
        book.resolve("0x1234")
    assert (bad.value.field, bad.value.value) == ("account", "0x1234")
    assert "is not an address" in bad.value.message
    long = "0x" + "z" * 100
    with pytest.raises(ValidationError) as bad:
        book.resolve(long)
    assert bad.value.value == long[:60]
    with pytest.raises(NotFoundError) as unknown:
        book.resolve("mallory")
    assert (unknown.value.field, unknown.value.value) == ("account", "mallory")
    assert "No account named 'mallory'" in unknown.value.message


def test_refers_to(home: Settings) -> None:
    book = AccountBook(home)
    assert book.refers_to("alice", ANVIL_1.lower())
    assert book.refers_to(ANVIL_1.lower(), ANVIL_1)
    assert not book.refers_to("bob", ANVIL_1)
    assert not book.refers_to("mallory", ANVIL_1)  # an unknown name is not it either
    assert not book.refers_to("0xnope", ANVIL_1)


def test_name_of_names_only_the_accounts_the_node_holds(home: Settings) -> None:
    book = AccountBook(home)
    assert book.name_of(ANVIL_1.lower()) == "alice"
    assert book.name_of(book.operator_address()) == "operator"
    assert book.name_of("0x" + "9" * 40) is None
