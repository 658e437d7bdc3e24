"""``python manage.py import_stocks``: load candle CSVs (CryptoDataDownload, Binance, OHLCV)."""

from __future__ import annotations

from argparse import ArgumentParser
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from predictor.management.progress import row_progress
from predictor.services.importing import FileImportResult, importable_files, stocks_import


def _duration(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


class Command(BaseCommand):
    help = (
        "Import candle files (.csv, .csv.gz, .zip) from data/ (or --dir/--file): "
        "CryptoDataDownload, Binance kline dumps and plain OHLCV layouts. Idempotent."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("-D", "--dir", type=Path, help="Folder to import (default: DATA_DIR).")
        parser.add_argument(
            "--file",
            type=Path,
            action="append",
            default=[],
            help="A file to import; repeat for several.",
        )
        parser.add_argument("--exchange", help="Exchange, when neither file nor name says it.")
        parser.add_argument("--symbol", help="Symbol as the exchange writes it, e.g. BTCUSDT.")
        parser.add_argument("--interval", help="Bar length (1m, 5min, 1h, D…); default: inferred.")
        parser.add_argument(
            "--replace",
            action="store_true",
            help="Overwrite stored candles whose values differ (default: keep, report).",
        )
        parser.add_argument(
            "--if-present",
            action="store_true",
            help="Do nothing, successfully, when there is nothing to import; skip files "
            "unchanged (size and sha256) since they were imported without an error "
            "(with --replace nothing is skipped).",
        )
        download = parser.add_argument_group("download first (needs the network)")
        download.add_argument(
            "--download",
            action="store_true",
            help="Fetch history into DATA_DIR first, then import what was fetched.",
        )
        download.add_argument(
            "--source",
            choices=("binance", "cryptodatadownload"),
            default="binance",
            help="binance: data.binance.vision monthly archives, checked against "
            "their CHECKSUM files; cryptodatadownload: its CSV for the symbol.",
        )
        download.add_argument("--from", dest="month_from", help="First month, YYYY-MM (binance).")
        download.add_argument("--to", dest="month_to", help="Last month, YYYY-MM (binance).")

    def handle(self, *args: Any, **options: Any) -> None:
        files: list[Path] = list(options["file"])
        if options["download"]:
            files = self._download(options)
        elif not files or options["dir"]:
            directory = options["dir"] or settings.DATA_DIR
            try:
                files += importable_files(directory)
            except FileNotFoundError as exc:
                if not options["if_present"]:
                    raise CommandError(str(exc)) from None
        missing = [f for f in files if not f.is_file()]
        if missing:
            raise CommandError(f"no such file: {', '.join(map(str, missing))}")
        if not files:
            if options["if_present"]:
                self.stdout.write("Nothing to import.")
                return
            raise CommandError("no .csv, .csv.gz or .zip files to import")
        results = stocks_import(
            files,
            exchange=options["exchange"],
            symbol=options["symbol"],
            interval=options["interval"],
            replace=options["replace"],
            skip_imported=options["if_present"],
            progress=self._progress,
        )
        skipped = [r for r in results if r.skipped]
        for result in results:
            if not result.skipped:
                self._summary(result)
            elif options["verbosity"] > 1:
                self.stdout.write(f"- {result.source}: skipped, {result.notes[0]}")
        if skipped:
            noun = "file" if len(skipped) == 1 else "files"
            self.stdout.write(
                f"Skipped {len(skipped):,} {noun} already imported and unchanged (size and "
                "sha256); --verbosity 2 lists them, --replace or an import without "
                "--if-present reads them again."
            )
        failed = [r for r in results if not r.ok]
        if failed:
            raise CommandError(
                f"{len(failed)} of {len(results)} files failed; nothing of them was imported"
            )

    def _download(self, options: dict[str, Any]) -> list[Path]:
        from predictor.services.downloads import (
            DownloadError,
            binance_archive_download,
            cryptodatadownload_download,
        )

        exchange, symbol, interval = options["exchange"], options["symbol"], options["interval"]
        if not (exchange and symbol and interval):
            raise CommandError("--download needs --exchange, --symbol and --interval")
        try:
            if options["source"] == "cryptodatadownload":
                return [cryptodatadownload_download(exchange, symbol, interval, settings.DATA_DIR)]
            if exchange not in ("binance", "binance-futures"):
                raise CommandError(
                    "--source binance downloads Binance markets only; "
                    "use --source cryptodatadownload for other exchanges"
                )
            if not (options["month_from"] and options["month_to"]):
                raise CommandError("--source binance needs --from YYYY-MM and --to YYYY-MM")
            market_type = "futures" if exchange == "binance-futures" else "spot"
            return binance_archive_download(
                symbol,
                interval,
                options["month_from"],
                options["month_to"],
                market_type=market_type,
                dest_dir=settings.DATA_DIR / exchange,
            )
        except DownloadError as exc:
            raise CommandError(str(exc)) from None

    def _progress(self, name: str) -> Callable[[int], None]:
        return row_progress(self.stderr, name)

    def _summary(self, r: FileImportResult) -> None:
        if r.error:
            self.stderr.write(self.style.ERROR(f"✗ {r.error}"))
            return
        u = r.result
        assert u is not None
        line = (
            f"✓ {r.source}: {r.market} {r.interval} ({r.layout}) — read {u.rows:,}, "
            f"inserted {u.inserted:,}, duplicates skipped {u.duplicates:,}"
        )
        if u.conflicts:
            line += f", CONFLICTS {u.conflicts:,} ({'replaced' if u.replaced else 'kept stored values'})"
        gaps = (
            f"gaps {u.gap_count:,} (largest {_duration(u.largest_gap_seconds)}, "
            f"{u.missing_bars:,} bars missing)"
            if u.gap_count
            else "no gaps"
        )
        line += f", {gaps}"
        if u.first_open_time and u.last_open_time:
            line += f", {u.first_open_time:%Y-%m-%d %H:%M} → {u.last_open_time:%Y-%m-%d %H:%M} UTC"
        line += f" in {r.seconds:.1f} s"
        self.stdout.write(self.style.SUCCESS(line) if not u.conflicts else self.style.WARNING(line))
        for c in u.conflict_examples:
            self.stdout.write(
                f"    line {c.line}: {c.open_time:%Y-%m-%d %H:%M} stored {c.stored} "
                f"≠ file {c.incoming}"
            )
        for note in r.notes:
            self.stdout.write(f"    note: {note}")
