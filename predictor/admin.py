"""Admin for markets, a read-only browser of each market's candles, and paper trading.

Candles have a composite primary key, which Django's admin refuses to register;
their page hangs off the market instead (``<market>/candles/``): one interval at
a time, newest first, paged by open time (keyset), never by OFFSET or a COUNT
over millions of rows.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.core.exceptions import BadRequest, PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.html import format_html

from predictor.ml.intervals import CANONICAL_INTERVALS
from predictor.models import Market, PaperAccount, TrainingSession
from predictor.selectors.candles import CandlePage, candle_page, stored_intervals


@admin.register(Market)
class MarketAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = (
        "exchange",
        "symbol",
        "base_asset",
        "quote_asset",
        "coinapi_symbol_id",
        "tracked",
        "candles_link",
    )
    list_filter = ("exchange", "tracked")
    search_fields = ("symbol", "base_asset", "quote_asset", "coinapi_symbol_id")
    readonly_fields = ("candles_link",)

    @admin.display(description="candles")
    def candles_link(self, market: Market) -> str:
        if market.pk is None:
            return "—"
        url = reverse("admin:predictor_market_candles", args=[market.pk])
        return format_html('<a href="{}">candles</a>', url)

    def get_urls(self) -> list[URLPattern]:
        # Before the default ones: "<path:object_id>/" would swallow it.
        candles = path(
            "<path:object_id>/candles/",
            self.admin_site.admin_view(self.candles_view),
            name="predictor_market_candles",
        )
        return [candles, *super().get_urls()]

    def candles_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """A market's candles of one interval, newest first, a page at a time."""
        market = self.get_object(request, object_id)
        if market is None:
            raise Http404(f"no market with id {object_id!r}")
        if not self.has_view_permission(request, market):
            raise PermissionDenied
        intervals = [i.code for i in stored_intervals(market)]
        interval = request.GET.get("interval") or (intervals[0] if intervals else "")
        if interval and interval not in CANONICAL_INTERVALS:
            raise BadRequest(f"unknown interval {interval!r}")
        page = (
            candle_page(
                market,
                interval,
                before=_when(request.GET.get("before"), "before"),
                after=_when(request.GET.get("after"), "after"),
            )
            if interval
            else CandlePage([], newer=None, older=None)
        )

        def link(code: str = interval, **params: str) -> str:
            return "?" + urlencode({"interval": code, **params})

        before_text = request.GET.get("before", "")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": market,
            "title": f"Candles of {market}",
            "interval": interval,
            "interval_links": [(code, link(code)) for code in intervals],
            "rows": page.rows,
            "newest_url": link() if page.newer else None,
            "newer_url": link(after=page.newer.isoformat()) if page.newer else None,
            "older_url": link(before=page.older.isoformat()) if page.older else None,
            "day": before_text if _day(before_text) else "",
        }
        return TemplateResponse(request, "admin/predictor/market/candles.html", context)


def _when(text: str | None, name: str) -> datetime | None:
    """A page boundary from the query string: a date-time (UTC unless it says), or a day,
    which means the end of that day."""
    if not text:
        return None
    day = _day(text)  # first: parse_datetime reads a bare day as its midnight
    if day is not None:
        return datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC)
    try:
        moment = parse_datetime(text)
    except ValueError:
        moment = None
    if moment is not None:
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    raise BadRequest(f"{name}={text!r} is not a date or a date and time")


def _day(text: str) -> date | None:
    """``YYYY-MM-DD`` as a date; None for anything else, an impossible date included."""
    try:
        return parse_date(text)
    except ValueError:
        return None


# --- Paper trading ---------------------------------------------------------------------------


def _paper_results(
    modeladmin: admin.ModelAdmin,  # type: ignore[type-arg]
    request: HttpRequest,
    sessions: list[TrainingSession],
    change: Callable[[TrainingSession], object],
    done: str,
) -> None:
    from predictor.services.paper import PaperError  # Keras loads with the service

    for session in sessions:
        try:
            change(session)
        except PaperError as exc:
            modeladmin.message_user(request, str(exc), level=messages.ERROR)
        else:
            modeladmin.message_user(request, f"{session.pk}: {done}")


@admin.register(TrainingSession)
class TrainingSessionAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("id", "arch", "target", "interval", "mode", "status", "created")
    list_filter = ("status", "mode", "arch", "target")
    search_fields = ("id",)
    readonly_fields = [f.name for f in TrainingSession._meta.concrete_fields]
    actions = ("mark_live",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # sessions are started by the form, the API or train_model

    @admin.action(description="Paper trade: mark live (θ from the validation report)")
    def mark_live(self, request: HttpRequest, queryset: QuerySet[TrainingSession]) -> None:
        from predictor.services.paper import paper_start

        _paper_results(self, request, list(queryset), paper_start, "live on paper")


@admin.register(PaperAccount)
class PaperAccountAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("session", "live", "theta", "mode", "fee", "slippage", "started_at", "updated")
    list_filter = ("live", "mode")
    readonly_fields = [f.name for f in PaperAccount._meta.concrete_fields]
    actions = ("stop", "resume")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # the rules are frozen by paper_start

    @admin.action(description="Stop paper trading")
    def stop(self, request: HttpRequest, queryset: QuerySet[PaperAccount]) -> None:
        from predictor.services.paper import paper_stop

        sessions = [a.session for a in queryset.select_related("session")]
        _paper_results(self, request, sessions, paper_stop, "stopped")

    @admin.action(description="Resume paper trading (the frozen rules)")
    def resume(self, request: HttpRequest, queryset: QuerySet[PaperAccount]) -> None:
        from predictor.services.paper import paper_start

        sessions = [a.session for a in queryset.select_related("session")]
        _paper_results(self, request, sessions, paper_start, "live on paper")
