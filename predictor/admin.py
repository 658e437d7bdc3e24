from django.contrib import admin

from predictor.models import Candle, Market


@admin.register(Market)
class MarketAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = (
        "exchange",
        "symbol",
        "base_asset",
        "quote_asset",
        "coinapi_symbol_id",
        "tracked",
    )
    list_filter = ("exchange", "tracked")
    search_fields = ("symbol", "base_asset", "quote_asset", "coinapi_symbol_id")


@admin.register(Candle)
class CandleAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("market", "interval", "open_time", "open", "high", "low", "close", "volume")
    list_filter = ("interval", "market__exchange")
    list_select_related = ("market",)
    date_hierarchy = "open_time"
    raw_id_fields = ("market",)
    # Counting millions of rows on every page view is slow; show no total.
    show_full_result_count = False
    ordering = ("-open_time",)
