"""``quickstart``: download a default dataset, train, forecast and evaluate, print the pages."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from predictor.management.flags import interval, name_list, positive_int
from predictor.management.progress import row_progress
from predictor.models import EvaluationReport, SessionStatus, TrainingSession
from predictor.services.downloads import DownloadError, months_between
from predictor.services.quickstart import (
    DEFAULT_BASE_URL,
    DEFAULT_EPOCHS,
    DEFAULT_INTERVAL,
    DEFAULT_MONTHS,
    DEFAULT_SYMBOLS,
    EXCHANGE,
    Archives,
    MarketImport,
    QuickstartError,
    candles_missing,
    last_complete_months,
    quickstart_config,
    quickstart_download,
    quickstart_import,
    quickstart_session,
    quickstart_urls,
    training_range,
)

HINT = (
    "No candles yet: run `python manage.py quickstart` (downloads two years of BTCUSDT and "
    "ETHUSDT hourly candles and trains two small models, a few minutes on a CPU), "
    "or put candle files in data/ and restart."
)


class Command(BaseCommand):
    help = (
        "From an empty database to every page with content: download Binance's monthly 1h "
        "klines of BTCUSDT and ETHUSDT for the last 24 complete months, import them, train a "
        "small evaluation and a production session, forecast, evaluate, and print the URLs. "
        "A second run reuses the stored archives, candles and sessions."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--months",
            type=positive_int,
            default=DEFAULT_MONTHS,
            help=f"complete months before the current one (UTC) (default {DEFAULT_MONTHS})",
        )
        parser.add_argument(
            "--symbols",
            type=name_list(upper=True),
            default=DEFAULT_SYMBOLS,
            help=f"Binance spot symbols, comma-separated (default {','.join(DEFAULT_SYMBOLS)})",
        )
        parser.add_argument(
            "--interval",
            type=interval,
            default=DEFAULT_INTERVAL,
            help=f"bar interval (default {DEFAULT_INTERVAL})",
        )
        parser.add_argument(
            "--epochs",
            type=positive_int,
            default=DEFAULT_EPOCHS,
            help=f"training epochs per session (default {DEFAULT_EPOCHS})",
        )
        parser.add_argument(
            "--skip-download",
            action="store_true",
            help="no network: train on the candles already stored (their last --months months)",
        )
        parser.add_argument(
            "--base-url",
            default=DEFAULT_BASE_URL,
            help=f"where the web server runs, for the printed links (default {DEFAULT_BASE_URL})",
        )
        parser.add_argument(
            "--hint",
            action="store_true",
            help="only print one line pointing here when no candles are stored (for `make run`)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["hint"]:
            if candles_missing():
                self.stdout.write(HINT)
            return
        symbols: list[str] = list(dict.fromkeys(options["symbols"]))
        code: str = options["interval"]
        try:
            if options["skip_download"]:
                start, end = training_range(symbols, code, months=options["months"])
            else:
                month_from, month_to = last_complete_months(options["months"])
                paths = self.download(symbols, code, month_from, month_to)
                self.import_archives(paths, code)
                start, end = training_range(symbols, code, month_from=month_from, month_to=month_to)
            sessions = [
                self.train(symbols, code, options["epochs"], evaluation, start, end)
                for evaluation in (True, False)
            ]
            for session in sessions:
                self.forecast(session)
            self.evaluate(sessions[0])
        except (QuickstartError, DownloadError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write("")
        self.stdout.write("Open these pages (start the server first: `make run`):")
        for page, url in quickstart_urls(options["base_url"], sessions[0], sessions[1]):
            self.stdout.write(f"  {page + ':':<22}{url}")

    def download(self, symbols: list[str], code: str, month_from: str, month_to: str) -> Archives:
        dest = Path(settings.DATA_DIR) / EXCHANGE
        self.stdout.write(
            f"Downloading {', '.join(symbols)} {code} klines, {month_from} … {month_to}, "
            f"from {settings.BINANCE_VISION_URL} into {dest} …"
        )
        total = len(symbols) * len(months_between(month_from, month_to))
        bar = tqdm(total=total, unit=" archive", leave=False, file=self.stderr._out, disable=None)
        with bar:
            archives = quickstart_download(
                symbols,
                code,
                month_from,
                month_to,
                dest_dir=dest,
                on_month=lambda symbol, month: bar.update(1),
            )
        kept = total - len(archives.fetched)
        self.stdout.write(
            f"  {total} archives verified against their CHECKSUM files: "
            f"{len(archives.fetched)} fetched, {kept} already there"
        )
        return archives

    def import_archives(self, archives: Archives, code: str) -> None:
        self.stdout.write(f"Importing {sum(map(len, archives.by_symbol.values()))} archives …")
        imports = quickstart_import(archives, code, progress=self._progress)
        failed = [r for done in imports.values() for r in done.results if not r.ok]
        for r in failed:
            self.stderr.write(self.style.ERROR(f"✗ {r.error}"))
        if failed:
            raise CommandError(
                f"{len(failed)} archive(s) failed to import and were not stored; "
                "run quickstart again to fetch them anew"
            )
        for symbol, done in imports.items():
            self.stdout.write("  " + _import_line(symbol, done))

    def train(
        self,
        symbols: list[str],
        code: str,
        epochs: int,
        evaluation: bool,
        start: Any,
        end: Any,
    ) -> TrainingSession:
        config = quickstart_config(symbols, code, epochs=epochs, evaluation=evaluation)
        pick = quickstart_session(config, symbols, start, end)
        kind = "evaluation" if evaluation else "production"
        session = pick.session
        if pick.reused:
            self.stdout.write(
                f"{kind.capitalize()} session {session.id}: already trained on these candles, "
                "reusing it."
            )
            return session
        self.stdout.write(
            f"Training {kind} session {session.id}: {config.arch} on the returns of "
            f"{', '.join(symbols)} {code}, {start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M} UTC, "
            f"{config.window}-bar windows, {config.horizon}-bar horizon, {epochs} epoch(s) …"
        )
        from predictor.ml.training import ProgressBar  # Keras: imported only to train
        from predictor.services.runs import run_here

        def on_epoch(epoch: int, total: int, logs: dict[str, float]) -> None:
            shown = ", ".join(f"{k} {v:.4g}" for k, v in logs.items() if k in ("loss", "val_loss"))
            self.stdout.write(f"  epoch {epoch}/{total}: {shown}")

        session = run_here(
            session, on_epoch=on_epoch, callbacks=[ProgressBar(file=self.stderr._out)]
        )
        if session.status != SessionStatus.SUCCEEDED:
            raise CommandError(f"{kind} session {session.id} {session.status}: {session.error}")
        return session

    def forecast(self, session: TrainingSession) -> None:
        from predictor.services.forecasting import ForecastError, session_forecast

        self.stdout.write(f"Forecasting session {session.id} …")
        try:
            result = session_forecast(session)
        except ForecastError as exc:
            raise CommandError(f"session {session.id}: {exc}") from None
        self.stdout.write(
            f"  stored {result.stored:,} forecasts ({result.future:,} past the last candle)"
            if result.windows
            else "  no new windows to forecast"
        )

    def evaluate(self, session: TrainingSession) -> None:
        from predictor.services.evaluation import EvaluationError, session_evaluate

        if EvaluationReport.objects.filter(session=session).exists():
            self.stdout.write(f"Session {session.id}: already evaluated, reports kept.")
            return
        self.stdout.write(f"Evaluating session {session.id} (fee 0.1 % per side) …")
        try:
            result = session_evaluate(session)
        except EvaluationError as exc:
            raise CommandError(f"session {session.id}: {exc}") from None
        for split in result.splits:
            data = split.data
            line = (
                f"  {data['label']}: {data['n_forecasts']:,} forecasts, "
                f"direction accuracy {data['direction']['accuracy']:.1%}"
            )
            if "strategy" in data:
                line += f", strategy return {data['strategy']['stats']['total_return']:+.1%}"
            self.stdout.write(line + (" — LEAKAGE ALARM" if split.leakage_alarm else ""))

    def _progress(self, name: str) -> Callable[[int], None]:
        return row_progress(self.stderr, name)


def _import_line(symbol: str, done: MarketImport) -> str:
    mine = [r.result for r in done.results if r.result is not None]
    inserted = sum(u.inserted for u in mine)
    duplicates = sum(u.duplicates for u in mine)
    missing = sum(u.missing_bars for u in mine)
    line = f"{symbol}: {inserted:,} candles inserted, {duplicates:,} already stored"
    if done.skipped:
        line += f", {done.skipped} archive(s) skipped (their months are stored whole)"
    return line + (f", {missing:,} bars missing in the archives" if missing else "")
