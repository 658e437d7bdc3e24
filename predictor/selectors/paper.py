"""Reads of paper trading: accounts, their signals, fills and closed trades."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
from django.db.models import QuerySet

from predictor.ml.candles import unix_seconds  # not ml.arrays: that brings in Keras
from predictor.ml.evaluation.paper_stats import (
    PaperSignificance,
    paper_significance,
    realised_returns,
)
from predictor.ml.intervals import parse_interval
from predictor.models import (
    Market,
    PaperAccount,
    PaperFill,
    PaperSignal,
    PaperTrade,
    TrainingSession,
)
from predictor.selectors.candles import candles_frame


def paper_live_exists() -> bool:
    return PaperAccount.objects.filter(live=True).exists()


def paper_account_list(*, live: bool | None = None) -> QuerySet[PaperAccount]:
    accounts = PaperAccount.objects.select_related("session").order_by("-started_at")
    return accounts if live is None else accounts.filter(live=live)


def paper_account_get(session: TrainingSession) -> PaperAccount | None:
    return PaperAccount.objects.filter(session=session).first()


def paper_trade_list(session: TrainingSession) -> QuerySet[PaperTrade]:
    """Closed holdings in time order (the order their sleeves compound in)."""
    return (
        PaperTrade.objects.filter(session=session)
        .select_related("market")
        .order_by("entry_time", "market_id", "sleeve")
    )


def paper_fill_list(session: TrainingSession) -> QuerySet[PaperFill]:
    return PaperFill.objects.filter(session=session).select_related("market").order_by("time")


def paper_signal_list(session: TrainingSession) -> QuerySet[PaperSignal]:
    return PaperSignal.objects.filter(session=session).select_related("market").order_by("bar_time")


@dataclass(frozen=True)
class OpenHolding:
    symbol: str
    sleeve: int
    side: int
    weight: float
    entry_time: dt.datetime
    entry_price: float
    exit_due: dt.datetime
    last_price: float | None
    gross_return: float | None  # marked at the last close, before the exit leg


@dataclass(frozen=True)
class PaperSummary:
    account: PaperAccount
    trades: list[PaperTrade]
    open: list[OpenHolding]
    times: np.ndarray  # bar open times (datetime64[s]) from the first bar traded
    strategy: np.ndarray  # realised return after the holdings closed by then
    buy_and_hold: np.ndarray  # open-to-open, before costs, averaged over the markets
    significance: PaperSignificance
    total_return: float


def _utc(seconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(int(seconds), tz=dt.UTC)


def _open_holdings(
    account: PaperAccount, markets: dict[str, Market], last: dict[str, float]
) -> list[OpenHolding]:
    step = parse_interval(account.session.interval).seconds
    first = int(account.first_bar.timestamp())
    found = []
    for symbol, market in (account.state or {}).items():
        for h in market.get("engine", {}).get("holdings", []):
            price = last.get(symbol)
            gross = h["side"] * (price / h["entry_price"] - 1.0) if price else None
            found.append(
                OpenHolding(
                    symbol=symbol,
                    sleeve=h["sleeve"],
                    side=h["side"],
                    weight=h["weight"],
                    entry_time=_utc(h["entry_time"]),
                    entry_price=h["entry_price"],
                    exit_due=_utc(first + h["exit_index"] * step),
                    last_price=price,
                    gross_return=gross,
                )
            )
    return found


def paper_summary(account: PaperAccount) -> PaperSummary:
    """What the paper page shows: open holdings, trades, curves and the significance panel."""
    session = account.session
    markets = {m.symbol: m for m in session.markets.all()}
    trades = list(paper_trade_list(session))
    opens, last = [], {}
    for symbol in session.symbols:
        frame = candles_frame(markets[symbol], account.first_bar, interval=session.interval)
        if len(frame):
            opens.append(frame["open"].astype("float64"))
            last[symbol] = float(frame["close"].iloc[-1])
    times = (
        unix_seconds(pd.DatetimeIndex(opens[0].index)).astype("datetime64[s]")
        if opens
        else np.array([], dtype="datetime64[s]")
    )
    buy_and_hold = (
        np.mean(
            [o.reindex(opens[0].index).ffill().to_numpy() / o.iloc[0] - 1.0 for o in opens], axis=0
        )
        if opens
        else np.array([])
    )
    by_exit = sorted(trades, key=lambda t: (t.exit_time, t.market_id, t.sleeve))
    after = realised_returns((t.market_id, t.sleeve, t.weight, t.net_return) for t in by_exit)
    exits = np.array(
        [np.datetime64(t.exit_time.replace(tzinfo=None), "s") for t in by_exit],
        dtype="datetime64[s]",
    )
    done = np.searchsorted(exits, times, side="right")  # holdings closed at or before each open
    strategy = np.r_[0.0, after][done] if len(times) else np.array([])
    overlap = account.horizon if account.mode == "overlapping" else 1
    return PaperSummary(
        account=account,
        trades=trades,
        open=_open_holdings(account, markets, last),
        times=times,
        strategy=strategy,
        buy_and_hold=buy_and_hold,
        significance=paper_significance([t.net_return for t in by_exit], overlap=overlap),
        total_return=after[-1] if after else 0.0,
    )
