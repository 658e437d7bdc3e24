"""``import_stocks``: layouts into the database, idempotence, conflicts, errors."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from predictor.models import Candle, ImportedFile, Market

pytestmark = pytest.mark.django_db

T0 = 1_704_067_200  # 2024-01-01 00:00 UTC
HEADER = "timestamp,open,high,low,close,volume\n"


def rows(n: int, *, start: int = T0, step: int = 60, price: float = 100.0) -> str:
    return "".join(
        f"{(start + step * i) * 1000},{price + i},{price + i + 2},{price + i - 1},{price + i + 1},{price + i - 99}\n"
        for i in range(n)
    )


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("import_stocks", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_plain_file_is_imported_with_open_times_and_values(write_csv: Callable[..., Path]) -> None:
    path = write_csv("BTCUSDT_1m.csv", HEADER + rows(5))
    out, _ = run("--file", str(path), "--exchange", "binance")
    market = Market.objects.get()
    assert (market.exchange, market.symbol, market.base_asset, market.quote_asset) == (
        "binance",
        "BTCUSDT",
        "BTC",
        "USDT",
    )
    candles = list(Candle.objects.order_by("open_time"))
    assert len(candles) == 5
    assert candles[0].open_time.timestamp() == T0
    assert candles[0].interval == "1m"
    assert (
        candles[4].open,
        candles[4].high,
        candles[4].low,
        candles[4].close,
        candles[4].volume,
    ) == (104.0, 106.0, 103.0, 105.0, 5.0)  # volume = price - 99
    assert "inserted 5" in out


def test_importing_twice_adds_nothing_and_overlaps_merge(write_csv: Callable[..., Path]) -> None:
    first = write_csv("BTCUSDT_1m.csv", HEADER + rows(10))
    run("--file", str(first), "--exchange", "binance")
    out, _ = run("--file", str(first), "--exchange", "binance")
    assert "inserted 0, duplicates skipped 10" in out
    overlapping = write_csv("BTCUSDT_1m_b.csv", HEADER + rows(10, start=T0 + 5 * 60, price=105.0))
    out, _ = run("--file", str(overlapping), "--exchange", "binance", "--symbol", "BTCUSDT")
    assert "inserted 5, duplicates skipped 5" in out
    assert Candle.objects.count() == 15


def test_conflicting_values_are_reported_and_kept_unless_replace(
    write_csv: Callable[..., Path],
) -> None:
    run("--file", str(write_csv("BTCUSDT_1m.csv", HEADER + rows(3))), "--exchange", "binance")
    changed = write_csv("BTCUSDT_1m_v2.csv", HEADER + rows(3, price=200.0))
    out, _ = run("--file", str(changed), "--exchange", "binance", "--symbol", "BTCUSDT")
    assert "CONFLICTS 3 (kept stored values)" in out
    assert "line 2:" in out
    assert sorted(Candle.objects.values_list("close", flat=True)) == [101.0, 102.0, 103.0]
    out, _ = run(
        "--file", str(changed), "--exchange", "binance", "--symbol", "BTCUSDT", "--replace"
    )
    assert "replaced" in out
    assert sorted(Candle.objects.values_list("close", flat=True)) == [201.0, 202.0, 203.0]


def test_cryptodatadownload_newest_first_from_its_own_symbol(
    write_csv: Callable[..., Path],
) -> None:
    path = write_csv(
        "gemini_BTCUSD_1hr.csv",
        (
            "https://www.CryptoDataDownload.com\n"
            "Unix Timestamp,Date,Symbol,Open,High,Low,Close,Volume\n"
            f"{(T0 + 7200) * 1000},2024-01-01 02:00:00,BTCUSD,3,4,2,3.5,1.5\n"
            f"{T0 + 3600},2024-01-01 01:00:00,BTCUSD,2,3,1,3,1\n"
            f"{T0},2024-01-01 00:00:00,BTCUSD,1,2,0.5,2,2\n"
        ),
    )
    out, _ = run("--file", str(path))
    assert str(Market.objects.get()) == "gemini:BTCUSD"
    assert set(Candle.objects.values_list("interval", flat=True)) == {"1h"}
    assert "no gaps" in out


def test_zip_archives_and_directories_are_imported(
    write_csv: Callable[..., Path], tmp_path: Path
) -> None:
    write_csv("BTCUSDT-1m-2024-01.zip", rows(4).replace(",1\n", ",1,0,0,0,0,0,0\n"))
    body = "".join(
        f"{(T0 + 60 * i) * 1000},1,2,0.5,1.5,3,{(T0 + 60 * i) * 1000 + 59999},4,5,6,7,0\n"
        for i in range(4)
    )
    write_csv("ETHUSDT-1m-2024-01.zip", body)
    (tmp_path / "BTCUSDT-1m-2024-01.zip").unlink()
    run("--dir", str(tmp_path))
    assert str(Market.objects.get()) == "binance:ETHUSDT"
    assert Candle.objects.count() == 4


def test_gaps_are_reported_with_the_largest(write_csv: Callable[..., Path]) -> None:
    body = rows(3) + rows(2, start=T0 + 10 * 60)
    out, _ = run("--file", str(write_csv("BTCUSDT_1m.csv", HEADER + body)), "--exchange", "binance")
    assert "gaps 1 (largest 8m, 7 bars missing)" in out


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (rows(2) + f"{T0 * 1000 + 180_000},1,2,0.5,zz,1\n", "line 4, field 'close'"),
        (
            rows(2) + f"{T0 * 1000 + 180_000},1,0.1,0.5,1,1\n",
            "line 4, field 'high': high is below low",
        ),
        (
            rows(2) + f"{T0 * 1000 + 180_000},-1,2,0.5,1,1\n",
            "line 4, field 'open': price must be positive",
        ),
        (rows(2) + f"{T0 * 1000 + 150_000},1,2,0.5,1,1\n", "line 4, field 'time'"),
        (rows(3) + f"{T0 * 1000},9,9,9,9,9\n", "line 5, field 'time'"),
    ],
)
def test_bad_input_stops_the_file_and_writes_nothing(
    write_csv: Callable[..., Path], body: str, expected: str
) -> None:
    bad = write_csv("BTCUSDT_1m.csv", HEADER + body)
    good = write_csv("ETHUSDT_1m.csv", HEADER + rows(3))
    with pytest.raises(CommandError, match="1 of 2 files failed"):
        run("--file", str(bad), "--file", str(good), "--exchange", "binance")
    # The other file went on; nothing of the bad one exists, not even its market.
    assert list(Market.objects.values_list("symbol", flat=True)) == ["ETHUSDT"]
    assert Candle.objects.count() == 3
    err = StringIO()
    with pytest.raises(CommandError):
        call_command(
            "import_stocks",
            "--file",
            str(bad),
            "--exchange",
            "binance",
            stderr=err,
            stdout=StringIO(),
        )
    assert expected in err.getvalue()


@pytest.mark.parametrize(
    ("bad_row", "expected"),
    [
        (f"{(T0 + 60 * 30) * 1000},100,oops,99,101,5\n", "line 32, field 'high'"),  # parsing
        (f"{(T0 + 60 * 30) * 1000},100,90,99,101,5\n", "line 32, field 'high'"),  # high < low
        (f"{(T0 + 60 * 5) * 1000},1,1,1,1,1\n", "line 32, field 'time'"),  # repeats, differs
    ],
)
def test_a_bad_row_in_a_late_chunk_is_reported_with_its_line_and_leaves_nothing(
    write_csv: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
    bad_row: str,
    expected: str,
) -> None:
    from predictor.services import importing

    monkeypatch.setattr(importing, "IMPORT_CHUNK_ROWS", 4)  # 8 chunks, read ahead in a thread
    path = write_csv("BTCUSDT_1m.csv", HEADER + rows(30) + bad_row + rows(3, start=T0 + 7200))
    (result,) = importing.stocks_import([path], exchange="binance")
    assert result.error is not None
    assert expected in result.error
    assert Candle.objects.count() == 0
    assert Market.objects.count() == 0
    assert not [t for t in threading.enumerate() if t.name.startswith("import ")]


def test_small_chunks_read_ahead_import_every_row(
    write_csv: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from predictor.services import importing

    monkeypatch.setattr(importing, "IMPORT_CHUNK_ROWS", 7)
    path = write_csv("BTCUSDT_1m.csv", HEADER + rows(100) + rows(50, start=T0 + 3600 * 5))
    (result,) = importing.stocks_import([path], exchange="binance")
    assert result.error is None
    assert result.result is not None
    assert (result.result.rows, result.result.inserted, result.result.gap_count) == (150, 150, 1)
    times = Candle.objects.order_by("open_time").values_list("open_time", flat=True)
    assert [t.timestamp() for t in times[:2]] == [T0, T0 + 60]
    assert not [t for t in threading.enumerate() if t.name.startswith("import ")]


def test_same_time_twice_with_equal_values_is_a_duplicate_not_an_error(
    write_csv: Callable[..., Path],
) -> None:
    body = rows(3) + rows(1)  # the first row again, identical
    out, _ = run("--file", str(write_csv("BTCUSDT_1m.csv", HEADER + body)), "--exchange", "binance")
    assert "read 4, inserted 3, duplicates skipped 1" in out


def test_a_truncated_gzip_imports_nothing(write_csv: Callable[..., Path]) -> None:
    path = write_csv("BTCUSDT_1m.csv.gz", HEADER + rows(20_000))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 200])
    with pytest.raises(CommandError):
        run("--file", str(path), "--exchange", "binance")
    assert Candle.objects.count() == 0
    assert Market.objects.count() == 0


def test_unknown_exchange_and_missing_symbol_are_explained(write_csv: Callable[..., Path]) -> None:
    err = StringIO()
    with pytest.raises(CommandError):
        call_command(
            "import_stocks",
            "--file",
            str(write_csv("x_1m.csv", HEADER + rows(2))),
            "--exchange",
            "binance",
            stderr=err,
            stdout=StringIO(),
        )
    assert "pass --symbol" in err.getvalue()
    err = StringIO()
    with pytest.raises(CommandError):
        call_command(
            "import_stocks",
            "--file",
            str(write_csv("BTCUSDT_1m.csv", HEADER + rows(2))),
            stderr=err,
            stdout=StringIO(),
        )
    assert "pass --exchange" in err.getvalue()


def test_if_present_succeeds_on_an_empty_folder(tmp_path: Path) -> None:
    out, _ = run("--dir", str(tmp_path), "--if-present")
    assert "Nothing to import" in out
    with pytest.raises(CommandError, match=r"no \.csv"):
        run("--dir", str(tmp_path))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_if_present_skips_files_unchanged_since_their_import(
    write_csv: Callable[..., Path], tmp_path: Path
) -> None:
    btc = write_csv("BTCUSDT_1m.csv", HEADER + rows(5))
    eth = write_csv("ETHUSDT-1m-2024-01.zip", rows(4).replace(",1\n", ",1,0,0,0,0,0,0\n"))
    out, _ = run("--dir", str(tmp_path), "--if-present", "--exchange", "binance")
    assert out.count("✓") == 2
    assert "Skipped" not in out
    record = ImportedFile.objects.get(path=str(btc.resolve()))
    assert (record.given_path, record.size, record.sha256) == (
        str(btc),
        btc.stat().st_size,
        _sha256(btc),
    )
    assert (record.rows, record.inserted, record.duplicates, record.conflicts) == (5, 5, 0, 0)
    assert record.mtime.timestamp() == pytest.approx(btc.stat().st_mtime, abs=1e-3)

    # Gone from the database: a skipped file is not read, or they would be back.
    Market.objects.filter(symbol="BTCUSDT").delete()
    os.utime(eth, (1e9, 1e9))  # touched: same size and content, another mtime
    out, _ = run("--dir", str(tmp_path), "--if-present", "--exchange", "binance")
    assert "✓" not in out
    assert "Skipped 2 files already imported and unchanged" in out
    assert not Candle.objects.filter(market__symbol="BTCUSDT").exists()
    out, _ = run("--dir", str(tmp_path), "--if-present", "--verbosity", "2")
    assert f"- {btc}: skipped, unchanged since its import on" in out

    out, _ = run("--file", str(btc), "--exchange", "binance")  # explicit: read again
    assert "inserted 5" in out
    out, _ = run("--file", str(btc), "--exchange", "binance", "--if-present", "--replace")
    assert "duplicates skipped 5" in out
    assert "Skipped" not in out
    assert ImportedFile.objects.get(path=str(btc.resolve())).duplicates == 5
    assert ImportedFile.objects.count() == 2


def test_a_changed_file_of_the_same_size_and_mtime_is_imported_again(
    write_csv: Callable[..., Path],
) -> None:
    path = write_csv("BTCUSDT_1m.csv", HEADER + rows(5))
    run("--file", str(path), "--exchange", "binance", "--if-present")
    before = path.stat()
    changed = write_csv("BTCUSDT_1m.csv", HEADER + rows(5).replace(",101.0,", ",101.5,", 1))
    os.utime(changed, ns=(before.st_atime_ns, before.st_mtime_ns))  # as a copy with -p
    assert changed.stat().st_size == before.st_size
    out, _ = run("--file", str(path), "--exchange", "binance", "--if-present")
    assert "CONFLICTS 1 (kept stored values)" in out
    assert "Skipped" not in out
    record = ImportedFile.objects.get()
    assert (record.sha256, record.conflicts, record.duplicates) == (_sha256(path), 1, 4)
    out, _ = run("--file", str(path), "--exchange", "binance", "--if-present")
    assert "Skipped 1 file already imported" in out


def test_a_failed_file_is_not_recorded_and_is_tried_again(
    write_csv: Callable[..., Path], tmp_path: Path
) -> None:
    good = write_csv("ETHUSDT_1m.csv", HEADER + rows(3))
    bad = write_csv("BTCUSDT_1m.csv", HEADER + rows(3) + f"{(T0 + 180) * 1000},1,1,2,1,1\n")
    for _ in range(2):
        err = StringIO()
        with pytest.raises(CommandError, match="1 of 2 files failed"):
            call_command(
                "import_stocks", "--dir", str(tmp_path), "--if-present", "--exchange", "binance",
                stdout=StringIO(), stderr=err,
            )  # fmt: skip
        assert "BTCUSDT_1m.csv, line 5, field 'high'" in err.getvalue()
        assert list(ImportedFile.objects.values_list("path", flat=True)) == [str(good.resolve())]
    write_csv("BTCUSDT_1m.csv", HEADER + rows(4))
    out, _ = run("--dir", str(tmp_path), "--if-present", "--exchange", "binance")
    assert "inserted 4" in out
    assert "Skipped 1 file already imported" in out
    assert ImportedFile.objects.get(path=str(bad.resolve())).rows == 4


@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.parametrize(
    ("relative", "args", "count", "first", "last", "sample"),
    [
        (
            "Filimonov-Eremeyka__freqtrade/BTCUSDT_1m.csv.gz",
            ["--exchange", "binance"],
            130_708,
            "2025-05-20 00:00",
            "2025-08-18 18:27",
            ("2025-05-20 00:00", 105573.73, 105554.32),
        ),
        (
            "MallikharjunaBomma__tasks/gemini_BTCUSD_2020_1min.csv.gz",
            [],
            50_500,
            "2021-03-15 22:16",
            "2021-04-20 00:02",
            ("2021-04-20 00:02", 55717.47, 55541.69),
        ),
        (
            "owlacar-dotcom__isda/ALGOUSDT-1m-2023-02.csv.gz",
            [],
            40_320,
            "2023-02-01 00:00",
            "2023-02-28 23:59",
            ("2023-02-01 00:00", 0.2413, 0.2418),
        ),
    ],
)
def test_real_files_import_with_the_documented_rows_and_values(
    shared_data: Path,
    relative: str,
    args: list[str],
    count: int,
    first: str,
    last: str,
    sample: tuple[str, float, float],
) -> None:
    run("--file", str(shared_data / relative), *args)
    candles = Candle.objects.order_by("open_time")
    assert candles.count() == count
    assert f"{candles.first().open_time:%Y-%m-%d %H:%M}" == first  # type: ignore[union-attr]
    assert f"{candles.last().open_time:%Y-%m-%d %H:%M}" == last  # type: ignore[union-attr]
    when, open_, close = sample
    row = next(
        c
        for c in candles.filter(open_time__startswith=when[:10])
        if f"{c.open_time:%Y-%m-%d %H:%M}" == when
    )
    assert (row.open, row.close) == (open_, close)
    if "owlacar" in relative:
        assert Market.objects.get().exchange == "binance-futures"
