"""``paper_trade``: going live, stepping, stopping and the replay's printed trades."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from predictor.models import PaperAccount, PaperSignal, TrainingSession
from tests.predictor.conftest import T0, store_candles

pytestmark = pytest.mark.django_db
HOUR = 3600


def _run(*args: str) -> str:
    out = StringIO()
    call_command("paper_trade", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.fixture
def session(trained_session: Callable[..., TrainingSession]) -> TrainingSession:
    return trained_session(arch="ridge", target="return", horizon=2)


def test_live_on_freezes_the_given_rules_and_step_trades_new_bars(session):
    out = _run(
        "-T",
        str(session.pk),
        "--live",
        "on",
        "--theta",
        "0",
        "--fee",
        "0.002",
        "--mode",
        "overlapping",
    )
    assert "is live on paper" in out
    assert "θ 0 (given)" in out
    account = PaperAccount.objects.get(session=session)
    assert (account.live, account.fee, account.mode, account.horizon) == (
        True,
        0.002,
        "overlapping",
        2,
    )
    store_candles(session.markets.get(), 405, seed=0)  # the same walk, five bars longer
    # The bar it went live on makes the first forecast at its close, then the five new ones.
    assert "6 new bar(s) traded" in _run("-T", str(session.pk), "--step")
    assert PaperSignal.objects.filter(session=session).count() == 6
    assert "stopped paper trading" in _run("-T", str(session.pk), "--live", "off")
    with pytest.raises(CommandError, match="not live"):
        _run("-T", str(session.pk), "--step")


def test_replay_prints_each_trade_and_the_totals_of_the_backtest(session):
    from predictor.services.paper import PaperRules, paper_replay

    start, end = (
        dt.datetime.fromtimestamp(T0 + 300 * HOUR, dt.UTC),
        dt.datetime.fromtimestamp(T0 + 399 * HOUR, dt.UTC),
    )
    out = _run(
        "-T",
        str(session.pk),
        "--replay",
        "--theta",
        "0",
        "--start",
        start.isoformat(),
        "--end",
        end.isoformat(),
    )
    expected = paper_replay(session, start, end, PaperRules(0.0, 2, 0.001, 0.0, "non_overlapping"))
    lines = out.splitlines()
    assert lines[0].startswith("Replay 2024-01-13 12:00 – 2024-01-17 15:00 UTC, 100 bar(s): θ 0")
    assert len(lines) == 3 + len(expected.trades)
    assert len(expected.trades) > 10
    first = expected.trades[0].holding
    assert f"{first.net_return * 100:+8.4f}" in lines[2]
    assert f"total return {expected.total_return * 100:+.4f} %" in lines[-1]
    assert not PaperSignal.objects.exists()  # a replay writes nothing


def test_user_errors_say_what_to_do(session, trained_session, make_market):
    with pytest.raises(CommandError, match="--replay needs --start and --end"):
        _run("-T", str(session.pk), "--replay", "--theta", "0")
    with pytest.raises(CommandError, match="no stored validation report"):
        _run("-T", str(session.pk), "--live", "on")
    with pytest.raises(CommandError, match="never went live"):
        _run("-T", str(session.pk), "--replay", "--start", "2024-01-10", "--end", "2024-01-12")
    production = trained_session(market=make_market("ETHUSDT"), evaluation=False, val_split=0.0)
    with pytest.raises(CommandError, match="production session"):
        _run("-T", str(production.pk), "--live", "on")
