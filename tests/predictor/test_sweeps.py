"""Sweeps: trials are evaluation sessions judged on validation; only the winner's test is read."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from predictor.models import (
    EvaluationReport,
    Market,
    Prediction,
    SessionStatus,
    Sweep,
    TrainingSession,
)
from predictor.services.runs import RunRequest
from predictor.services.sessions import TrainingError
from predictor.services.split_inputs import EvaluationError
from predictor.services.sweep_spa import sweep_reality_check
from predictor.services.sweeps import (
    SweepRequest,
    sweep_cancel,
    sweep_create,
    sweep_progress,
    sweep_queue,
    sweep_resume,
    sweep_run_here,
    sweep_trial_run,
    trial_params,
)

pytestmark = pytest.mark.django_db

BASE = {"arch": "ridge", "target": "return", "interval": "1h", "val_split": 0.15, "horizon": 4}


@pytest.fixture
def market(make_market: Callable[..., Market]) -> Market:
    return make_market("BTCUSDT", 500)


def _request(**kwargs: Any) -> SweepRequest:
    given = {**BASE, **kwargs.pop("given", {})}
    defaults: dict[str, Any] = {
        "space": {"window": [8, 16]},
        "method": "grid",
        "objective": "val_ic",
    }
    return SweepRequest(base=RunRequest(given=given, symbols=["BTCUSDT"]), **{**defaults, **kwargs})


def _test_predicted(sweep: Sweep) -> set[int]:
    return set(
        Prediction.objects.filter(session__sweep=sweep, split="test").values_list(
            "session__trial_number", flat=True
        )
    )


def test_grid_sweep_trains_every_combination_and_judges_only_the_winner_on_test(
    market: Market,
) -> None:
    sweep = sweep_create(_request(space={"window": [8, 16], "learning_rate": [0.5, 5.0]}))
    assert sweep.n_trials == 4
    sweep = sweep_run_here(sweep)

    assert sweep.status == SessionStatus.SUCCEEDED, sweep.error
    trials = list(sweep.trials.order_by("trial_number"))
    assert [t.trial_number for t in trials] == [0, 1, 2, 3]
    assert [trial_params(sweep, t) for t in trials] == [
        {"window": 8, "learning_rate": 0.5},
        {"window": 8, "learning_rate": 5.0},
        {"window": 16, "learning_rate": 0.5},
        {"window": 16, "learning_rate": 5.0},
    ]
    assert all(t.status == SessionStatus.SUCCEEDED for t in trials)
    assert all(t.mode == "evaluation" for t in trials)
    best = max(trials, key=lambda t: (t.objective_value, -t.trial_number))  # IC: higher wins
    assert sweep.winner == best
    # The winner's test split is forecast and reported; no other trial's test was touched.
    assert _test_predicted(sweep) == {best.trial_number}
    test = EvaluationReport.objects.get(session=best, split="test")
    # The deflated Sharpe ratio allows for every trial of the sweep, not for one session.
    assert test.n_trials == 4
    assert test.report["n_trials_sources"]["sweep_trials"] == 4
    assert "4 sweep trial(s) from 1 sweep(s)" in test.report["n_trials_counts"]
    assert (
        not EvaluationReport.objects.filter(session__sweep=sweep, split="test")
        .exclude(session=best)
        .exists()
    )


def test_val_loss_winner_is_the_lowest(market: Market) -> None:
    sweep = sweep_create(
        _request(
            given={"arch": "lstm", "units": 4, "epochs": 1, "batch_size": 32, "xla": False},
            space={"window": [8, 12]},
            objective="val_loss",
        )
    )
    sweep = sweep_run_here(sweep)
    assert sweep.status == SessionStatus.SUCCEEDED, sweep.error
    values = {t.trial_number: t.objective_value for t in sweep.trials.all()}
    assert sweep.winner is not None
    assert sweep.winner.objective_value == min(values.values())
    for trial in sweep.trials.all():  # each trial's objective is its best validation loss
        assert trial.objective_value == min(h["val_loss"] for h in trial.history)


def test_random_sweep_draws_are_seeded(market: Market) -> None:
    space = {"window": {"low": 6, "high": 20}, "learning_rate": {"low": 0.1, "high": 10.0, "log": True}}  # fmt: skip
    one = sweep_create(_request(space=space, method="random", n_trials=3, seed=7))
    two = sweep_create(_request(space=space, method="random", n_trials=3, seed=7))
    three = sweep_create(_request(space=space, method="random", n_trials=3, seed=8))

    def drawn(sweep: Sweep) -> list[dict[str, Any]]:
        return [trial_params(sweep, t) for t in sweep.trials.order_by("trial_number")]

    assert drawn(one) == drawn(two)
    assert drawn(one) != drawn(three)
    assert all(6 <= p["window"] <= 20 and 0.1 <= p["learning_rate"] <= 10 for p in drawn(one))


def test_tpe_keeps_parallel_trials_in_flight_and_asks_until_the_count(market: Market) -> None:
    sweep = sweep_create(
        _request(space={"window": {"low": 6, "high": 24}}, method="tpe", n_trials=4, parallel=2)
    )
    assert sweep.trials.count() == 2  # only `parallel` asked before any result exists
    seen: list[int] = []
    sweep = sweep_run_here(sweep, on_trial=lambda t: seen.append(sweep.trials.count()))
    assert sweep.status == SessionStatus.SUCCEEDED, sweep.error
    assert sweep.trials.count() == 4
    assert seen == [3, 4, 4, 4]  # each ended trial let one more in, never past the count
    assert sweep_progress(sweep)["done"] == 4


def test_a_refused_request_stores_nothing(market: Market) -> None:
    with pytest.raises(TrainingError, match="records no validation loss") as err:
        sweep_create(_request(objective="val_loss"))  # ridge has no validation loss
    assert err.value.field == "objective"
    with pytest.raises(TrainingError, match="window=0") as err:
        sweep_create(_request(space={"window": [8, 0]}))
    assert err.value.field == "window"
    with pytest.raises(TrainingError, match="cannot vary"):
        sweep_create(_request(space={"target": ["return", "logreturn"]}))
    assert not Sweep.objects.exists()
    assert not TrainingSession.objects.exists()


def test_cancel_stops_queued_trials_and_resume_finishes_them(market: Market) -> None:
    sweep = sweep_create(_request(space={"window": [8, 12, 16]}))
    sweep = sweep_cancel(sweep)
    assert sweep.status == SessionStatus.CANCELLED
    assert set(sweep.trials.values_list("status", flat=True)) == {SessionStatus.CANCELLED}
    with pytest.raises(TrainingError, match="only a running one"):
        sweep_cancel(sweep)

    sweep = sweep_resume(sweep, queue=False)
    assert sweep.status == SessionStatus.RUNNING
    assert set(sweep.trials.values_list("status", flat=True)) == {SessionStatus.QUEUED}
    sweep = sweep_run_here(sweep)
    assert sweep.status == SessionStatus.SUCCEEDED, sweep.error
    assert sweep.trials.filter(status=SessionStatus.SUCCEEDED).count() == 3
    with pytest.raises(TrainingError, match="nothing to resume"):
        sweep_resume(sweep)


def test_a_sweep_whose_trials_all_fail_says_why(market: Market) -> None:
    # 500 candles cannot fill one window of 600 bars: every trial fails to train.
    sweep = sweep_create(_request(space={"window": [600, 700]}))
    sweep = sweep_run_here(sweep)
    assert sweep.status == SessionStatus.FAILED
    assert sweep.winner is None
    assert "no trial has a validation objective" in sweep.error
    assert "trial 0" in sweep.error
    assert "trial 1" in sweep.error


@pytest.fixture
def eager(settings: Any) -> Iterator[None]:
    from cryptooracle.celery import app

    settings.CELERY_TASK_ALWAYS_EAGER = True
    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


@pytest.mark.django_db(transaction=True)
def test_queued_sweep_runs_as_a_celery_group_of_trial_tasks(
    make_market: Callable[..., Market], eager: None
) -> None:
    make_market("BTCUSDT", 500)
    sweep = sweep_create(_request(method="tpe", space={"window": [8, 12, 16]}, n_trials=3))
    sweep_queue(sweep)
    sweep.refresh_from_db()
    assert sweep.status == SessionStatus.SUCCEEDED, sweep.error
    assert sweep.trials.count() == 3
    assert all(t.celery_task_id for t in sweep.trials.all())  # each trained by its own task
    assert sweep.winner is not None
    assert _test_predicted(sweep) == {sweep.winner.trial_number}


def test_command_runs_a_grid_and_names_the_winner(market: Market) -> None:
    out = StringIO()
    call_command(
        "sweep", "-N", "BTCUSDT", "--arch", "ridge", "--target", "return", "-I", "1h",
        "--val-split", "0.15", "--horizon", "4", "--grid", "window=8,12",
        "features=returns,returns+time", "--objective", "val_ic", stdout=out,
    )  # fmt: skip
    text = out.getvalue()
    sweep = Sweep.objects.get()
    assert sweep.n_trials == 4
    assert sweep.space["features"] == {"values": [["returns"], ["returns", "time"]]}
    assert f"trial {sweep.winner.trial_number}" in text
    assert "Winner on validation" in text
    assert f"evaluate -T {sweep.winner.id}" in text


def test_command_errors_name_the_flag_and_store_nothing(market: Market) -> None:
    with pytest.raises(CommandError, match="-U/--neurons: units='four'"):
        call_command("sweep", "-N", "BTCUSDT", "--grid", "units=four")
    with pytest.raises(CommandError, match="-W/--window-length: window='0': 0 must be at least 1"):
        call_command("sweep", "-N", "BTCUSDT", "--arch", "ridge", "--grid", "window=0,8")
    with pytest.raises(CommandError, match="--objective"):
        call_command("sweep", "-N", "BTCUSDT", "--arch", "ridge", "--grid", "window=8")
    assert not Sweep.objects.exists()


def test_an_objective_on_too_few_validation_forecasts_is_refused(market: Market) -> None:
    # Windows of 450 bars leave a handful of validation forecasts: no IC is read from them.
    sweep = sweep_create(_request(space={"window": [440, 450]}))
    sweep = sweep_run_here(sweep)
    assert sweep.status == SessionStatus.FAILED
    trials = list(sweep.trials.all())
    assert all(t.status == SessionStatus.SUCCEEDED and t.objective_value is None for t in trials)
    assert all("θ is chosen on at least" in t.error or "real forecasts" in t.error for t in trials)
    assert not Prediction.objects.filter(session__sweep=sweep, split="test").exists()


def test_spa_across_the_trials_reads_validation_only_and_is_stored(market: Market) -> None:
    sweep = sweep_create(_request(space={"window": [8, 12, 16]}))
    with pytest.raises(EvaluationError, match="run SPA once it has ended"):
        sweep_reality_check(sweep, reps=100)
    sweep = sweep_run_here(sweep)
    assert sweep.status == SessionStatus.SUCCEEDED, sweep.error
    report = sweep_reality_check(sweep, reps=200)

    assert set(report.sessions) == {str(t.pk) for t in sweep.trials.all()}
    assert report.benchmark.startswith("no change")
    assert report.extra["split"] == "validation"
    assert report.result.n_models == 3
    assert report.result.block_size >= 4 * BASE["horizon"]  # overlapping 4-bar forecasts
    # Random-walk candles: no trial knows anything, and SPA does not say otherwise.
    assert not report.result.significant
    sweep.refresh_from_db()
    assert sweep.spa["p_value"] == report.result.p_value
    # Still only the winner's test split was ever forecast.
    assert _test_predicted(sweep) == {sweep.winner.trial_number}


def test_a_trained_trial_still_being_scored_keeps_the_sweep_open(market: Market) -> None:
    # Two workers: trial 1 trained (succeeded) but its task is still scoring it when
    # trial 0's task ends. The sweep must wait for that score, not finish without it.
    sweep = sweep_create(_request(space={"window": [8, 12]}))
    sweep_trial_run(sweep.trials.get(trial_number=1).pk, queue=False)
    scored = sweep.trials.get(trial_number=1)
    TrainingSession.objects.filter(pk=scored.pk).update(objective_value=None)  # mid-scoring
    sweep_trial_run(sweep.trials.get(trial_number=0).pk, queue=False)
    sweep.refresh_from_db()
    assert sweep.status == SessionStatus.RUNNING
    # The scoring ends (here: the sweep runs what is left, as a resume would send it).
    sweep = sweep_run_here(sweep)
    assert sweep.status == SessionStatus.SUCCEEDED
    assert sweep.trials.filter(objective_value__isnull=True).count() == 0


def test_command_shows_resumes_and_runs_spa_on_a_sweep(market: Market, client: Any) -> None:
    sweep = sweep_create(_request(space={"window": [8, 12, 16]}))
    out = StringIO()
    call_command("sweep", "--cancel", str(sweep.pk), stdout=out)
    assert "[cancelled]" in out.getvalue()
    out = StringIO()
    call_command("sweep", "--resume", str(sweep.pk), stdout=out)  # runs the rest here
    sweep.refresh_from_db()
    assert sweep.status == SessionStatus.SUCCEEDED
    assert "Winner on validation" in out.getvalue()

    page = client.get(f"/sweeps/{sweep.pk}/").content.decode()
    assert f"sweep --spa {sweep.pk}" in page  # not run yet: the page says how
    out = StringIO()
    call_command("sweep", "--spa", str(sweep.pk), "--reps", "100", stdout=out)
    assert f"SPA across 3 trial(s) of sweep {sweep.pk}" in out.getvalue()
    assert "no change" in out.getvalue()
    page = client.get(f"/sweeps/{sweep.pk}/").content.decode()
    assert 'data-field="spa"' in page
    with pytest.raises(CommandError, match="no sweep"):
        call_command("sweep", "--show", "00000000-0000-0000-0000-000000000000")


def test_the_page_says_the_winner_is_being_judged_until_its_report_exists(
    market: Market, client: Any
) -> None:
    sweep = sweep_run_here(sweep_create(_request(space={"window": [8, 12]})))
    assert sweep.winner is not None
    EvaluationReport.objects.filter(session=sweep.winner).delete()
    Sweep.objects.filter(pk=sweep.pk).update(status=SessionStatus.RUNNING, finished=None)
    page = client.get(f"/sweeps/{sweep.pk}/").content.decode()
    assert 'data-field="judging"' in page
    assert 'data-field="report-link"' not in page
