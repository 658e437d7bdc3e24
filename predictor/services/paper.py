"""Paper trading: a trained session trades its forecasts bar by bar through the position engine.

:func:`paper_start` freezes θ (from the session's stored validation report, or
another session's, or given), the horizon, costs and holding mode. Each
:func:`paper_step` takes every *closed* bar after the last one processed, in time
order, and per bar and market: steps the engine with the bar's open and the
signal made at the previous close, forecasts at this bar's close, and stores the
signal, the fills and the closed holdings with the new state, all in one
transaction under a row lock on the account. A crash leaves whole bars; a
redelivered task, a second worker or a restart finds the bar done and skips it;
missed ticks are caught up in order.

:func:`paper_replay` runs the same per-bar path over stored candles without
writing, knowing where the span ends (as a backtest does), so its trades are the
backtest's. Live, the end is unknown: a holding that a same-side signal
continues does not pay its exit, where a backtest cut off at that bar would
charge it; the trades agree on every holding that closed at least ``h`` bars
before the end of the span compared.

Orders are never routed to an exchange: fills are recorded at the bar's open
with the frozen fee and slippage.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db import transaction

from predictor.ml.evaluation.backtest import signals_from_forecast
from predictor.ml.evaluation.engine import ClosedHolding, EngineState, PositionEngine, Step
from predictor.ml.evaluation.paper_stats import realised_returns
from predictor.models import PaperAccount, PaperFill, PaperSignal, PaperTrade, TrainingSession
from predictor.services.notify import notify
from predictor.services.paper_accounts import (
    PaperError,
    PaperRules,
    fresh_state,
    paper_start,
    paper_stop,
)
from predictor.services.paper_bars import (
    MarketBars,
    bar_seconds,
    last_closed_bar,
    paper_bars,
    utc,
)

__all__ = [
    "PaperError",
    "PaperRules",
    "ReplayResult",
    "StepResult",
    "paper_replay",
    "paper_start",
    "paper_step",
    "paper_step_live",
    "paper_stop",
]


@dataclass(frozen=True)
class StepResult:
    bars: int  # bars processed, over all markets
    fills: int
    trades: int


@dataclass(frozen=True)
class ReplayTrade:
    symbol: str
    holding: ClosedHolding


@dataclass(frozen=True)
class ReplayResult:
    rules: PaperRules
    start: dt.datetime
    end: dt.datetime
    bars: int
    trades: list[ReplayTrade]

    @property
    def total_return(self) -> float:
        return trades_total_return(
            (t.symbol, t.holding.sleeve, t.holding.weight, t.holding.net_return)
            for t in sorted(self.trades, key=lambda t: (t.holding.exit_time, t.holding.sleeve))
        )


def trades_total_return(rows: Iterable[tuple[object, int, float, float]]) -> float:
    """The account's return once these ``(market, sleeve, weight, net)`` holdings closed."""
    returns = realised_returns(rows)
    return returns[-1] if returns else 0.0


# --- One bar ---------------------------------------------------------------------------------


def _advance(
    market: dict[str, Any], bars: MarketBars, i: int, rules: PaperRules, can_hold: bool = True
) -> tuple[dict[str, Any], Step, int]:
    """Bar ``i``: the engine takes its open and the pending signal, then its close signals."""
    engine = PositionEngine(rules.engine, EngineState.from_dict(market["engine"]))
    index = int(market["index"]) + 1
    time = int(bars.times[i])
    step = engine.step(
        index,
        float(bars.open[i]),
        real=bool(bars.real[i]),
        signal=int(market["signal"]),
        signal_real=bool(market["signal_real"]),
        can_hold=can_hold,
        time=time,
    )
    side = int(signals_from_forecast(bars.forecast[i : i + 1], rules.theta)[0])
    state = {
        "last_bar": time,
        "index": index,
        "signal": side,
        "signal_real": bool(bars.real[i]),
        "engine": engine.state.to_dict(),
    }
    return state, step, side


def _store(session: TrainingSession, bars: MarketBars, i: int, step: Step, side: int) -> None:
    forecast = float(bars.forecast[i])
    PaperSignal.objects.create(
        session=session,
        market_id=bars.market_id,
        bar_time=utc(int(bars.times[i])),
        forecast=forecast if np.isfinite(forecast) else None,
        side=side,
        real=bool(bars.real[i]),
    )
    common = {"session": session, "market_id": bars.market_id}
    PaperFill.objects.bulk_create(
        PaperFill(
            **common,
            sleeve=f.sleeve,
            leg=f.leg,
            side=f.side,
            time=utc(f.time),
            price=f.price,
            weight=f.weight,
            cost=f.cost,
        )
        for f in step.fills
    )
    PaperTrade.objects.bulk_create(
        PaperTrade(
            **common,
            sleeve=c.sleeve,
            side=c.side,
            weight=c.weight,
            signal_time=utc(c.entry_time - bar_seconds(session)),
            entry_time=utc(c.entry_time),
            exit_time=utc(c.exit_time),
            entry_price=c.entry_price,
            exit_price=c.exit_price,
            entry_traded=c.entry_traded,
            exit_traded=c.exit_traded,
            gross_return=c.gross_return,
            net_return=c.net_return,
            cost=c.cost,
        )
        for c in step.closed
    )


