"""Session and report reads: the API's filtered lists and the pages' lists."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User

from predictor.ml.config import TrainConfig
from predictor.models import EvaluationReport, Market, SessionMode, Sweep, TrainingSession
from predictor.selectors.sessions import (
    default_session,
    evaluation_session_list,
    production_session_list,
    report_list,
    session_detail_list,
    session_list,
    session_report_list,
    trial_count,
)
from predictor.services.sessions import session_create
from tests.predictor.conftest import TINY
from tests.predictor.pages_data import make_session, store_predictions

pytestmark = pytest.mark.django_db


def _ids(rows: Any) -> list[str]:
    return [str(row.pk) for row in rows]


@pytest.fixture
def markets(make_market: Callable[..., Market]) -> tuple[Market, Market]:
    return make_market("BTCUSDT", 60), make_market("ETHUSDT", 60, seed=1)


def test_session_list_is_newest_first_and_narrowed_by_each_filter(
    markets: tuple[Market, Market],
) -> None:
    btc, eth = markets
    old = make_session(btc, evaluation=True, arch="cnn")
    new = make_session(eth, evaluation=False, status="queued")
    assert _ids(session_list()) == [str(new.pk), str(old.pk)]
    assert _ids(session_list(status="succeeded")) == [str(old.pk)]
    assert _ids(session_list(mode=SessionMode.PRODUCTION)) == [str(new.pk)]
    assert _ids(session_list(arch="cnn")) == [str(old.pk)]
    assert _ids(session_list(symbol="ethusdt")) == [str(new.pk)]
    assert _ids(session_list(exchange="binance", status="queued")) == [str(new.pk)]
    assert list(session_list(symbol="ethusdt", status="succeeded")) == []
    assert list(session_list(exchange="kraken")) == []


def test_session_list_shows_every_users_sessions_with_their_owner_in_the_same_query(
    markets: tuple[Market, Market], django_assert_num_queries: Any
) -> None:
    btc, _ = markets
    alice = User.objects.create_user("alice")
    make_session(btc, evaluation=True)
    owned = session_create(TrainConfig(**TINY), symbols=["BTCUSDT"], exchange="binance", user=alice)
    assert session_list().count() == 2  # reads are public: the CLI's session and alice's
    with django_assert_num_queries(1):
        owners = {str(s.pk): s.created_by for s in session_list()}
    assert owners[str(owned.pk)] == alice
    assert set(owners.values()) == {alice, None}


def test_session_detail_list_holds_every_session_with_its_markets_prefetched(
    markets: tuple[Market, Market], django_assert_num_queries: Any
) -> None:
    btc, eth = markets
    one, two = make_session(btc, evaluation=True), make_session(eth, evaluation=False)
    with django_assert_num_queries(2):
        found = {str(s.pk): [m.symbol for m in s.markets.all()] for s in session_detail_list()}
    assert found == {str(one.pk): ["BTCUSDT"], str(two.pk): ["ETHUSDT"]}


def test_trial_count_counts_trained_configurations_by_market_target_and_source(
    markets: tuple[Market, Market],
) -> None:
    btc, eth = markets
    make_session(btc, evaluation=True, target="return")
    make_session(btc, evaluation=True, target="return", seed=7)  # a re-run is a new trial
    make_session(btc, evaluation=True, target="return", status="failed")  # never trained
    make_session(btc, evaluation=False, target="return")  # production: not a trial
    make_session(btc, evaluation=True, target="logreturn")  # another target
    make_session(eth, evaluation=True, target="return")  # another market
    sweep = Sweep.objects.create(base={}, space={}, method="grid", n_trials=3, objective="val_ic")
    for number, status in enumerate(["succeeded", "succeeded", "cancelled"]):
        trial = make_session(btc, evaluation=True, target="return", status=status)
        TrainingSession.objects.filter(pk=trial.pk).update(sweep=sweep, trial_number=number)
    walk = make_session(btc, evaluation=True, target="return")
    TrainingSession.objects.filter(pk=walk.pk).update(mode=SessionMode.WALK_FORWARD)

    count = trial_count(btc, "return")
    assert (count.sessions, count.sweep_trials, count.sweeps, count.walk_forward) == (2, 2, 1, 1)
    assert count.total == 5
    assert "5 trained evaluation configuration(s) on BTCUSDT for target return" in count.text()
    assert "2 sweep trial(s) from 1 sweep(s), 1 walk-forward session(s)" in count.text()
    assert trial_count(btc, "logreturn").total == 1
    assert trial_count(eth, "return").total == 1
    assert trial_count(eth, "price").total == 0


def test_page_lists_split_production_from_succeeded_evaluations_with_their_counts(
    markets: tuple[Market, Market],
) -> None:
    btc, _ = markets
    live = make_session(btc, evaluation=False)
    n = store_predictions(live, btc)
    evaluated = make_session(btc, evaluation=True)
    make_session(btc, evaluation=True, status="failed")
    EvaluationReport.objects.create(session=evaluated, split="test", report={})
    [production] = production_session_list()
    assert (production.pk, production.n_predictions) == (live.pk, n)
    [evaluation] = evaluation_session_list()
    assert (evaluation.pk, evaluation.n_reports) == (evaluated.pk, 1)


def test_default_session_is_the_newest_with_something_to_show_else_the_newest() -> None:
    empty, shown, older = TrainingSession(), TrainingSession(), TrainingSession()
    empty.n_reports, shown.n_reports, older.n_reports = 0, 2, 1  # type: ignore[attr-defined]
    assert default_session([empty, shown, older], "n_reports") is shown
    empty.n_reports = 0  # type: ignore[attr-defined]
    assert default_session([empty], "n_reports") is empty
    assert default_session([], "n_reports") is None


def test_reports_read_out_of_sample_first_and_filter_by_session_and_split(
    markets: tuple[Market, Market],
) -> None:
    btc, eth = markets
    one, two = make_session(btc, evaluation=True), make_session(eth, evaluation=True)
    for split in ("validation", "training", "test", "spa"):
        EvaluationReport.objects.create(session=one, split=split, report={})
    other = EvaluationReport.objects.create(session=two, split="test", report={})
    assert [r.split for r in session_report_list(one)] == ["test", "spa", "validation", "training"]
    assert report_list()[0] == other  # newest first
    assert report_list().count() == 5
    assert {r.split for r in report_list(session=one.pk)} == {
        "validation",
        "training",
        "test",
        "spa",
    }
    assert [r.session_id for r in report_list(split="test")] == [two.pk, one.pk]
    assert list(report_list(session=two.pk, split="spa")) == []
