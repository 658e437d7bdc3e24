"""Layout detection and parsing of candle files, without a database."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from predictor.ml.csvformats import CandleReader, detect_layout
from predictor.ml.csvsources import (
    CandleFileError,
    Source,
    exchange_from_name,
    sources_in,
    symbol_from_name,
)
from predictor.ml.csvtimes import TimeParser

T0 = 1_704_067_200  # 2024-01-01 00:00 UTC


def read_all(path: Path) -> tuple[str, np.ndarray, np.ndarray, np.ndarray, CandleReader]:
    source = sources_in(path)[0]
    layout = detect_layout(source, symbol_hint=symbol_from_name(source))
    reader = CandleReader(source, layout, chunk_rows=2)  # tiny chunks: line numbers must carry over
    chunks = list(reader.chunks())
    times = np.concatenate([c.open_time for c in chunks])
    close = np.concatenate([c.close for c in chunks])
    lines = np.concatenate([c.line for c in chunks])
    return layout.kind, times, close, lines, reader


def test_cryptodatadownload_with_banner_mixed_units_and_rounded_timestamps(
    write_csv: Callable[..., Path],
) -> None:
    path = write_csv(
        "gemini_BTCUSD_1min.csv",
        (
            "https://www.CryptoDataDownload.com\n"
            "Unix Timestamp,Date,Symbol,Open,High,Low,Close,Volume BTC,Volume USD\n"
            f"{(T0 + 120) * 1000},2024-01-01 00:02:00,BTCUSD,3,4,2,3.5,1.5,5.25\n"
            f"{T0 + 60},2024-01-01 00:01:00,BTCUSD,2,3,1,3,1,3\n"
            "1.70407E+12,2024-01-01 00:00:00,BTCUSD,1,2,0.5,2,2,4\n"
        ),
    )
    kind, times, close, lines, reader = read_all(path)
    assert kind == "cryptodatadownload"
    assert times.tolist() == [T0 + 120, T0 + 60, T0]
    assert close.tolist() == [3.5, 3.0, 2.0]
    assert lines.tolist() == [3, 4, 5]
    assert reader.symbols_seen == {"BTCUSD"}
    assert reader.date_corrections == 1  # the rounded row: Date decided


def test_spreadsheet_dates_are_read_day_or_month_first_by_the_unix_hint(
    write_csv: Callable[..., Path],
) -> None:
    # 06-12-21 is 6 December 2021 here; the rounded unix (1.63875E+12) tells it from 12 June.
    path = write_csv(
        "Binance_DOTUSDT_1h.csv",
        (
            "unix,date,time,symbol,open,high,low,close,Volume DOT,Volume USDT,tradecount\n"
            "1.63875E+12,06-12-21,00:00:00,DOT/USDT,28.31,28.35,27.43,27.47,136745.49,3805768.8,5869\n"
            "1.63875E+12,05-12-21,23:00:00,DOT/USDT,28.16,28.6,28.01,28.31,291868.59,8254209.2,12442\n"
        ),
    )
    _, times, _, _, _ = read_all(path)
    assert times.tolist() == [1638748800, 1638745200]


def test_binance_spot_dump_without_header_in_microseconds(write_csv: Callable[..., Path]) -> None:
    rows = "".join(
        f"{(T0 + 60 * i) * 1_000_000},1.{i},2,1,1.5,10,{(T0 + 60 * i + 59) * 1_000_000 + 999999},15,3,5,7,0\n"
        for i in range(3)
    )
    path = write_csv("BTCUSDT-1m-2024-01.zip", rows)
    source = sources_in(path)[0]
    layout = detect_layout(source)
    assert layout.kind == "binance-kline"
    assert layout.header_exchange == "binance"
    _kind, times, _, _, _ = read_all(path)
    assert times.tolist() == [T0, T0 + 60, T0 + 120]
    assert symbol_from_name(source) == "BTCUSDT"


def test_binance_futures_dump_is_recognised_by_its_header(write_csv: Callable[..., Path]) -> None:
    path = write_csv(
        "ALGOUSDT-1m-2023-02.csv.gz",
        (
            "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,"
            "taker_buy_quote_volume,ignore\n"
            f"{T0 * 1000},0.24,0.25,0.23,0.24,100,{T0 * 1000 + 59999},24,5,50,12,0\n"
        ),
    )
    layout = detect_layout(sources_in(path)[0])
    assert layout.header_exchange == "binance-futures"


@pytest.mark.parametrize(
    ("header", "time_value"),
    [
        ("timestamp", f"{T0 * 1000}"),
        ("timestamp", f"{T0}"),
        ("date", "2024-01-01 00:00:00"),
        ("timestamp", "2024-01-01 00:00:00"),
    ],
)
def test_plain_ohlcv_with_ms_seconds_or_dates(
    write_csv: Callable[..., Path], header: str, time_value: str
) -> None:
    path = write_csv(
        "BTCUSDT_1m.csv", f"{header},open,high,low,close,volume\n{time_value},1,2,0.5,1.5,3\n"
    )
    kind, times, close, _, _ = read_all(path)
    assert kind == "ohlcv"
    assert times.tolist() == [T0]
    assert close.tolist() == [1.5]


def test_columns_in_any_order_are_found_by_name(write_csv: Callable[..., Path]) -> None:
    path = write_csv(
        "BTCUSD_1d.csv",
        (
            "timestamp,open,close,volume,unix_timestamp,high,low\n"
            f"2024-01-01 00:00:00,10,11,5,{T0},12,9\n"
        ),
    )
    _, times, close, _, _ = read_all(path)
    assert times.tolist() == [T0]
    assert close.tolist() == [11.0]


def test_headerless_kraken_style_rows(write_csv: Callable[..., Path]) -> None:
    path = write_csv("XBTUSD_60.csv", f"{T0},1,2,0.5,1.5,3,7\n{T0 + 3600},1,2,0.5,1.5,3,7\n")
    kind, times, _, _, _ = read_all(path)
    assert kind == "ohlcv"
    assert times.tolist() == [T0, T0 + 3600]


@pytest.mark.parametrize(
    ("body", "line", "field", "reason"),
    [
        ("{t},1,2,0.5,abc,3\n", 2, "close", "not a number"),
        ("{t},1,2,0.5,,3\n", 2, "close", "empty"),
        ("{t},1,0.4,0.5,1,3\n", 2, "high", "below low"),
        ("{t},0,2,0.5,1,3\n", 2, "open", "positive"),
        ("{t},1,2,0.5,1,-3\n", 2, "volume", "negative"),
        ("{t},1,2,0.5,1,3\nnot-a-time,1,2,0.5,1,3\n", 3, "timestamp", "time"),
    ],
)
def test_bad_values_name_file_line_and_field(
    write_csv: Callable[..., Path], body: str, line: int, field: str, reason: str
) -> None:
    path = write_csv(
        "BTCUSDT_1m.csv", "timestamp,open,high,low,close,volume\n" + body.format(t=T0 * 1000)
    )
    with pytest.raises(CandleFileError) as caught:
        read_all(path)
    error = caught.value
    assert (error.line, error.field) == (line, field)
    assert reason in error.reason
    assert str(path) in str(error)


def test_a_file_without_price_columns_is_refused(write_csv: Callable[..., Path]) -> None:
    path = write_csv("x.csv", "time,price,amount\n1,2,3\n")
    with pytest.raises(CandleFileError, match="no header with open/high/low/close"):
        detect_layout(Source(path))


def test_a_truncated_gzip_is_an_error_not_a_short_file(write_csv: Callable[..., Path]) -> None:
    rows = "".join(f"{(T0 + 60 * i) * 1000},1,2,0.5,1.5,3\n" for i in range(5000))
    path = write_csv("BTCUSDT_1m.csv.gz", "timestamp,open,high,low,close,volume\n" + rows)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CandleFileError, match="truncated or corrupt"):
        read_all(path)


@pytest.mark.parametrize("where", ["deflate data", "crc"])
def test_a_damaged_gzip_is_an_error_naming_the_file(
    write_csv: Callable[..., Path], where: str
) -> None:
    rows = "".join(f"{(T0 + 60 * i) * 1000},1,2,0.5,1.5,3\n" for i in range(5000))
    path = write_csv("BTCUSDT_1m.csv.gz", "timestamp,open,high,low,close,volume\n" + rows)
    data = bytearray(path.read_bytes())
    if where == "crc":
        data[-8] ^= 0xFF  # the trailer's checksum no longer matches the rows
    else:
        data[300:364] = b"\xff" * 64  # an invalid deflate block
    path.write_bytes(bytes(data))
    with pytest.raises(CandleFileError, match="truncated or corrupt") as caught:
        read_all(path)
    assert str(path) in str(caught.value)


def test_chunks_start_small_and_double_up_to_the_chunk_size(
    write_csv: Callable[..., Path],
) -> None:
    body = "".join(
        f"{(T0 + 60 * i) * 1000},{i + 2},{i + 3},{i + 1},{i + 2},1\n" for i in range(100)
    )
    path = write_csv("BTCUSDT_1m.csv", "timestamp,open,high,low,close,volume\n" + body)
    source = Source(path)
    ramped = list(CandleReader(source, detect_layout(source), 16, first_chunk_rows=3).chunks())
    assert [len(c) for c in ramped] == [3, 6, 12, 16, 16, 16, 16, 15]
    (whole,) = CandleReader(source, detect_layout(source), 1000).chunks()
    assert np.concatenate([c.line for c in ramped]).tolist() == whole.line.tolist()
    assert np.concatenate([c.open_time for c in ramped]).tolist() == whole.open_time.tolist()
    assert np.concatenate([c.close for c in ramped]).tolist() == whole.close.tolist()


def test_exchange_and_symbol_come_from_the_file_name() -> None:
    source = Source(Path("/x/gemini_BTCUSD_1hr.csv.gz"))
    assert exchange_from_name(source) == "gemini"
    assert symbol_from_name(source) == "BTCUSD"
    assert exchange_from_name(Source(Path("/x/BTCUSDT_1m.csv"))) is None


def test_real_gemini_spreadsheet_file_is_read_by_its_date_column(shared_data: Path) -> None:
    path = shared_data / "MallikharjunaBomma__tasks" / "gemini_BTCUSD_2020_1min.csv.gz"
    source = Source(path)
    reader = CandleReader(source, detect_layout(source))
    chunks = list(reader.chunks())
    times = np.concatenate([c.open_time for c in chunks])
    assert times.size == 50_500
    assert times[0] == 1618876920  # 2021-04-20 00:02, newest first
    assert times[-1] == 1615846560  # 2021-03-15 22:16
    assert chunks[0].close[0] == 55541.69


@pytest.mark.parametrize("dtype", [object, "str", "string"])
def test_a_timestamp_column_of_date_strings_is_read_in_every_pandas_string_dtype(
    dtype: object,
) -> None:
    frame = pd.DataFrame(
        {"timestamp": pd.Series(["2024-01-01 00:00:00", "2024-01-01 00:01:00"], dtype=dtype)}
    )
    parser = TimeParser("plain.csv", time_numeric="timestamp", time_text=None)
    seconds = parser(frame, np.array([2, 3]))
    assert seconds.tolist() == [T0, T0 + 60]
