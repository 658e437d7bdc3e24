"""Re-importing stored candles against the first import of the same file, in one run.

    .venv/bin/python bench/reimport_bench.py [--rounds 3] [--timeout 100] [--sizes 1000,10000]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/co_reimportbench .venv/bin/python bench/reimport_bench.py

Into a scratch database (SQLite in a temporary folder by default; with a PostgreSQL
DATABASE_URL that database is dropped and created afresh), imports owlacar-dotcom__isda
1m months from ../shared/data until at least 1,000,000 "other" candles are stored.
Then, each round: the 130,708-row Binance BTCUSDT 1m file is imported for the first
time (its market deleted beforehand, not timed), then imported again (every row
already stored: all duplicates), then the first ``--sizes`` rows of it (as files
written beforehand) are imported again, then a copy with every volume doubled is
imported with ``replace=True`` (every row a conflict, replaced). Each goes through
the real ``stocks_import`` service. Prints rows/s and each re-import's rows/s over
the first import's (the goal: >= 0.5 for the whole file), per round and the median
of the rounds' ratios.

A re-import that runs past ``--timeout`` seconds is interrupted (the database is
asked to stop the statement; the file's transaction rolls back) and reported as
"did not finish", its ratio as an upper bound.
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from import_bench import scratch_database  # bench/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SHARED_DATA", ROOT.parent / "shared" / "data"))
BTC = DATA / "Filimonov-Eremeyka__freqtrade" / "BTCUSDT_1m.csv.gz"
OTHERS = DATA / "owlacar-dotcom__isda"
OTHER_ROWS = 1_000_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    parser.add_argument(
        "--timeout", type=float, default=100.0, help="seconds before a re-import is stopped"
    )
    parser.add_argument(
        "--sizes",
        default="1000,10000",
        help="also re-import the file's first N rows, comma-separated (default 1000,10000)",
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if not BTC.exists() or not OTHERS.is_dir():
        sys.exit(f"missing data: {BTC} or {OTHERS}")
    scratch = Path(tempfile.mkdtemp(prefix="reimport-bench-"))
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith("postgres"):
        os.environ["DATABASE_URL"] = scratch_database(url, "cryptooracle_reimportbench")
    else:
        os.environ.pop("DATABASE_URL", None)
        os.environ["CRYPTOORACLE_VAR_DIR"] = str(scratch)
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cryptooracle.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    print(f"database: {connection.vendor} ({connection.settings_dict['NAME']})")
    others = load_others()
    prefixes = {n: prefix_file(scratch, n) for n in sizes}
    changed = changed_file(scratch)
    results: list[dict[str, Rate]] = []
    for n in range(1, args.rounds + 1):
        results.append(timed_round(prefixes, changed, args.timeout))
        report(f"round {n}", results[-1])
    if len(results) > 1:
        report(f"median of {len(results)} rounds' ratios", medians(results))
    print(f"other candles stored: {others:,}")
    shutil.rmtree(scratch)


def load_others() -> int:
    from predictor.services.importing import stocks_import

    stored = 0
    for path in sorted(OTHERS.glob("*-1m-*.csv.gz")):
        (result,) = stocks_import([path])
        if result.error or result.result is None:
            sys.exit(f"import of {path.name} failed: {result.error}")
        stored += result.result.inserted
        if stored >= OTHER_ROWS:
            break
    return stored


def prefix_file(folder: Path, rows: int) -> Path:
    """The BTCUSDT file's header and first ``rows`` rows, as a file of its own."""
    with gzip.open(BTC, "rt") as src:
        lines = [next(src) for _ in range(rows + 1)]
    path = folder / f"BTCUSDT_1m_first{rows}.csv"
    path.write_text("".join(lines))
    return path


def changed_file(folder: Path) -> Path:
    """The BTCUSDT file with every volume doubled: each row a conflict to replace."""
    with gzip.open(BTC, "rt") as src:
        header, *lines = src.read().splitlines()
    changed = []
    for line in lines:
        *fields, volume = line.split(",")
        changed.append(",".join([*fields, repr(float(volume) * 2)]))
    path = folder / "BTCUSDT_1m_volume_doubled.csv"
    path.write_text("\n".join([header, *changed]) + "\n")
    return path


def timed_import(
    path: Path, timeout: float | None, *, replace: bool = False
) -> tuple[int, float, bool]:
    """Rows, seconds and whether it finished: stopped after ``timeout`` seconds, the rows
    are the file's and the seconds the timeout."""
    from django.db import OperationalError, connection

    from predictor.services.importing import stocks_import

    with gzip.open(path, "rt") if path.suffix == ".gz" else path.open() as text:
        rows = sum(1 for _ in text) - 1
    connection.ensure_connection()
    raw = connection.connection
    stop = raw.cancel if connection.vendor == "postgresql" else raw.interrupt
    timer = threading.Timer(timeout, stop) if timeout else None
    started = time.perf_counter()
    if timer:
        timer.start()
    try:
        (result,) = stocks_import([path], exchange="binance", replace=replace)
    except OperationalError:
        assert timeout is not None
        return rows, timeout, False
    finally:
        if timer:
            timer.cancel()
    seconds = time.perf_counter() - started
    if result.error or result.result is None:
        sys.exit(f"import of {path.name} failed: {result.error}")
    assert result.result.rows == rows, (result.result.rows, rows)
    assert result.result.replaced == (rows if replace else 0), result.result
    return rows, seconds, True


Rate = tuple[float, bool]  # rows/s (an upper bound where it did not finish), finished


def timed_round(prefixes: dict[int, Path], changed: Path, timeout: float) -> dict[str, Rate]:
    from predictor.models import Market

    Market.objects.filter(exchange="binance", symbol="BTCUSDT").delete()
    rows, seconds, _ = timed_import(BTC, None)
    out: dict[str, Rate] = {"first": (rows / seconds, True)}
    rows, seconds, done = timed_import(BTC, timeout)
    out[f"{rows:,}"] = (rows / seconds, done)
    for n, path in prefixes.items():
        rows, seconds, done = timed_import(path, timeout)
        out[f"{n:,}"] = (rows / seconds, done)
    rows, seconds, done = timed_import(changed, timeout, replace=True)
    out[f"{rows:,} changed, --replace"] = (rows / seconds, done)
    return out


def medians(rounds: list[dict[str, Rate]]) -> dict[str, Rate]:
    """Per re-import the median of the rounds' ratios to their first import (kept as a
    rate over the median first import); unfinished where any round did not finish."""
    first = statistics.median(r["first"][0] for r in rounds)
    out: dict[str, Rate] = {"first": (first, True)}
    for key in rounds[0]:
        if key != "first":
            ratios = [r[key][0] / r["first"][0] for r in rounds]
            done = all(r[key][1] for r in rounds)
            out[key] = (first * (statistics.median(ratios) if done else max(ratios)), done)
    return out


def report(label: str, rates: dict[str, Rate]) -> None:
    first = rates["first"][0]
    parts = [f"first import {first:,.0f} rows/s"]
    for key, (rate, done) in rates.items():
        if key == "first":
            continue
        parts.append(
            f"re-import {key}: {rate:,.0f} rows/s = {rate / first:.3g}x"
            if done
            else f"re-import {key}: did not finish, < {rate:,.0f} rows/s = < {rate / first:.3g}x"
        )
    print(f"{label}: " + "; ".join(parts), flush=True)


if __name__ == "__main__":
    main()
