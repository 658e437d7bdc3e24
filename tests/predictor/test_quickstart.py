"""``quickstart`` against a local stand-in of data.binance.vision that publishes real-format
monthly kline zips with their CHECKSUM files; and offline, against a closed port."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import re
import socket
import subprocess
import sys
import zipfile
from collections.abc import Callable
from functools import cache
from io import StringIO
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from predictor.models import Candle, EvaluationReport, Market, Prediction, TrainingSession
from predictor.services.quickstart import QuickstartError, last_complete_months

ROOT = Path(__file__).resolve().parents[2]
ORIGIN = int(dt.datetime(2020, 1, 1, tzinfo=dt.UTC).timestamp())
ARCHIVE = re.compile(
    r"^/data/spot/monthly/klines/(?P<symbol>[A-Z]+)/1h/"
    r"(?P=symbol)-1h-(?P<month>\d{4}-\d{2})\.zip(?P<checksum>\.CHECKSUM)?$"
)


@cache
def _closes(symbol: str) -> np.ndarray:
    """One continuous hourly random walk per symbol from 2020 on, so months join up."""
    rng = np.random.default_rng(sum(map(ord, symbol)))
    start = 40_000.0 if symbol.startswith("BTC") else 2_000.0
    return np.asarray(start * np.exp(np.cumsum(rng.normal(0, 0.006, 24 * 366 * 12))))


def _archive(symbol: str, month: str) -> bytes:
    """Binance's monthly kline zip: one headerless 12-column CSV, times in milliseconds."""
    period = pd.Period(month, "M")
    first = int(period.start_time.tz_localize("UTC").timestamp())
    hours = (first - ORIGIN) // 3600 + np.arange(period.days_in_month * 24)
    close = _closes(symbol)[hours]
    open_ = _closes(symbol)[hours - 1]
    lines = []
    for i, (o, c) in enumerate(zip(open_, close, strict=True)):
        t = first + 3600 * i
        high, low, volume = max(o, c) * 1.002, min(o, c) * 0.998, 10.0 + i % 7
        lines.append(
            f"{t * 1000},{o:.2f},{high:.2f},{low:.2f},{c:.2f},{volume:.5f},"
            f"{(t + 3600) * 1000 - 1},{volume * c:.4f},{100 + i % 13},{volume / 2:.5f},"
            f"{volume * c / 2:.4f},0\n"
        )
    # A fixed member time: the same month is the same file on every request, as on Binance.
    member = zipfile.ZipInfo(f"{symbol}-1h-{month}.csv", date_time=(2020, 1, 1, 0, 0, 0))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(member, "".join(lines))
    return buffer.getvalue()


@pytest.fixture
def vision(httpserver: HTTPServer, settings: Any, tmp_path: Path) -> list[str]:
    """Serve every month of every symbol; returns the paths requested, in order."""
    requested: list[str] = []

    def answer(request: Request) -> Response:
        requested.append(request.path)
        match = ARCHIVE.match(request.path)
        if match is None:
            return Response("<Error><Code>NoSuchKey</Code></Error>", status=404)
        data = _archive(match["symbol"], match["month"])
        if match["checksum"]:
            name = f"{match['symbol']}-1h-{match['month']}.zip"
            return Response(f"{hashlib.sha256(data).hexdigest()}  {name}\n")
        return Response(data, content_type="application/zip")

    httpserver.expect_request(re.compile("^/data/")).respond_with_handler(answer)
    settings.BINANCE_VISION_URL = httpserver.url_for("/").rstrip("/")
    settings.DATA_DIR = tmp_path / "data"
    return requested


def _months_before_now(count: int) -> list[str]:
    this = pd.Period(dt.datetime.now(dt.UTC).strftime("%Y-%m"), "M")
    return [str(this - k) for k in range(count, 0, -1)]


