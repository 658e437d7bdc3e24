"""Bulk downloads from a local fake of data.binance.vision and CryptoDataDownload."""

from __future__ import annotations

import hashlib
import io
import socket
import zipfile

import pytest
from werkzeug import Request, Response

from predictor.services.downloads import (
    ChecksumMismatch,
    DownloadError,
    NoNetwork,
    binance_archive_download,
    cryptodatadownload_download,
    months_between,
    safe_symbol,
)
from predictor.services.providers import HttpClient, RetryPolicy
from tests.predictor.fake_exchange import START, binance_kline

SPOT = "/data/spot/monthly/klines/BTCUSDT/1m"


def _archive(month: str) -> bytes:
    """A monthly kline zip as Binance publishes it: one headerless CSV of 12 columns."""
    rows = [binance_kline(START + i * 60, 60) for i in range(5)]
    text = "".join(",".join(str(v) for v in row) + "\n" for row in rows)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"BTCUSDT-1m-{month}.csv", text)
    return buffer.getvalue()


def _publish(httpserver, folder: str, month: str, *, checksum: str | None = None) -> bytes:
    name = f"BTCUSDT-1m-{month}.zip"
    data = _archive(month)
    digest = checksum or hashlib.sha256(data).hexdigest()
    httpserver.expect_request(f"{folder}/{name}").respond_with_data(
        data, content_type="application/zip"
    )
    httpserver.expect_request(f"{folder}/{name}.CHECKSUM").respond_with_data(
        f"{digest}  {name}\n", content_type="text/plain"
    )
    return data


def _fast_client(name: str) -> HttpClient:
    return HttpClient(name, timeout=(1.0, 2.0), retry=RetryPolicy(attempts=2), sleep=lambda s: None)


def _paths(httpserver) -> list[str]:
    return [request.path for request, _ in httpserver.log]


def test_monthly_archives_are_downloaded_verified_and_returned_in_order(httpserver, tmp_path):
    published = {m: _publish(httpserver, SPOT, m) for m in ("2024-01", "2024-02", "2024-03")}
    paths = binance_archive_download(
        "btcusdt", "1m", "2024-01", "2024-03", dest_dir=tmp_path, base_url=httpserver.url_for("/")
    )
    assert [p.name for p in paths] == [f"BTCUSDT-1m-{m}.zip" for m in published]
    assert [p.read_bytes() for p in paths] == list(published.values())
    assert sorted(p.name for p in tmp_path.iterdir()) == [p.name for p in paths]  # no .part left


def test_a_checksum_mismatch_is_rejected_and_nothing_kept(httpserver, tmp_path):
    _publish(httpserver, SPOT, "2024-01", checksum="0" * 64)
    with pytest.raises(ChecksumMismatch, match="differs from the published CHECKSUM"):
        binance_archive_download(
            "BTCUSDT",
            "1m",
            "2024-01",
            "2024-01",
            dest_dir=tmp_path,
            base_url=httpserver.url_for("/"),
        )
    assert list(tmp_path.iterdir()) == []


def test_a_verified_file_already_there_is_not_fetched_again(httpserver, tmp_path):
    data = _publish(httpserver, SPOT, "2024-01")
    (tmp_path / "BTCUSDT-1m-2024-01.zip").write_bytes(data)
    binance_archive_download(
        "BTCUSDT", "1m", "2024-01", "2024-01", dest_dir=tmp_path, base_url=httpserver.url_for("/")
    )
    assert _paths(httpserver) == [f"{SPOT}/BTCUSDT-1m-2024-01.zip.CHECKSUM"]


def test_a_corrupt_local_copy_is_replaced(httpserver, tmp_path):
    data = _publish(httpserver, SPOT, "2024-01")
    (tmp_path / "BTCUSDT-1m-2024-01.zip").write_bytes(b"truncated")
    (path,) = binance_archive_download(
        "BTCUSDT", "1m", "2024-01", "2024-01", dest_dir=tmp_path, base_url=httpserver.url_for("/")
    )
    assert path.read_bytes() == data


