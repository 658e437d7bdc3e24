"""Import speed on PostgreSQL against a raw COPY of the same rows, in one run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/co_importbench \\
        .venv/bin/python bench/import_bench.py [--repeat 3] [--chunk-rows N] [--first-chunk-rows N]

Imports the 130,708-row Binance BTCUSDT 1m file and every owlacar-dotcom__isda 1m
month (2,009,908 rows in all) from ../shared/data through the real ``import_stocks``
service (parse, validate, write into the indexed candle table, one transaction
per file), and COPYs the same rows, as CSV prepared beforehand (not timed),
into (a) a bare table with no index and (b) a table with the same unique key.
Both have the candle table's column types: market, interval (seconds) and time
as bigints, prices and volume as float8. The three are interleaved file by file
(the order rotating), so that the load of a shared machine, which swings within seconds, weighs on
all three alike. Also times parsing the files alone (in the import's chunks), the
floor of the import's client side. Prints rows/s and the ratios per round, then
the medians.

``--chunk-rows`` and ``--first-chunk-rows`` set the import's chunk sizes for the run
(``IMPORT_CHUNK_ROWS``, ``IMPORT_FIRST_CHUNK_ROWS``: chunks start at the first and
double up to the other).

The database named in DATABASE_URL is dropped and created afresh (``postgres``
or none: ``cryptooracle_bench``). Every round starts from empty tables after a
CHECKPOINT.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SHARED_DATA", ROOT.parent / "shared" / "data"))
DEFAULT_DB = "cryptooracle_bench"
KINDS = ("import_stocks", "bare", "keyed")


def scratch_database(url: str | None = None, default: str = DEFAULT_DB) -> str:
    """``url``'s database (``default`` when it names none or ``postgres``), dropped and made anew."""
    url = url or os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    parts = urlsplit(url)
    name = parts.path.strip("/") or "postgres"
    name = default if name == "postgres" else name
    admin = psycopg2.connect(urlunsplit(parts._replace(path="/postgres")))
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cur.execute(f'CREATE DATABASE "{name}"')
    admin.close()
    return urlunsplit(parts._replace(path=f"/{name}"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="rounds (default 3)")
    parser.add_argument(
        "--chunk-rows", type=int, default=0, help="rows per parsed chunk (default: the import's)"
    )
    parser.add_argument(
        "--first-chunk-rows",
        type=int,
        default=0,
        help="rows in a file's first chunk (default: the import's)",
    )
    args = parser.parse_args()
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
    from predictor.services import importing

    if args.chunk_rows:
        importing.IMPORT_CHUNK_ROWS = args.chunk_rows
    if args.first_chunk_rows:
        importing.IMPORT_FIRST_CHUNK_ROWS = args.first_chunk_rows
    sizes = importing.IMPORT_FIRST_CHUNK_ROWS, importing.IMPORT_CHUNK_ROWS
    print("import chunks: {:,} rows, doubling up to {:,}".format(*sizes))
    prepare()
    texts, parse_seconds = csv_texts(files, *sizes)
    rows = sum(text.count("\n") for text in texts)
    print(f"files: {len(files)}, rows: {rows:,}; parsing alone: {rate(rows, parse_seconds)}")
    rounds = []
    for n in range(1, args.repeat + 1):
        rounds.append(timed_round(files, texts, rows))
        report(f"round {n}", rows, rounds[-1])
    if len(rounds) > 1:
        medians = {k: statistics.median(r[k] for r in rounds) for k in KINDS}
        report("median", rows, medians)
        ratios = [r["bare"] / r["import_stocks"] for r in rounds]
        keyed = [r["keyed"] / r["import_stocks"] for r in rounds]
        print(
            f"median of the rounds' ratios: {statistics.median(ratios):.2f} bare, "
            f"{statistics.median(keyed):.2f} keyed (range {min(ratios):.2f}–{max(ratios):.2f} bare)"
        )


def prepare() -> None:
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    connection.set_autocommit(True)
    with connection.cursor() as cur:
        # As the import does per file: 45 COPYs must not each wait for a WAL flush.
        cur.execute("SET synchronous_commit TO OFF")
        for name, key in (("bare", ""), ("keyed", ", UNIQUE (market, iv, ts)")):
            cur.execute(
                f"CREATE TABLE raw_{name} (market bigint, iv bigint, ts bigint, open float8, "
                f"high float8, low float8, close float8, volume float8{key})"
            )


def csv_texts(files: list[Path], first: int, most: int) -> tuple[list[str], float]:
    """Each file's rows as COPY-ready CSV, and the seconds that parsing the files took."""
    from predictor.ml.csvformats import CandleReader, detect_layout
    from predictor.ml.csvsources import Source

    parsed = []
    started = time.perf_counter()
    for path in files:
        source = Source(path)
        reader = CandleReader(
            source, detect_layout(source), chunk_rows=most, first_chunk_rows=first
        )
        parsed.append((path, list(reader.chunks())))
    seconds = time.perf_counter() - started
    texts = []
    for market, (_path, chunks) in enumerate(parsed, start=1):
        buffer = io.StringIO()
        for chunk in chunks:
            for t, o, h, lo, c, v in zip(
                chunk.open_time.tolist(),
                chunk.open.tolist(),
                chunk.high.tolist(),
                chunk.low.tolist(),
                chunk.close.tolist(),
                chunk.volume.tolist(),
                strict=True,
            ):
                buffer.write(f"{market},60,{t},{o!r},{h!r},{lo!r},{c!r},{v!r}\n")
        texts.append(buffer.getvalue())
    return texts, seconds


def timed_round(files: list[Path], texts: list[str], expected_rows: int) -> dict[str, float]:
    from django.db import connection

    from predictor.services.importing import stocks_import

    with connection.cursor() as cur:
        cur.execute("TRUNCATE predictor_candle, predictor_market, raw_bare, raw_keyed CASCADE")
        cur.execute("CHECKPOINT")
    seconds = dict.fromkeys(KINDS, 0.0)
    read = 0

    def import_file(i: int) -> None:
        nonlocal read
        (result,) = stocks_import([files[i]], exchange="binance" if i == 0 else None)
        if result.error or result.result is None:
            sys.exit(f"import failed: {result.error}")
        read += result.result.rows

    def copy(name: str, i: int) -> None:
        with connection.cursor() as cur:
            cur.copy_expert(f"COPY raw_{name} FROM STDIN WITH (FORMAT csv)", io.StringIO(texts[i]))

    steps: dict[str, Callable[[int], None]] = {
        "import_stocks": import_file,
        "bare": lambda i: copy("bare", i),
        "keyed": lambda i: copy("keyed", i),
    }
    for i in range(len(files)):
        for kind in KINDS[i % 3 :] + KINDS[: i % 3]:
            started = time.perf_counter()
            steps[kind](i)
            seconds[kind] += time.perf_counter() - started
    if read != expected_rows:
        sys.exit(f"import read {read:,} rows, expected {expected_rows:,}")
    return seconds


def rate(rows: int, seconds: float) -> str:
    return f"{seconds:.2f} s = {rows / seconds:,.0f} rows/s"


def report(label: str, rows: int, t: dict[str, float]) -> None:
    ours = t["import_stocks"]
    print(
        f"{label}: import_stocks {rate(rows, ours)}; raw COPY bare {rate(rows, t['bare'])}, "
        f"keyed {rate(rows, t['keyed'])}; import_stocks / raw COPY = "
        f"{t['bare'] / ours:.2f} bare, {t['keyed'] / ours:.2f} keyed",
        flush=True,
    )


if __name__ == "__main__":
    main()
