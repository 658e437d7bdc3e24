"""Market data: markets and their candles.

A candle's ``open_time`` is the **start** of its bar, in UTC. Every source is
converted to open times on import (CryptoDataDownload ``Date``, Binance
``open_time``, CoinAPI ``time_period_start``). The original tool spliced
bar-end times from one exchange onto bar-start times from another and so
shifted its data by one bar; storing open times only, per exchange, prevents it.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, models
from django.db.models.signals import pre_delete
from django.dispatch import receiver

from predictor.ml.intervals import INTERVAL_CHOICES, Interval, as_interval

if TYPE_CHECKING:
    from predictor.ml.evaluation.kinds import ReportKind


class Exchange(models.TextChoices):
    GEMINI = "gemini", "Gemini"
    BINANCE = "binance", "Binance spot"
    BINANCE_FUTURES = "binance-futures", "Binance USDⓈ-M futures"
    BITSTAMP = "bitstamp", "Bitstamp"
    KRAKEN = "kraken", "Kraken"
    COINBASE = "coinbase", "Coinbase"
    BITFINEX = "bitfinex", "Bitfinex"
    OTHER = "other", "Other / unknown"


class Market(models.Model):
    """A tradable pair on one exchange, as the exchange spells it."""

    exchange = models.CharField(max_length=32, choices=Exchange.choices)
    symbol = models.CharField(
        max_length=32, help_text="The symbol as the exchange writes it, e.g. BTCUSD or BTCUSDT."
    )
    base_asset = models.CharField(max_length=16, blank=True)
    quote_asset = models.CharField(max_length=16, blank=True)
    coinapi_symbol_id = models.CharField(
        max_length=64, blank=True, help_text="CoinAPI symbol id, e.g. GEMINI_SPOT_BTC_USD."
    )
    tracked = models.BooleanField(default=False, help_text="Kept current by the scheduled update.")
    candles_token = models.CharField(
        max_length=32,
        blank=True,
        editable=False,
        help_text="Replaced with a random value by every candle write: cached reads of this "
        "market's candles are keyed by it, so they can never be stale.",
    )
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["exchange", "symbol"]
        constraints = [
            models.UniqueConstraint(
                fields=["exchange", "symbol"], name="market_exchange_symbol_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"{self.exchange}:{self.symbol}"


class IntervalField(models.Field):  # type: ignore[type-arg]
    """A bar length: its canonical code in Python (``"1m"``, ``"4h"``), whole seconds
    (a bigint) in the database.

    The candle key leads with (market, interval): an integer there makes every
    index comparison of a bulk insert an integer one, not a collation-aware text
    one, and bulk COPY into the candle table about a third faster
    (docs/benchmarks.md, "Import"). Lookups take a code, an :class:`Interval` or
    seconds; reads give the code, so ORM code and the API see what they saw before.
    Raw SQL must pass ``Interval.seconds``.
    """

    description = "Bar length (stored as whole seconds)"

    def get_internal_type(self) -> str:
        return "BigIntegerField"

    def from_db_value(
        self, value: int | None, expression: object, connection: object
    ) -> str | None:
        return None if value is None else Interval(int(value)).code

    def to_python(self, value: object) -> str | None:
        if value is None or value == "":
            return None
        try:
            return _as_interval(value).code
        except ValueError as exc:  # IntervalError, or a non-positive count of seconds
            raise ValidationError(str(exc), code="invalid") from None

    def get_prep_value(self, value: object) -> int | None:
        value = super().get_prep_value(value)
        return None if value is None else _as_interval(value).seconds


def _as_interval(value: object) -> Interval:
    return as_interval(value if isinstance(value, Interval | int) else str(value))


class Candle(models.Model):
    """One OHLCV bar. ``open_time`` is the bar's start (UTC).

    Keyed by (market, interval, open_time), no id column: that one index serves
    uniqueness and the range scans by market, interval and time, where an id
    plus a separate unique index made bulk COPY maintain two indexes (about half
    of its server time). Django's admin cannot register a model keyed like this;
    ``predictor.admin`` browses candles from their market instead.
    """

    pk = models.CompositePrimaryKey("market", "interval", "open_time")
    # No separate index on market: the primary key's index serves it. No database
    # FK constraint either: its per-row trigger cost a third of bulk-insert time;
    # the one write path (services.candle_store) only writes candles of a market it
    # holds, and deleting a market deletes its candles in one statement
    # (``_delete_candles_with_market``), not row by row.
    market = models.ForeignKey(
        Market,
        on_delete=models.DO_NOTHING,
        related_name="candles",
        db_index=False,
        db_constraint=False,
    )
    interval = IntervalField(choices=INTERVAL_CHOICES)
    open_time = models.DateTimeField(help_text="Start of the bar, UTC.")
    # Double precision, not Decimal: the data goes straight to numpy.
    open = models.FloatField()
    high = models.FloatField()
    low = models.FloatField()
    close = models.FloatField()
    volume = models.FloatField(help_text="Volume in the base asset.")

    class Meta:
        # No default ordering: every ORDER BY over millions of rows must be asked for.
        constraints = [
            models.CheckConstraint(
                condition=models.Q(high__gte=models.F("low")), name="candle_high_gte_low"
            ),
            models.CheckConstraint(
                condition=models.Q(open__gt=0, high__gt=0, low__gt=0, close__gt=0),
                name="candle_prices_positive",
            ),
            models.CheckConstraint(condition=models.Q(volume__gte=0), name="candle_volume_nonneg"),
        ]

    def __str__(self) -> str:
        return f"{self.market_id} {self.interval} {self.open_time:%Y-%m-%d %H:%M}"


@receiver(pre_delete, sender=Market)
def _delete_candles_with_market(sender: type[Market], instance: Market, **kwargs: object) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {Candle._meta.db_table} WHERE market_id = %s", [instance.pk])


class ImportedFile(models.Model):
    """A candle file as it was when it last imported without an error.

    ``import_stocks --if-present`` (what ``make run`` calls) skips a file whose size
    and sha256 still match; the modification time is kept to show, not to decide
    (copies and archives restore old mtimes). A failed import writes no row.
    """

    path = models.TextField(unique=True, help_text="Absolute path, symbolic links resolved.")
    given_path = models.TextField(help_text="The path as the import was given it.")
    size = models.BigIntegerField(help_text="Bytes.")
    mtime = models.DateTimeField(help_text="The file's modification time when imported.")
    sha256 = models.CharField(max_length=64)
    imported_at = models.DateTimeField()
    # The import's summary, over every CSV in the file (a zip may hold several).
    rows = models.BigIntegerField()
    inserted = models.BigIntegerField()
    duplicates = models.BigIntegerField()
    conflicts = models.BigIntegerField()
    replaced = models.BigIntegerField()

    def __str__(self) -> str:
        return self.path


# --- Training sessions, predictions and reports ----------------------------------------------


class SessionStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class SessionMode(models.TextChoices):
    EVALUATION = "evaluation", "Evaluation (split by time)"
    PRODUCTION = "production", "Production (all data)"
    WALK_FORWARD = "walk_forward", "Walk-forward (retrained per fold)"


class SweepMethod(models.TextChoices):
    GRID = "grid", "Grid (every combination)"
    RANDOM = "random", "Random (seeded draws)"
    TPE = "tpe", "TPE (Optuna, asks from the finished trials)"


class SweepObjective(models.TextChoices):
    VAL_LOSS = "val_loss", "Validation loss (lower is better)"
    VAL_IC = "val_ic", "Validation IC (higher is better)"
    VAL_SHARPE = "val_sharpe", "Validation Sharpe after costs (higher is better)"


class Sweep(models.Model):
    """A hyper-parameter search: a base request, a space, and its trials (training sessions).

    Every trial is judged on its validation split only (``objective``); the test split
    of the winner alone is evaluated, once, when every trial has finished.
    """

    ACTIVE = (SessionStatus.QUEUED, SessionStatus.RUNNING)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=120, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    base = models.JSONField(
        help_text="The base request: given config fields, symbols, exchange, start, end."
    )
    space = models.JSONField(help_text="Per config field: a list of values, or a low/high range.")
    method = models.CharField(max_length=8, choices=SweepMethod.choices)
    n_trials = models.PositiveIntegerField()
    parallel = models.PositiveIntegerField(default=1, help_text="Trials in flight at once (tpe).")
    objective = models.CharField(max_length=16, choices=SweepObjective.choices)
    seed = models.IntegerField(default=0)
    status = models.CharField(
        max_length=16, choices=SessionStatus.choices, default=SessionStatus.QUEUED, db_index=True
    )
    winner = models.ForeignKey(
        "TrainingSession", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    spa = models.JSONField(
        default=dict,
        blank=True,
        help_text="Hansen's SPA across the trials on validation, when asked for.",
    )
    error = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"sweep {self.id} {self.method} {self.objective} [{self.status}]"


class TrainingSession(models.Model):
    """One training run: its hyper-parameters, data, progress, history and artifacts.

    ``config`` is :meth:`predictor.ml.config.TrainConfig.to_dict`; the columns
    beside it (arch, target, interval…) repeat the fields people filter on.
    """

    ACTIVE = (SessionStatus.QUEUED, SessionStatus.RUNNING)
    FINISHED = (SessionStatus.SUCCEEDED, SessionStatus.FAILED, SessionStatus.CANCELLED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    mode = models.CharField(max_length=16, choices=SessionMode.choices)
    status = models.CharField(
        max_length=16, choices=SessionStatus.choices, default=SessionStatus.QUEUED, db_index=True
    )
    # What was asked for.
    config = models.JSONField(help_text="Every hyper-parameter (TrainConfig.to_dict()).")
    arch = models.CharField(max_length=16)
    target = models.CharField(max_length=16)
    interval = models.CharField(max_length=8, choices=INTERVAL_CHOICES)
    exchange = models.CharField(max_length=32, choices=Exchange.choices)
    markets = models.ManyToManyField(Market, related_name="training_sessions")
    symbols = models.JSONField(default=list, help_text="The markets' symbols in model order.")
    requested_start = models.DateTimeField(
        null=True, blank=True, help_text="-S; empty: first candle."
    )
    requested_end = models.DateTimeField(null=True, blank=True, help_text="-E; empty: last candle.")
    seed = models.IntegerField()
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="continuations",
        help_text="The session whose weights and scaler -X continued.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    # What the data turned out to be.
    data_start = models.DateTimeField(null=True, blank=True)
    data_end = models.DateTimeField(null=True, blank=True)
    data_hash = models.CharField(max_length=64, blank=True)
    split = models.JSONField(default=dict, blank=True)
    samples = models.JSONField(default=dict, blank=True, help_text="Windows per split part.")
    # Progress, updated while it runs.
    epoch = models.PositiveIntegerField(default=0)
    epochs = models.PositiveIntegerField(default=0)
    loss = models.FloatField(null=True, blank=True)
    val_loss = models.FloatField(null=True, blank=True)
    eta_seconds = models.FloatField(null=True, blank=True)
    history = models.JSONField(default=list, blank=True, help_text="One dict of metrics per epoch.")
    folds = models.JSONField(default=list, blank=True, help_text="Walk-forward: one dict per fold.")
    samples_per_second = models.FloatField(null=True, blank=True)
    # Where and how it ran.
    backend = models.CharField(max_length=16, blank=True)
    versions = models.JSONField(default=dict, blank=True)
    device = models.CharField(max_length=64, blank=True)
    celery_task_id = models.CharField(max_length=64, blank=True)
    worker = models.CharField(max_length=200, blank=True, help_text="host:pid running it.")
    heartbeat = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    cancel_requested = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    manifest = models.JSONField(
        default=dict, blank=True, help_text="The saved artifact's manifest."
    )
    sweep = models.ForeignKey(
        Sweep, null=True, blank=True, on_delete=models.SET_NULL, related_name="trials"
    )
    trial_number = models.PositiveIntegerField(null=True, blank=True)
    objective_value = models.FloatField(
        null=True, blank=True, help_text="A sweep trial's validation objective."
    )
    created = models.DateTimeField(auto_now_add=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]
        indexes = [models.Index(fields=["mode", "status", "-created"], name="session_mode_status")]
        constraints = [
            models.UniqueConstraint(
                fields=["sweep", "trial_number"], name="session_sweep_trial_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.arch}/{self.target} {','.join(self.symbols)} [{self.status}]"

    @property
    def evaluation(self) -> bool:
        return self.mode != SessionMode.PRODUCTION

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    @property
    def has_artifact(self) -> bool:
        return bool(self.manifest)

    @property
    def has_model(self) -> bool:
        """A trained model can be loaded: the run succeeded and its artifact was stored.

        The manifest is saved last, so a succeeded run without one lost its artifact.
        """
        return self.status == SessionStatus.SUCCEEDED and self.has_artifact


class Prediction(models.Model):
    """One forecast of one market by one session for one window and output step.

    ``anchor_time`` is the open time of the window's last candle; the forecast is
    known when that candle closes (``issued_at``). ``target_time`` is the open time
    of the candle whose value is forecast (for return targets, the end of the
    horizon). ``actual`` stays empty until that candle is stored.
    """

    session = models.ForeignKey(
        TrainingSession, on_delete=models.CASCADE, related_name="predictions"
    )
    market = models.ForeignKey(Market, on_delete=models.CASCADE, related_name="predictions")
    anchor_time = models.DateTimeField()
    issued_at = models.DateTimeField(
        help_text="When the forecast is known: the anchor bar's close."
    )
    target_time = models.DateTimeField()
    step = models.PositiveSmallIntegerField(default=1, help_text="1…O for multi-step outputs.")
    horizon = models.PositiveIntegerField(help_text="Bars from the anchor to the target.")
    split = models.CharField(
        max_length=12,
        help_text="train, validation, test, production or future (past the last candle).",
    )
    predicted = models.FloatField(help_text="The forecast in target units.")
    values = models.JSONField(
        null=True,
        blank=True,
        help_text="All outputs (range: rise/decline/end; updown: probabilities).",
    )
    actual = models.FloatField(null=True, blank=True)
    actual_values = models.JSONField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["session", "market", "anchor_time", "step"], name="prediction_uniq"
            )
        ]
        indexes = [
            models.Index(fields=["session", "target_time"], name="prediction_session_target"),
            models.Index(
                fields=["session", "actual"],
                name="prediction_missing_actual",
                condition=models.Q(actual__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return (
            f"{self.session_id} {self.market_id} {self.anchor_time:%Y-%m-%d %H:%M}+{self.horizon}"
        )


class EvaluationReport(models.Model):
    """A stored evaluation report (JSON) of one session on one split."""

    session = models.ForeignKey(TrainingSession, on_delete=models.CASCADE, related_name="reports")
    split = models.CharField(
        max_length=16, help_text="validation, test, train (in-sample) or walk_forward."
    )
    report = models.JSONField()
    n_trials = models.PositiveIntegerField(
        default=1, help_text="Evaluation sessions run on this market so far (deflated Sharpe)."
    )
    leakage_alarm = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["session", "split"], name="report_session_split_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.session_id} {self.split}"

    @property
    def kind(self) -> ReportKind:
        """Which report this is (strategy, classification, spa): the JSON says, or its keys."""
        # Imported here: the evaluation package loads scipy and arch, which models need not.
        from predictor.ml.evaluation.kinds import report_kind

        return report_kind(self.report)


# --- Paper trading -----------------------------------------------------------------------------


class PaperAccount(models.Model):
    """A session trading on paper: its frozen rules and the position engine's state.

    θ, costs, horizon and holding mode are frozen when the session goes live, so
    later evaluations cannot change what the live record means. ``state`` holds,
    per market symbol, the engine's open holdings, the last bar processed and the
    signal waiting for the next open (``services.paper``).
    """

    session = models.OneToOneField(
        TrainingSession, on_delete=models.CASCADE, primary_key=True, related_name="paper"
    )
    live = models.BooleanField(default=False, db_index=True)
    theta = models.FloatField(help_text="The frozen signal threshold θ (a return).")
    theta_source = models.CharField(max_length=120, help_text="Where θ came from.")
    horizon = models.PositiveIntegerField(help_text="Bars each holding lasts.")
    mode = models.CharField(max_length=16, help_text="non_overlapping or overlapping.")
    fee = models.FloatField(help_text="Fraction of a leg's value, per leg.")
    slippage = models.FloatField(help_text="Fraction of a leg's value, per leg.")
    started_at = models.DateTimeField()
    stopped_at = models.DateTimeField(null=True, blank=True)
    first_bar = models.DateTimeField(help_text="Open time of the first bar traded.")
    state = models.JSONField(default=dict, blank=True)
    updated = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"paper {self.session_id} ({'live' if self.live else 'stopped'})"


class PaperSignal(models.Model):
    """The forecast made at the close of one bar, and the side it signals (0: none)."""

    session = models.ForeignKey(
        TrainingSession, on_delete=models.CASCADE, related_name="paper_signals"
    )
    market = models.ForeignKey(Market, on_delete=models.CASCADE, related_name="paper_signals")
    bar_time = models.DateTimeField(help_text="Open time of the bar whose close made it.")
    forecast = models.FloatField(null=True, blank=True, help_text="Forecast return; empty: none.")
    side = models.SmallIntegerField(help_text="+1 long, -1 short, 0 no signal.")
    real = models.BooleanField(default=True, help_text="False: a gap-filled bar, never traded.")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["session", "market", "bar_time"], name="paper_signal_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"{self.session_id} {self.market_id} {self.bar_time:%Y-%m-%d %H:%M} {self.side:+d}"


class PaperFill(models.Model):
    """One traded leg at a bar's open (paper: filled at that open, costs charged)."""

    session = models.ForeignKey(
        TrainingSession, on_delete=models.CASCADE, related_name="paper_fills"
    )
    market = models.ForeignKey(Market, on_delete=models.CASCADE, related_name="paper_fills")
    sleeve = models.PositiveSmallIntegerField()
    leg = models.CharField(max_length=5, help_text="entry or exit.")
    side = models.SmallIntegerField(help_text="The position's side: +1 long, -1 short.")
    time = models.DateTimeField()
    price = models.FloatField()
    weight = models.FloatField(help_text="Share of the capital: 1 or 1/h.")
    cost = models.FloatField(help_text="Fraction of the leg's value paid (fee and slippage).")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["session", "market", "sleeve", "leg", "time"], name="paper_fill_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"{self.session_id} {self.market_id} {self.leg} {self.side:+d} @ {self.price:g}"