def _announce(session: TrainingSession, symbol: str, step: Step) -> None:
    for opened in step.opened:
        if opened.entry_traded:
            side = "long" if opened.side > 0 else "short"
            notify(
                "paper.open",
                f"{symbol}: paper {side} opened at {opened.entry_price:g}",
                session=str(session.pk),
                symbol=symbol,
                side=opened.side,
                price=opened.entry_price,
                time=opened.entry_time,
            )
    for closed in step.closed:
        if closed.exit_traded:
            notify(
                "paper.close",
                f"{symbol}: paper position closed at {closed.exit_price:g}, "
                f"net {closed.net_return * 100:+.2f} %",
                session=str(session.pk),
                symbol=symbol,
                net_return=closed.net_return,
                time=closed.exit_time,
            )


def _announcer(session: TrainingSession, symbol: str, step: Step) -> Callable[[], None]:
    return lambda: _announce(session, symbol, step)


def _commit_bar(session: TrainingSession, markets: dict[str, MarketBars], i: int) -> Step | None:
    """One bar of every market in one transaction; None when it was done already."""
    done: list[tuple[str, Step]] = []
    with transaction.atomic():
        account = PaperAccount.objects.select_for_update().get(pk=session.pk)
        if not account.live:
            return None
        rules = PaperRules.of(account)
        state = dict(account.state)
        for symbol, bars in markets.items():
            market = state[symbol]
            time = int(bars.times[i])
            if time <= int(market["last_bar"]):
                continue  # another run has stored it
            if time != int(market["last_bar"]) + bar_seconds(session):
                raise PaperError(f"{symbol}: bar {utc(time)} would skip a bar; nothing stored")
            state[symbol], step, side = _advance(market, bars, i, rules)
            _store(session, bars, i, step, side)
            done.append((symbol, step))
        if not done:
            return None
        account.state = state
        account.save(update_fields=["state", "updated"])
        for symbol, step in done:
            transaction.on_commit(_announcer(session, symbol, step))
    return done[0][1]


def paper_step(session: TrainingSession) -> StepResult:
    """Process every closed bar after the last processed one, in time order."""
    account = PaperAccount.objects.filter(session=session, live=True).first()
    if account is None:
        raise PaperError(f"session {session.pk} is not live: start paper trading first")
    until = last_closed_bar(session)
    after = min(int(m["last_bar"]) for m in account.state.values())
    if until is None or until <= after:
        return StepResult(0, 0, 0)
    markets = paper_bars(session, after, until)
    bars = fills = trades = 0
    for i in range(len(next(iter(markets.values())))):
        step = _commit_bar(session, markets, i)
        if step is not None:
            bars += 1
    fills = PaperFill.objects.filter(session=session, time__gt=utc(after)).count()
    trades = PaperTrade.objects.filter(session=session, exit_time__gt=utc(after)).count()
    return StepResult(bars, fills, trades)


def paper_step_live() -> dict[str, str]:
    """Step every live session; one session's failure is reported, not raised."""
    outcome = {}
    for account in PaperAccount.objects.filter(live=True).select_related("session"):
        try:
            result = paper_step(account.session)
            outcome[str(account.pk)] = f"{result.bars} bar(s)"
        except Exception as exc:  # one session's failure must not stop the others trading
            outcome[str(account.pk)] = f"failed: {exc}"
    return outcome


# --- Replay ----------------------------------------------------------------------------------


def paper_replay(
    session: TrainingSession,
    start: dt.datetime,
    end: dt.datetime,
    rules: PaperRules | None = None,
) -> ReplayResult:
    """The live path over stored bars in ``[start, end]``, written nowhere; the account's rules
    unless ``rules`` are given. Knowing the end, it opens no holding that would outlast it."""
    if rules is None:
        account = PaperAccount.objects.filter(session=session).first()
        if account is None:
            raise PaperError(f"session {session.pk} has no paper rules: start it or give them")
        rules = PaperRules.of(account)
    step = bar_seconds(session)
    first = -(-int(start.timestamp()) // step) * step
    last = int(end.timestamp()) // step * step
    newest = last_closed_bar(session)
    if newest is not None:
        last = min(last, newest)
    if last < first:
        raise PaperError("the replay span holds no closed bar")
    markets = paper_bars(session, first - step, last)
    trades: list[ReplayTrade] = []
    n = len(next(iter(markets.values())))
    for symbol, bars in markets.items():
        market = fresh_state(session, first)[symbol]
        for i in range(n):
            market, result, _ = _advance(
                market, bars, i, rules, can_hold=i + rules.horizon <= n - 1
            )
            trades.extend(ReplayTrade(symbol, c) for c in result.closed)
    trades.sort(key=lambda t: (t.holding.entry_time, t.symbol, t.holding.sleeve))
    return ReplayResult(rules, utc(first), utc(last), n, trades)
