"""DatanetRegistry access fees: prices per datanet within the governable bound, and
``payAccess`` paying the fee of an export or a training job to the RewardDistributor."""

from __future__ import annotations

from typing import Any

import boa
import pytest

from .contract_helpers import OPEN, addr, events, h

EXPORT, TRAIN = 0, 1


@pytest.fixture
def datanet(datanets: Any, system: Any) -> int:
    """Datanet 1 owned by carol with one committed snapshot (version 1)."""
    with boa.env.prank(system.carol):
        did = datanets.createDatanet("ipfs://priced", system.validators, 1, 0)
        datanets.commitSnapshot(did, h("s1"), 10, "ipfs://s1")
    return did


def set_prices(system: Any, did: int, export: int, train: int) -> None:
    with boa.env.prank(system.carol):
        system.datanets.setAccessPrices(did, export, train)


def set_bound(system: Any, bound: int) -> None:
    with boa.env.prank(system.deployer):
        system.params.setParam("max_access_price", bound)


# ---- setAccessPrices / accessPrices ---------------------------------------------------------


def test_prices_are_free_until_set(datanets: Any, datanet: int) -> None:
    assert datanets.accessPrices(datanet) == (0, 0)
    assert datanets.accessPrices(99) == (0, 0)  # unknown ids read as free
    assert datanets.accessCount() == 0


def test_owner_sets_prices(datanets: Any, system: Any, datanet: int) -> None:
    set_prices(system, datanet, 5 * OPEN, 20 * OPEN)
    (ev,) = events(datanets, "AccessPricesChanged")
    assert (ev.datanet_id, ev.export_price, ev.train_price) == (datanet, 5 * OPEN, 20 * OPEN)
    assert datanets.accessPrices(datanet) == (5 * OPEN, 20 * OPEN)
    set_prices(system, datanet, 0, 1_000 * OPEN)  # exactly the default bound
    assert datanets.accessPrices(datanet) == (0, 1_000 * OPEN)


def test_set_prices_reverts(datanets: Any, system: Any, datanet: int) -> None:
    for who in (system.alice, system.validators[0]):
        with boa.env.prank(who), boa.reverts("DatanetRegistry: not the datanet owner"):
            datanets.setAccessPrices(datanet, OPEN, OPEN)
    with boa.env.prank(system.carol):
        for did in (0, datanet + 1):
            with boa.reverts("DatanetRegistry: unknown datanet"):
                datanets.setAccessPrices(did, OPEN, OPEN)
        with boa.reverts("DatanetRegistry: price above maximum"):
            datanets.setAccessPrices(datanet, 1_000 * OPEN + 1, 0)
        with boa.reverts("DatanetRegistry: price above maximum"):
            datanets.setAccessPrices(datanet, 0, 2**256 - 1)
    assert datanets.accessPrices(datanet) == (0, 0)


def test_the_bound_is_read_at_call_time(datanets: Any, system: Any, datanet: int) -> None:
    """A governance change of ``max_access_price`` applies at once: prices above a lowered
    bound are charged at the bound, and raising it again restores them."""
    set_prices(system, datanet, 50 * OPEN, 80 * OPEN)
    set_bound(system, 60 * OPEN)
    assert datanets.accessPrices(datanet) == (50 * OPEN, 60 * OPEN)
    with boa.env.prank(system.carol), boa.reverts("DatanetRegistry: price above maximum"):
        datanets.setAccessPrices(datanet, 50 * OPEN, 80 * OPEN)
    set_bound(system, 0)
    assert datanets.accessPrices(datanet) == (0, 0)
    set_bound(system, 1_000 * OPEN)
    assert datanets.accessPrices(datanet) == (50 * OPEN, 80 * OPEN)


# ---- payAccess ------------------------------------------------------------------------------


def test_pay_access(datanets: Any, token: Any, system: Any, datanet: int) -> None:
    set_prices(system, datanet, 5 * OPEN, 20 * OPEN)
    dist = system.distributor.address
    payer = system.alice
    system.approve(payer, datanets.address, 25 * OPEN)
    before, dist_before = token.balanceOf(payer), token.balanceOf(dist)
    with boa.env.prank(payer):
        first = datanets.payAccess(datanet, 1, EXPORT)
    (ev,) = events(datanets, "AccessPaid")
    assert (ev.access_id, ev.payer, ev.datanet_id, ev.version, ev.kind, ev.amount) == (
        1,
        payer,
        datanet,
        1,
        EXPORT,
        5 * OPEN,
    )
    with boa.env.prank(payer):
        second = datanets.payAccess(datanet, 1, TRAIN)
    (ev,) = events(datanets, "AccessPaid")
    assert (ev.access_id, ev.kind, ev.amount) == (2, TRAIN, 20 * OPEN)
    assert (first, second, datanets.accessCount()) == (1, 2, 2)
    assert token.balanceOf(payer) == before - 25 * OPEN
    assert token.balanceOf(dist) == dist_before + 25 * OPEN
    assert token.balanceOf(datanets.address) == 0  # nothing stays in the registry
    assert token.allowance(payer, datanets.address) == 0


