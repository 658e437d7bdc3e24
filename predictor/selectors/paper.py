"""Reads of paper trading: accounts, their signals, fills and closed trades."""

from __future__ import annotations

from django.db.models import QuerySet

from predictor.models import PaperAccount, PaperFill, PaperSignal, PaperTrade, TrainingSession


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
