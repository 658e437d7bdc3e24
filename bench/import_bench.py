"""Import speed on PostgreSQL against a raw COPY of the same rows, in one run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/import_bench.py

Imports the 130,708-row Binance BTCUSDT 1m file and every owlacar-dotcom__isda 1m
month (≈1.88M rows) from ../shared/data into a scratch database through the real
``import_stocks`` service (parse, validate, COPY to staging, merge into the
indexed candle table), then COPYs the same rows, as CSV prepared beforehand
(not timed), into (a) a bare table with no index and (b) a table with the same
columns and the same unique key. Prints rows/s and the ratios.
"""

from __future__ import annotations

import io
import os
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SHARED_DATA", ROOT.parent / "shared" / "data"))
BENCH_DB = "cryptooracle_bench"


def scratch_database() -> str:
    url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    parts = urlsplit(url)
    admin = psycopg2.connect(urlunsplit(parts._replace(path="/postgres")))
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {BENCH_DB}")
        cur.execute(f"CREATE DATABASE {BENCH_DB}")
    admin.close()
    return urlunsplit(parts._replace(path=f"/{BENCH_DB}"))


def main() -> None:
    files = [DATA / "Filimonov-Eremeyka__freqtrade" / "BTCUSDT_1m.csv.gz"]
    files += sorted((DATA / "owlacar-dotcom__isda").glob("*-1m-*.csv.gz"))
    missing = [f for f in files if not f.exists()]
    if missing:
        sys.exit(f"missing data files: {missing[:3]}")
    os.environ["DATABASE_URL"] = scratch_database()
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cryptooracle.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from predictor.ml.csvformats import CandleReader, Source, detect_layout
    from predictor.services.importing import stocks_import

    call_command("migrate", verbosity=0)

    started = time.perf_counter()
    first = stocks_import(files[:1], exchange="binance")
    rest = stocks_import(files[1:])
    ours = time.perf_counter() - started
    results = first + rest
    failed = [r.error for r in results if r.error]
    if failed:
        sys.exit(f"import failed: {failed[0]}")
    rows = sum(r.result.rows for r in results if r.result)

    # The same rows as COPY-ready CSV text, prepared outside the timing.
    buffer = io.StringIO()
    for path in files:
        source = Source(path)
        for chunk in CandleReader(source, detect_layout(source)).chunks():
            for t, o, h, lo, c, v in zip(
                chunk.open_time.tolist(),
                chunk.open.tolist(),
                chunk.high.tolist(),
                chunk.low.tolist(),
                chunk.close.tolist(),
                chunk.volume.tolist(),
                strict=True,
            ):
                buffer.write(f"{path.name[:12]},1m,{t},{o!r},{h!r},{lo!r},{c!r},{v!r}\n")
    text = buffer.getvalue()
    timings = {}
    with connection.cursor() as cur:
        for name, key in (("bare", ""), ("keyed", ", UNIQUE (market, iv, ts)")):
            cur.execute(
                f"CREATE TABLE raw_{name} (market text, iv text, ts bigint, open float8, high float8, "
                f"low float8, close float8, volume float8{key})"
            )
            connection.commit() if not connection.get_autocommit() else None
            t0 = time.perf_counter()
            cur.copy_expert(f"COPY raw_{name} FROM STDIN WITH (FORMAT csv)", io.StringIO(text))
            timings[name] = time.perf_counter() - t0
    print(f"files: {len(files)}, rows: {rows:,}")
    print(f"import_stocks (parse+validate+stage+merge): {ours:.2f} s = {rows / ours:,.0f} rows/s")
    for name, seconds in timings.items():
        print(
            f"raw COPY into {name} table: {seconds:.2f} s = {rows / seconds:,.0f} rows/s; "
            f"import_stocks / raw COPY = {seconds / ours:.2f}"
        )


if __name__ == "__main__":
    main()
