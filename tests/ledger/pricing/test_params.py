"""ParamsCache: one ``version()`` call per ttl, a full re-read only when the version moved."""

from __future__ import annotations

import threading
from dataclasses import replace

from openledger.chain.bindings import Params
from openledger.ledger.pricing.fees import FeeSplit
from openledger.ledger.pricing.params import LedgerParams, ParamsCache
from openledger.units import OPEN

BASE = Params(
    version=1,
    treasury="0x" + "7e" * 20,
    platform_bps=1_000,
    owner_bps=2_000,
    stakers_bps=2_000,
    contributors_bps=5_000,
    min_stake=10 * OPEN,
    slash_bps=5_000,
    stake_unlock_delay=86_400,
    epoch_length=3_600,
    max_file_bytes=10_000_000,
    max_files_per_day=20,
    escrow_withdraw_delay=86_400,
    root_activation_delay=3_600,
    min_deposit=OPEN,
)


class FakeChain:
    """ProtocolParams as the cache sees it: a version and a snapshot, with call counts."""

    def __init__(self) -> None:
        self.params = BASE
        self.version_calls = 0
        self.snapshot_calls = 0

    def version(self) -> int:
        self.version_calls += 1
        return self.params.version

    def snapshot(self) -> Params:
        self.snapshot_calls += 1
        return self.params

    def change(self, **values: int) -> None:
        self.params = replace(self.params, version=self.params.version + 1, **values)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def make(ttl: float = 5.0) -> tuple[ParamsCache, FakeChain, Clock]:
    chain, clock = FakeChain(), Clock()
    return ParamsCache(chain.version, chain.snapshot, ttl=ttl, clock=clock), chain, clock


def test_from_snapshot_maps_every_field() -> None:
    p = LedgerParams.from_snapshot(BASE)
    assert p == LedgerParams(
        split=FeeSplit(1_000, 2_000, 2_000, 5_000, version=1),
        treasury=BASE.treasury,
        epoch_length=3_600,
        min_deposit=OPEN,
        escrow_withdraw_delay=86_400,
        root_activation_delay=3_600,
    )


def test_reads_once_then_asks_only_for_the_version_once_per_ttl() -> None:
    cache, chain, clock = make(ttl=5.0)
    first = cache.current()
    assert (chain.snapshot_calls, chain.version_calls) == (1, 0)
    for dt in (0.0, 1.0, 4.999):
        clock.now = 1_000.0 + dt
        assert cache.current() is first
    assert (chain.snapshot_calls, chain.version_calls) == (1, 0)  # within the ttl: no calls
    clock.now = 1_005.0
    assert cache.current() is first  # the version did not move: no re-read
    assert (chain.snapshot_calls, chain.version_calls) == (1, 1)
    clock.now = 1_009.0
    assert cache.current() is first  # the ttl restarts from the last check
    assert chain.version_calls == 1
    clock.now = 1_010.0
    cache.current()
    assert (chain.snapshot_calls, chain.version_calls) == (1, 2)


def test_a_changed_version_is_seen_only_after_the_ttl() -> None:
    cache, chain, clock = make(ttl=5.0)
    assert cache.current().min_deposit == OPEN
    chain.change(min_deposit=5 * OPEN, platform_bps=500, contributors_bps=5_500)
    clock.now += 4.0
    stale = cache.current()
    assert stale.min_deposit == OPEN and stale.split.version == 1  # cached until the ttl
    clock.now += 1.0
    fresh = cache.current()
    assert fresh.min_deposit == 5 * OPEN
    assert fresh.split == FeeSplit(500, 2_000, 2_000, 5_500, version=2)
    assert (chain.snapshot_calls, chain.version_calls) == (2, 1)
    clock.now += 5.0
    assert cache.current() is fresh
    assert chain.snapshot_calls == 2


def test_invalidate_forces_a_read_at_once() -> None:
    cache, chain, clock = make(ttl=60.0)
    cache.current()
    chain.change(epoch_length=7_200)
    cache.invalidate()
    assert cache.current().epoch_length == 7_200  # before the ttl, without asking the version
    assert (chain.snapshot_calls, chain.version_calls) == (2, 0)
    cache.invalidate()
    cache.invalidate()
    cache.current()
    assert chain.snapshot_calls == 3


def test_concurrent_first_reads_read_once() -> None:
    cache, chain, _ = make()
    start = threading.Barrier(16)
    seen: list[LedgerParams] = []

    def read() -> None:
        start.wait()
        seen.append(cache.current())

    threads = [threading.Thread(target=read) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert chain.snapshot_calls == 1 and len(seen) == 16
    assert all(s is seen[0] for s in seen)
