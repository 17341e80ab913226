"""ledger/settlement/timeline.py: an account's earnings per epoch with names."""

from __future__ import annotations

from openledger.ledger.settlement.timeline import earnings_view, names, timeline


def test_timeline_orders_epochs_numerically_with_the_open_one_last() -> None:
    by_epoch = {"open": "5", "10": "3", "2": "1"}
    epochs = [
        {"epoch": 2, "settled_at": "2025-01-02", "created_at": "2025-01-01"},
        {"epoch": 10, "settled_at": None, "created_at": "2025-01-10"},
    ]
    assert timeline(by_epoch, epochs) == [
        {"epoch": "2", "amount": "1", "at": "2025-01-02"},  # settled: when
        {"epoch": "10", "amount": "3", "at": "2025-01-10"},  # not yet: when created
        {"epoch": "open", "amount": "5", "at": None},
    ]


def test_timeline_of_an_epoch_this_node_does_not_know_has_no_time() -> None:
    assert timeline({"7": "2"}, []) == [{"epoch": "7", "amount": "2", "at": None}]
    assert timeline({}, [{"epoch": 1, "settled_at": "x"}]) == []


def test_names_key_datanets_and_models_by_their_ids_as_strings() -> None:
    assert names([{"id": 1, "name": "docs"}], [{"id": 3, "name": "m"}]) == {
        "datanet": {"1": "docs"},
        "model": {"3": "m"},
    }


def test_earnings_view_keeps_the_earnings_and_adds_names_and_timeline() -> None:
    earnings = {"total": "4", "by_epoch": {"1": "4"}}
    view = earnings_view(
        earnings,
        datanets=[{"id": 1, "name": "docs"}],
        models=[],
        epochs=[{"epoch": 1, "settled_at": "t", "created_at": "c"}],
    )
    assert list(view) == ["earnings", "names", "timeline"]
    assert view["earnings"] is earnings
    assert view["names"] == {"datanet": {"1": "docs"}, "model": {}}
    assert view["timeline"] == [{"epoch": "1", "amount": "4", "at": "t"}]