class PaperTrade(models.Model):
    """A closed holding, one row of the paper trade list."""

    session = models.ForeignKey(
        TrainingSession, on_delete=models.CASCADE, related_name="paper_trades"
    )
    market = models.ForeignKey(Market, on_delete=models.CASCADE, related_name="paper_trades")
    sleeve = models.PositiveSmallIntegerField()
    side = models.SmallIntegerField()
    weight = models.FloatField()
    signal_time = models.DateTimeField()
    entry_time = models.DateTimeField()
    exit_time = models.DateTimeField()
    entry_price = models.FloatField()
    exit_price = models.FloatField()
    entry_traded = models.BooleanField(help_text="False: continued the previous holding.")
    exit_traded = models.BooleanField(help_text="False: continued by the next holding.")
    gross_return = models.FloatField()
    net_return = models.FloatField()
    cost = models.FloatField(help_text="Fraction of the holding's value paid at its legs.")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["session", "market", "sleeve", "entry_time"], name="paper_trade_uniq"
            )
        ]
        indexes = [models.Index(fields=["session", "exit_time"], name="paper_trade_session_exit")]

    def __str__(self) -> str:
        return (
            f"{self.session_id} {self.market_id} {self.side:+d} {self.entry_time:%Y-%m-%d %H:%M}"
            f"→{self.exit_time:%Y-%m-%d %H:%M} net {self.net_return:+.4f}"
        )

    @property
    def pnl(self) -> float:
        """The holding's net gain as a fraction of the account's capital."""
        return self.weight * self.net_return