def test_pay_access_charges_the_capped_price(
    datanets: Any, token: Any, system: Any, datanet: int
) -> None:
    set_prices(system, datanet, 0, 80 * OPEN)
    set_bound(system, 30 * OPEN)
    system.approve(system.bob, datanets.address)
    before = token.balanceOf(system.bob)
    with boa.env.prank(system.bob):
        datanets.payAccess(datanet, 1, TRAIN)
    assert events(datanets, "AccessPaid")[0].amount == 30 * OPEN
    assert token.balanceOf(system.bob) == before - 30 * OPEN


def test_pay_access_reverts(datanets: Any, token: Any, system: Any, datanet: int) -> None:
    set_prices(system, datanet, 5 * OPEN, 0)
    payer = system.alice
    with boa.env.prank(payer), boa.reverts("OpenToken: insufficient allowance"):
        datanets.payAccess(datanet, 1, EXPORT)
    system.approve(payer, datanets.address, 5 * OPEN - 1)
    with boa.env.prank(payer), boa.reverts("OpenToken: insufficient allowance"):
        datanets.payAccess(datanet, 1, EXPORT)
    system.approve(payer, datanets.address)
    with boa.env.prank(payer):
        for did in (0, datanet + 1):
            with boa.reverts("DatanetRegistry: unknown datanet"):
                datanets.payAccess(did, 1, EXPORT)
        for version in (0, 2):
            with boa.reverts("DatanetRegistry: unknown snapshot"):
                datanets.payAccess(datanet, version, EXPORT)
        for kind in (2, 255):
            with boa.reverts("DatanetRegistry: unknown access kind"):
                datanets.payAccess(datanet, 1, kind)
        with boa.reverts("DatanetRegistry: access is free"):
            datanets.payAccess(datanet, 1, TRAIN)
    poor = addr("poor")
    system.approve(poor, datanets.address)
    with boa.env.prank(poor), boa.reverts("OpenToken: transfer amount exceeds balance"):
        datanets.payAccess(datanet, 1, EXPORT)
    assert datanets.accessCount() == 0
    assert token.balanceOf(system.distributor.address) == 0


def test_a_datanet_without_snapshots_cannot_be_paid(datanets: Any, system: Any) -> None:
    with boa.env.prank(system.carol):
        did = datanets.createDatanet("ipfs://empty", system.validators, 1, 0)
        datanets.setAccessPrices(did, OPEN, OPEN)
    system.approve(system.alice, datanets.address)
    with boa.env.prank(system.alice), boa.reverts("DatanetRegistry: unknown snapshot"):
        datanets.payAccess(did, 1, EXPORT)


def test_fees_fund_the_distributors_roots(
    datanets: Any, token: Any, system: Any, datanet: int
) -> None:
    """What payAccess pays counts as received by the distributor: a root whose total is the
    fees can be posted, one wei more cannot."""
    set_prices(system, datanet, 7 * OPEN, 0)
    system.approve(system.alice, datanets.address)
    with boa.env.prank(system.alice):
        datanets.payAccess(datanet, 1, EXPORT)
    dist = system.distributor
    with boa.env.prank(system.operator):
        with boa.reverts("RewardDistributor: total exceeds funds"):
            dist.postRoot(1, h("root"), 7 * OPEN + 1, h("head"))
        dist.postRoot(1, h("root"), 7 * OPEN, h("head"))


def test_token_returning_false(factories: Any, false_token: Any, system: Any) -> None:
    with boa.env.prank(addr("false-token-access-deployer")):
        reg = factories["DatanetRegistry"].deploy(
            false_token.address, system.params.address, system.distributor.address
        )
    with boa.env.prank(system.carol):
        did = reg.createDatanet("u", system.validators, 1, 0)
        reg.commitSnapshot(did, h("s"), 1, "u")
        reg.setAccessPrices(did, OPEN, 0)
    false_token.mint(system.alice, 10 * OPEN)
    false_token.set_fail(True)
    with boa.env.prank(system.alice), boa.reverts("DatanetRegistry: transfer failed"):
        reg.payAccess(did, 1, EXPORT)
    assert reg.accessCount() == 0