def test_futures_archives_come_from_the_um_folder(httpserver, tmp_path):
    folder = "/data/futures/um/monthly/klines/BTCUSDT/1m"
    _publish(httpserver, folder, "2024-05")
    (path,) = binance_archive_download(
        "BTCUSDT",
        "1m",
        "2024-05",
        "2024-05",
        market_type="futures",
        dest_dir=tmp_path,
        base_url=httpserver.url_for("/"),
    )
    assert zipfile.ZipFile(path).namelist() == ["BTCUSDT-1m-2024-05.csv"]


def test_a_missing_month_says_so(httpserver, tmp_path):
    httpserver.expect_request(f"{SPOT}/BTCUSDT-1m-2031-01.zip.CHECKSUM").respond_with_data(
        "<Error><Code>NoSuchKey</Code></Error>", status=404, content_type="application/xml"
    )
    with pytest.raises(DownloadError, match=r"does not exist \(HTTP 404\)"):
        binance_archive_download(
            "BTCUSDT",
            "1m",
            "2031-01",
            "2031-01",
            dest_dir=tmp_path,
            base_url=httpserver.url_for("/"),
        )


def test_no_network_is_a_clear_error(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(NoNetwork, match=f"no network: cannot reach 127.0.0.1:{port}"):
        binance_archive_download(
            "BTCUSDT",
            "1m",
            "2024-01",
            "2024-01",
            dest_dir=tmp_path,
            base_url=f"http://127.0.0.1:{port}",
            client=_fast_client("binance-vision"),
        )
    with pytest.raises(NoNetwork, match="no network"):
        cryptodatadownload_download(
            "gemini",
            "BTCUSD",
            "1h",
            tmp_path,
            f"http://127.0.0.1:{port}",
            client=_fast_client("cryptodatadownload"),
        )


def test_months_between_spans_years_and_rejects_bad_ranges():
    assert months_between("2023-11", "2024-02") == ["2023-11", "2023-12", "2024-01", "2024-02"]
    with pytest.raises(DownloadError, match="before"):
        months_between("2024-02", "2024-01")
    with pytest.raises(DownloadError, match="not YYYY-MM"):
        months_between("2024-13", "2024-14")


CDD_CSV = (
    "https://www.CryptoDataDownload.com\n"
    "unix,date,symbol,open,high,low,close,Volume BTC,Volume USD\n"
    "1704070800,2024-01-01 01:00:00,BTC/USD,42000,42100,41900,42050,1.5,63075\n"
)


def test_cryptodatadownload_csv_is_saved_under_its_published_name(httpserver, tmp_path):
    httpserver.expect_request("/cdd/Gemini_BTCUSD_1h.csv").respond_with_data(
        CDD_CSV, content_type="text/csv"
    )
    path = cryptodatadownload_download("gemini", "BTCUSD", "1h", tmp_path, httpserver.url_for("/"))
    assert path == tmp_path / "Gemini_BTCUSD_1h.csv"
    assert path.read_text() == CDD_CSV


def test_cryptodatadownload_minute_files_are_per_year(httpserver, tmp_path):
    httpserver.expect_request("/cdd/Binance_BTCUSDT_2023_minute.csv").respond_with_data(CDD_CSV)
    with pytest.raises(DownloadError, match="pass a year"):
        cryptodatadownload_download("binance", "BTCUSDT", "1m", tmp_path, httpserver.url_for("/"))
    path = cryptodatadownload_download(
        "binance", "BTCUSDT", "1m", tmp_path, httpserver.url_for("/"), year=2023
    )
    assert path.name == "Binance_BTCUSDT_2023_minute.csv"


def test_cryptodatadownload_html_instead_of_csv_is_rejected(httpserver, tmp_path):
    def page(request: Request) -> Response:
        return Response("<html><body>Not found</body></html>", content_type="text/html")

    httpserver.expect_request("/cdd/Gemini_BTCUSD_d.csv").respond_with_handler(page)
    with pytest.raises(DownloadError, match="is not a CryptoDataDownload CSV"):
        cryptodatadownload_download("gemini", "BTCUSD", "1d", tmp_path, httpserver.url_for("/"))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.django_db
def test_a_downloaded_archive_imports_through_stocks_import(httpserver, tmp_path):
    from predictor.models import Candle
    from predictor.services.importing import stocks_import

    _publish(httpserver, SPOT, "2024-01")
    paths = binance_archive_download(
        "BTCUSDT", "1m", "2024-01", "2024-01", dest_dir=tmp_path, base_url=httpserver.url_for("/")
    )
    (result,) = stocks_import(paths, exchange="binance", symbol="BTCUSDT", interval="1m")
    assert result.error is None
    assert Candle.objects.filter(market__symbol="BTCUSDT", interval="1m").count() == 5


@pytest.mark.django_db
def test_import_stocks_download_fetches_verifies_and_imports(httpserver, tmp_path, settings):
    from io import StringIO

    from django.core.management import call_command

    from predictor.models import Candle

    for month in ("2024-01", "2024-02"):
        _publish(httpserver, SPOT, month)
    settings.BINANCE_VISION_URL = httpserver.url_for("/").rstrip("/")
    settings.DATA_DIR = tmp_path
    out = StringIO()
    call_command(
        "import_stocks",
        "--download",
        "--exchange",
        "binance",
        "--symbol",
        "BTCUSDT",
        "--interval",
        "1m",
        "--from",
        "2024-01",
        "--to",
        "2024-02",
        stdout=out,
        stderr=StringIO(),
    )
    assert sorted(p.name for p in (tmp_path / "binance").glob("*.zip")) == [
        "BTCUSDT-1m-2024-01.zip",
        "BTCUSDT-1m-2024-02.zip",
    ]
    # Both fake months hold the same five candles: the second import merges, adds nothing.
    assert Candle.objects.count() == 5
    assert "duplicates skipped 5" in out.getvalue()


@pytest.mark.django_db
def test_import_stocks_download_needs_its_flags():
    from django.core.management import call_command
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--exchange, --symbol and --interval"):
        call_command("import_stocks", "--download", "--symbol", "BTCUSDT")
    with pytest.raises(CommandError, match="--from YYYY-MM"):
        call_command(
            "import_stocks",
            "--download",
            "--exchange",
            "binance",
            "--symbol",
            "BTCUSDT",
            "--interval",
            "1m",
        )


BAD_SYMBOLS = [
    "x/../../../y",
    "../BTC",
    ".hidden",
    "BTC USDT",
    "BTC\\USDT",
    "",
    "A" * 65,
    "BTC\x00",
]


@pytest.mark.parametrize("symbol", BAD_SYMBOLS)
def test_a_symbol_that_is_not_a_plain_name_is_refused_before_any_request(
    symbol, httpserver, tmp_path
):
    dest = tmp_path / "data" / "binance"
    with pytest.raises(DownloadError, match="may hold only letters"):
        binance_archive_download(
            symbol, "1m", "2024-01", "2024-01", dest_dir=dest, base_url=httpserver.url_for("")
        )
    with pytest.raises(DownloadError, match="may hold only letters"):
        cryptodatadownload_download(
            "gemini", symbol, "1h", tmp_path / "data", base_url=httpserver.url_for("")
        )
    assert httpserver.log == []
    assert list(tmp_path.rglob("*")) == []


def test_safe_symbols_are_upper_cased_and_keep_dots_dashes_and_underscores():
    assert safe_symbol(" btcusdt ") == "BTCUSDT"
    assert safe_symbol("BTC-PERP") == "BTC-PERP"
    assert safe_symbol("eth_usd.p") == "ETH_USD.P"


@pytest.mark.django_db
def test_import_stocks_refuses_a_path_in_the_symbol_and_writes_nothing(tmp_path, settings):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    settings.DATA_DIR = tmp_path / "data" / "inner"
    with pytest.raises(CommandError, match="may hold only letters"):
        call_command(
            "import_stocks",
            "--download",
            "--source",
            "cryptodatadownload",
            "--exchange",
            "gemini",
            "--symbol",
            "x/../../../y",
            "--interval",
            "1h",
        )
    assert list(tmp_path.rglob("*")) == []
