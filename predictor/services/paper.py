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
from django.utils import timezone

from predictor.ml.config import TrainConfig
from predictor.ml.evaluation.backtest import DEFAULT_FEE, signals_from_forecast
from predictor.ml.evaluation.engine import (
    MODES,
    ClosedHolding,
    EngineConfig,
    EngineState,
    Mode,
    PositionEngine,
    Step,
)
from predictor.ml.evaluation.paper_stats import realised_returns
from predictor.models import (
    EvaluationReport,
    PaperAccount,
    PaperFill,
    PaperSignal,
    PaperTrade,
    SessionMode,
    SessionStatus,
    TrainingSession,
)
from predictor.services.notify import notify
from predictor.services.paper_bars import (
    MarketBars,
    bar_seconds,
    last_closed_bar,
    paper_bars,
    session_markets,
    utc,
)


class PaperError(Exception):
    """A session cannot trade on paper as asked; the message says what to do."""


@dataclass(frozen=True)
class PaperRules:
    theta: float
    horizon: int
    fee: float
    slippage: float
    mode: Mode

    @classmethod
    def of(cls, account: PaperAccount) -> PaperRules:
        return cls(account.theta, account.horizon, account.fee, account.slippage, account.mode)  # type: ignore[arg-type]

    @property
    def engine(self) -> EngineConfig:
        return EngineConfig(self.horizon, self.fee, self.slippage, self.mode)


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


# --- Starting and stopping -------------------------------------------------------------------


def _threshold_from(source: TrainingSession, config: TrainConfig) -> dict[str, Any]:
    report = EvaluationReport.objects.filter(session=source, split="validation").first()
    threshold = (report.report or {}).get("threshold") if report else None
    if not threshold or threshold.get("theta") is None:
        raise PaperError(
            f"session {source.pk} has no stored validation report with a θ: run "
            f"`python manage.py evaluate -T {source.pk}` first, or pass --theta"
        )
    if TrainConfig.from_dict(source.config).target != config.target:
        raise PaperError(f"session {source.pk} forecasts another target: its θ does not apply")
    if int(threshold.get("horizon", config.effective_horizon)) != config.effective_horizon:
        raise PaperError(f"session {source.pk}'s θ was chosen for another horizon")
    return dict(threshold)


def _frozen_rules(
    session: TrainingSession,
    config: TrainConfig,
    theta: float | None,
    theta_from: TrainingSession | None,
    costs: dict[str, Any],
) -> tuple[PaperRules, str]:
    if theta is not None and theta_from is not None:
        raise PaperError("give --theta or --theta-from, not both")
    chosen: dict[str, Any] = {}
    if theta is not None:
        source = "given"
    else:
        origin = theta_from or (session if session.mode != SessionMode.PRODUCTION else None)
        if origin is None:
            raise PaperError(
                f"session {session.pk} is a production session: it has no validation split "
                "to take θ from; pass --theta X or --theta-from <evaluation session id>"
            )
        chosen = _threshold_from(origin, config)
        source = f"validation report of session {origin.pk}"
    frozen = float(chosen["theta"]) if theta is None else float(theta)

    # Costs and mode default to those θ was chosen under.
    def pick(name: str, default: Any) -> Any:
        given = costs.get(name)
        return given if given is not None else chosen.get(name, default)

    fee, slippage = pick("fee", DEFAULT_FEE), pick("slippage", 0.0)
    mode = pick("mode", "non_overlapping")
    if mode not in MODES:
        raise PaperError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if not (frozen >= 0):
        raise PaperError(f"θ must be >= 0, got {frozen}")
    try:
        rules = PaperRules(frozen, config.effective_horizon, float(fee), float(slippage), mode)
        rules.engine  # noqa: B018 - validates the costs
    except ValueError as exc:
        raise PaperError(str(exc)) from exc
    return rules, source


def _fresh_state(session: TrainingSession, first_bar: int) -> dict[str, Any]:
    before = first_bar - bar_seconds(session)
    return {
        m.symbol: {
            "last_bar": before,
            "index": -1,
            "signal": 0,
            "signal_real": False,
            "engine": EngineState().to_dict(),
        }
        for m in session_markets(session)
    }


def paper_start(
    session: TrainingSession,
    *,
    theta: float | None = None,
    theta_from: TrainingSession | None = None,
    fee: float | None = None,
    slippage: float | None = None,
    mode: str | None = None,
) -> PaperAccount:
    """Mark the session live with frozen rules; a stopped account resumes with its own rules.

    Trading starts at the newest closed bar: its close makes the first forecast.
    """
    if session.status != SessionStatus.SUCCEEDED or not session.has_artifact:
        raise PaperError(f"session {session.pk} is {session.status}: it has no trained model")
    config = TrainConfig.from_dict(session.config)
    existing = PaperAccount.objects.filter(session=session).first()
    if existing is not None:
        asked = any(v is not None for v in (theta, theta_from, fee, slippage, mode))
        if asked:
            raise PaperError(
                f"session {session.pk} already has a paper account (θ {existing.theta:g}, "
                f"{existing.mode}); its rules stay frozen: resume it without new ones"
            )
        existing.live, existing.stopped_at = True, None
        existing.save(update_fields=["live", "stopped_at", "updated"])
        return existing
    costs = {"fee": fee, "slippage": slippage, "mode": mode}
    rules, source = _frozen_rules(session, config, theta, theta_from, costs)
    newest = last_closed_bar(session)
    if newest is None:
        raise PaperError(f"session {session.pk}: its markets have no candles to trade on")
    return PaperAccount.objects.create(
        session=session,
        live=True,
        theta=rules.theta,
        theta_source=source[:120],
        horizon=rules.horizon,
        mode=rules.mode,
        fee=rules.fee,
        slippage=rules.slippage,
        started_at=timezone.now(),
        first_bar=utc(newest),
        state=_fresh_state(session, newest),
    )


def paper_stop(session: TrainingSession) -> PaperAccount:
    """Stop stepping; open holdings stay as they are (shown open), nothing is sold."""
    account = PaperAccount.objects.filter(session=session).first()
    if account is None:
        raise PaperError(f"session {session.pk} is not paper trading")
    account.live, account.stopped_at = False, timezone.now()
    account.save(update_fields=["live", "stopped_at", "updated"])
    return account


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
        market = _fresh_state(session, first)[symbol]
        for i in range(n):
            market, result, _ = _advance(
                market, bars, i, rules, can_hold=i + rules.horizon <= n - 1
            )
            trades.extend(ReplayTrade(symbol, c) for c in result.closed)
    trades.sort(key=lambda t: (t.holding.entry_time, t.symbol, t.holding.sleeve))
    return ReplayResult(rules, utc(first), utc(last), n, trades)