def _run(*args: str) -> str:
    out = StringIO()
    call_command("quickstart", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_months_are_the_complete_ones_before_the_current_month():
    assert last_complete_months(2, dt.date(2025, 3, 10)) == ("2025-01", "2025-02")
    assert last_complete_months(24, dt.date(2025, 1, 31)) == ("2023-01", "2024-12")
    assert last_complete_months(1, dt.date(2024, 1, 1)) == ("2023-12", "2023-12")
    with pytest.raises(QuickstartError, match="--months: 0 is too few"):
        last_complete_months(0, dt.date(2024, 1, 1))


@pytest.mark.slow
@pytest.mark.django_db
def test_a_fresh_database_gets_every_page_with_content_and_a_second_run_reuses_it(
    vision: list[str], client: Any, settings: Any
):
    months = _months_before_now(2)
    out = _run("--months", "2", "--epochs", "1")

    zips = [p.rsplit("/", 1)[1] for p in vision if p.endswith(".zip")]
    assert zips == [f"{s}-1h-{m}.zip" for s in ("BTCUSDT", "ETHUSDT") for m in months]
    hours = sum(pd.Period(m, "M").days_in_month * 24 for m in months)
    for symbol in ("BTCUSDT", "ETHUSDT"):
        assert Candle.objects.filter(market__symbol=symbol, market__exchange="binance").count() == (
            hours
        )
    evaluation = TrainingSession.objects.get(mode="evaluation")
    production = TrainingSession.objects.get(mode="production")
    for session in (evaluation, production):
        assert session.status == "succeeded", session.error
        assert session.symbols == ["BTCUSDT", "ETHUSDT"]
        assert Prediction.objects.filter(session=session).exists()
    assert Prediction.objects.filter(session=production, split="future").exists()
    assert set(
        EvaluationReport.objects.filter(session=evaluation).values_list("split", flat=True)
    ) == {
        "train",
        "validation",
        "test",
    }
    for stage in ("Downloading", "Importing", "Training evaluation session", "Forecasting"):
        assert stage in out
    assert f"Training evaluation session {evaluation.id}" in out
    assert f"Training production session {production.id}" in out

    urls = re.findall(r"http://127\.0\.0\.1:8000(\S*)", out)
    assert urls == [
        "/",
        f"/forecast/?session={production.id}",
        f"/evaluation/?session={evaluation.id}",
        "/training/",
        f"/training/{evaluation.id}/",
        f"/training/{production.id}/",
    ]
    for url in urls:
        page = client.get(url)
        assert page.status_code == 200, url
        assert b'class="empty' not in page.content, url  # no empty-state paragraph
        assert b"ETHUSDT" in page.content, url

    # Second run: the archives are checked, not fetched; only a month with candles missing
    # from the database is imported again, and nothing is trained again.
    middle = dt.datetime.fromisoformat(f"{months[0]}-15T00:00+00:00")
    lost = Candle.objects.filter(
        market__symbol="ETHUSDT",
        open_time__gte=middle,
        open_time__lt=middle + dt.timedelta(hours=10),
    )
    assert lost.count() == 10
    lost.delete()
    vision.clear()
    again = _run("--months", "2", "--epochs", "1", "--base-url", "http://example.test:9000/")
    assert [p for p in vision if p.endswith(".zip")] == []
    assert len(vision) == 4  # the four CHECKSUM files
    assert Candle.objects.count() == 2 * hours
    assert "BTCUSDT: 0 candles inserted, 0 already stored, 2 archive(s) skipped" in again
    assert "ETHUSDT: 10 candles inserted, " in again
    assert "1 archive(s) skipped" in again
    assert TrainingSession.objects.count() == 2
    assert f"Evaluation session {evaluation.id}: already trained" in again
    assert f"Production session {production.id}: already trained" in again
    assert "already evaluated" in again
    assert f"http://example.test:9000/forecast/?session={production.id}" in again


@pytest.mark.slow
@pytest.mark.django_db
def test_skip_download_trains_on_the_stored_candles_without_the_network(
    make_market: Callable[..., Market], settings: Any
):
    settings.BINANCE_VISION_URL = f"http://127.0.0.1:{_closed_port()}"
    make_market("BTCUSDT", 1200, seed=1)
    make_market("ETHUSDT", 1200, seed=2)
    out = _run("--skip-download", "--months", "1", "--epochs", "1")
    assert "Downloading" not in out
    evaluation = TrainingSession.objects.get(mode="evaluation", status="succeeded")
    last = Candle.objects.order_by("-open_time").values_list("open_time", flat=True)[0]
    assert evaluation.requested_end == last
    assert evaluation.requested_start == last - pd.DateOffset(months=1)
    assert EvaluationReport.objects.filter(session=evaluation).count() == 3
    assert TrainingSession.objects.filter(mode="production", status="succeeded").count() == 1


@pytest.mark.django_db
def test_skip_download_without_the_markets_says_what_to_do(make_market: Callable[..., Market]):
    make_market("BTCUSDT", 10)
    with pytest.raises(CommandError, match="no binance candles of ETHUSDT are stored: run quick"):
        _run("--skip-download")
    assert TrainingSession.objects.count() == 0


@pytest.mark.django_db
def test_offline_leaves_the_database_and_the_data_folder_untouched(settings: Any, tmp_path: Path):
    settings.BINANCE_VISION_URL = f"http://127.0.0.1:{_closed_port()}"
    settings.DATA_DIR = tmp_path / "data"
    with pytest.raises(CommandError) as caught:
        _run("--months", "2")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("No network: cannot reach 127.0.0.1:")
    assert "python manage.py import_stocks" in message
    assert "--skip-download" in message
    assert not settings.DATA_DIR.exists()
    assert Market.objects.count() == Candle.objects.count() == TrainingSession.objects.count() == 0


def test_offline_from_the_shell_prints_one_line_and_exits_non_zero(tmp_path: Path):
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "CRYPTOORACLE_VAR_DIR": str(tmp_path / "var"),
        "DATA_DIR": str(tmp_path / "data"),
        "BINANCE_VISION_URL": f"http://127.0.0.1:{_closed_port()}",
    }
    env.pop("REDIS_URL", None)
    done = subprocess.run(
        [sys.executable, "manage.py", "quickstart"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "No network: cannot reach 127.0.0.1:" in lines[0]
    assert not (tmp_path / "data").exists()
    assert not (tmp_path / "db.sqlite3").exists()


@pytest.mark.django_db
def test_the_hint_speaks_only_while_no_candle_is_stored(make_market: Callable[..., Market]):
    assert _run("--hint").startswith("No candles yet: run `python manage.py quickstart`")
    assert len(_run("--hint").strip().splitlines()) == 1
    make_market("BTCUSDT", 3)
    assert _run("--hint") == ""


@pytest.mark.django_db
def test_the_empty_index_page_points_to_quickstart(client: Any):
    page = client.get("/")
    assert b"No candles yet" in page.content
    assert b"python manage.py quickstart" in page.content
