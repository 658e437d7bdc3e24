"""Web benchmark: pages and the REST API under 20 concurrent clients, and single forecasts.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/co_webbench .venv/bin/python bench/web_bench.py \
        [--reuse] [--clients 20] [--requests 400] [--seconds 60] [--workers 4]

Builds a scratch database (the one DATABASE_URL names is dropped and created
again; ``--reuse`` keeps it and the model trained last time, in var/web_bench),
imports through ``import_stocks`` (then ``VACUUM ANALYZE``, as autovacuum would):

* the real Binance BTCUSDT 1m files from ../shared/data (2025-05-20 → 2025-08-18
  and 2024-07-26 → 2024-08-25, ≈174k candles), and
* one synthetic year of 1m candles (2023, 525,600 rows, a seeded random walk) as
  market SYNTHUSDT: ../shared/data holds no whole year of 1-minute candles;

trains a small production LSTM on the last two weeks of BTCUSDT, stores its
forecasts for the last hours (for the forecast page), then serves the project
with gunicorn on loopback and measures, with ``--clients`` concurrent clients:
the static stylesheet (the reference: no Python view, no database), the index
page, ``/api/markets/``, candle pages (1000 one-minute bars at random places in
the year, and 500 hourly bars resampled from 30,000 minutes), the forecast page
and ``POST /api/predict``. Then, one client at a time, a candle page against the
raw SQL query for the same rows, and a forecast against ``Forecaster.forecast``
in this process. Every figure is printed with its ratio to its reference.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import http.client
import json
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SHARED_DATA", ROOT.parent / "shared" / "data"))
REAL_FILES = (
    DATA / "Filimonov-Eremeyka__freqtrade" / "BTCUSDT_1m.csv.gz",
    DATA / "mintanam__ftrade" / "BTCUSDT_1m.csv.gz",
)
YEAR_START = int(dt.datetime(2023, 1, 1, tzinfo=dt.UTC).timestamp())
YEAR_MINUTES = 525_600
WIDTHS = (5, 8, 8, 8, 6, 7)


# --- setup ---------------------------------------------------------------------------------


def scratch_database(url: str, reuse: bool) -> None:
    import psycopg2

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name or name in ("postgres", "template0", "template1"):
        sys.exit(f"DATABASE_URL must name a scratch database, not {name!r}")
    admin = psycopg2.connect(urlunsplit(parts._replace(path="/postgres")))
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        exists = cur.fetchone() is not None
        if exists and not reuse:
            cur.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        if not exists or not reuse:
            cur.execute(f'CREATE DATABASE "{name}"')
    admin.close()


def synthetic_year(folder: Path) -> Path:
    """A year of seeded random-walk minute candles in the plain ``timestamp,o,h,l,c,v`` layout."""
    rng = np.random.default_rng(2023)
    close = 20_000 * np.exp(np.cumsum(rng.normal(0, 0.0007, YEAR_MINUTES)))
    open_ = np.r_[20_000.0, close[:-1]]
    spread = np.abs(rng.normal(0, 0.0004, YEAR_MINUTES)) * close
    high, low = np.maximum(open_, close) + spread, np.minimum(open_, close) - spread
    volume = rng.uniform(0.5, 50, YEAR_MINUTES)
    ms = (YEAR_START + 60 * np.arange(YEAR_MINUTES, dtype=np.int64)) * 1000
    path = folder / "SYNTHUSDT_1m.csv.gz"
    with gzip.open(path, "wt") as out:
        out.write("timestamp,open,high,low,close,volume\n")
        np.savetxt(
            out,
            np.column_stack([ms, open_, high, low, close, volume]),
            fmt="%d,%.2f,%.2f,%.2f,%.2f,%.4f",
        )
    return path


def load_data(folder: Path) -> None:
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    call_command("import_stocks", *[f"--file={f}" for f in REAL_FILES], "--exchange=binance")
    call_command(
        "import_stocks",
        f"--file={synthetic_year(folder)}",
        "--exchange=other",
        "--symbol=SYNTHUSDT",
    )
    print(f"imported in {time.perf_counter() - started:.1f} s")


def train_session() -> object:
    """A production LSTM (W=60, OHLCV, 32 units, 1 epoch) on BTCUSDT's last two weeks."""
    from predictor.ml.config import TrainConfig
    from predictor.models import Candle, Market
    from predictor.services.sessions import session_create
    from predictor.services.training import session_run

    market = Market.objects.get(exchange="binance", symbol="BTCUSDT")
    last = Candle.objects.filter(market=market).order_by("-open_time").first()
    assert last is not None
    config = TrainConfig(
        window=60, units=32, epochs=1, features=("ohlcv",), interval="1m", evaluation=False
    )
    started = time.perf_counter()
    session = session_create(
        config,
        symbols=["BTCUSDT"],
        exchange="binance",
        start=last.open_time - dt.timedelta(days=14),
    )
    session = session_run(session.pk)
    if session.status != "succeeded":
        sys.exit(f"training failed: {session.error}")
    print(f"trained session {session.pk} in {time.perf_counter() - started:.1f} s")
    try:  # the forecast page shows stored forecasts (predictor.services.forecasting)
        from predictor.services.forecasting import session_forecast

        result = session_forecast(session, start=last.open_time - dt.timedelta(hours=6))
        print(f"stored forecasts: {result}")
    except Exception as exc:  # the page is then measured without forecasts, or skipped
        print(f"no forecasts stored ({type(exc).__name__}: {exc})")
    return session


def reusable_session() -> object | None:
    """The session a previous run trained, if its model files are still there."""
    from predictor.models import TrainingSession
    from predictor.services.artifacts import session_bundle

    session = TrainingSession.objects.filter(status="succeeded").first()
    try:
        return session if session is not None and session_bundle(session) else None
    except Exception:
        return None


# --- the server --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(env: dict[str, str], port: int, workers: int) -> subprocess.Popen[bytes]:
    command = [
        str(ROOT / ".venv" / "bin" / "gunicorn"),
        "cryptooracle.wsgi:application",
        f"--bind=127.0.0.1:{port}",
        f"--workers={workers}",
        "--timeout=180",  # the first forecast in a worker imports Keras and loads the model
        "--log-level=warning",
    ]
    server = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if request(port, "GET", "/static/predictor/site.css")[0] == 200:
                return server
        except OSError:
            time.sleep(0.5)
    stop_server(server)
    sys.exit("gunicorn did not come up")


def stop_server(server: subprocess.Popen[bytes]) -> None:
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)


# --- measuring ---------------------------------------------------------------------------------


def request(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, float]:
    """One request on a fresh connection: (status, seconds)."""
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status, time.perf_counter() - started
    finally:
        conn.close()


@dataclass
class Result:
    name: str
    seconds: list[float] = field(default_factory=list)
    errors: int = 0
    wall: float = 0.0

    def pct(self, q: float) -> float:
        return float(np.percentile(self.seconds, q)) * 1000 if self.seconds else float("nan")

    def row(self, reference: Result | None) -> str:
        ratio = f"{self.pct(50) / reference.pct(50):6.1f}x" if reference else "      -"
        rate = len(self.seconds) / self.wall if self.wall else 0.0
        worst = max(self.seconds) * 1000 if self.seconds else float("nan")
        return (
            f"{self.name:<42} {len(self.seconds):>5} {self.pct(50):>8.1f} {self.pct(95):>8.1f} "
            f"{worst:>8.1f} {self.errors:>6} {rate:>7.0f} {ratio}"
        )


Target = Callable[[], tuple[str, str, bytes | None]]


def load(
    port: int, name: str, target: Target, requests: int, clients: int, seconds: float = 1e9
) -> Result:
    """``requests`` requests from ``clients`` concurrent clients; none started after ``seconds``."""
    result = Result(name)
    deadline = time.perf_counter() + seconds
    lock = threading.Lock()
    sent = 0

    def client() -> None:
        nonlocal sent
        while True:
            with lock:
                if sent >= requests or time.perf_counter() > deadline:
                    return
                sent += 1
            method, path, body = target()
            try:
                status, took = request(port, method, path, body)
            except OSError:
                status, took = 0, 0.0
            with lock:
                if 200 <= status < 300:
                    result.seconds.append(took)
                else:
                    result.errors += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.wall = time.perf_counter() - started
    return result


def median_ms(function: Callable[[], object], repeats: int) -> float:
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1000


# --- main --------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=400, help="per scenario")
    parser.add_argument(
        "--seconds", type=float, default=60, help="per scenario: no request is started later"
    )
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers")
    parser.add_argument("--reuse", action="store_true", help="keep an already loaded database")
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        sys.exit("set DATABASE_URL=postgres://…/co_webbench (a scratch database)")
    missing = [f for f in REAL_FILES if not f.exists()]
    if missing:
        sys.exit(f"missing data files: {missing}")

    # Artifacts and collected static files stay between runs (``--reuse``), outside git.
    work = ROOT / "var" / "web_bench"
    work.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "MODEL_WEIGHTS_DIR": str(work / "model_weights"),
        "SCALERS_DIR": str(work / "scalers"),
        "DJANGO_STATIC_ROOT": str(work / "static"),
        "DJANGO_DEBUG": "false",
        # DEBUG off refuses the public development key; a scratch run needs only some other.
        "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY") or "web-bench-scratch-" + "k" * 40,
        "API_PREDICT_RATE": "1000000/minute",  # measure the forecast, not the throttle
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15"),  # cache, throttle
        "TF_CPP_MIN_LOG_LEVEL": "2",
        # One thread per worker for a tiny model: workers, not TF threads, share the cores.
        "TF_NUM_INTRAOP_THREADS": "1",
        "TF_NUM_INTEROP_THREADS": "1",
        "OMP_NUM_THREADS": "1",
    }
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cryptooracle.settings")
    scratch_database(url, args.reuse)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from predictor.models import Market

    if not (args.reuse and Market.objects.filter(symbol="SYNTHUSDT").exists()):
        load_data(work)
        with connection.cursor() as cur:  # a settled table, as autovacuum leaves it
            cur.execute("VACUUM ANALYZE predictor_candle")
    session = reusable_session() if args.reuse else None
    session = session or train_session()
    call_command("collectstatic", "--noinput", verbosity=0)
    synth = Market.objects.get(symbol="SYNTHUSDT")
    btc = Market.objects.get(symbol="BTCUSDT", exchange="binance")

    from predictor.ml.artifacts import Forecaster
    from predictor.selectors.candles import candles_frame
    from predictor.services.artifacts import session_bundle

    window = candles_frame(btc).iloc[-60:]
    candles = [
        {
            "open_time": t.isoformat(),
            **{k: float(row[k]) for k in ("open", "high", "low", "close", "volume")},
        }
        for t, row in window.iterrows()
    ]
    predict_body = json.dumps({"session": str(session.pk), "candles": candles}).encode()
    rng = random.Random(7)

    def year_start(span_minutes: int) -> str:
        minute = rng.randrange(0, YEAR_MINUTES - span_minutes)
        return dt.datetime.fromtimestamp(YEAR_START + 60 * minute, tz=dt.UTC).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )

    targets: dict[str, Target] = {
        "static stylesheet (reference)": lambda: ("GET", "/static/predictor/site.css", None),
        "index page /": lambda: ("GET", "/", None),
        "GET /api/markets/": lambda: ("GET", "/api/markets/", None),
        "candles API, 1000 x 1m": lambda: (
            "GET",
            f"/api/markets/{synth.pk}/candles/?limit=1000&start={year_start(1000)}",
            None,
        ),
        "candles API, 500 x 1h from 30k x 1m": lambda: (
            "GET",
            f"/api/markets/{synth.pk}/candles/?interval=1h&limit=500&start={year_start(30_000)}",
            None,
        ),
        "forecast page": lambda: ("GET", f"/forecast/?session={session.pk}", None),
        "POST /api/predict (W=60, LSTM)": lambda: ("POST", "/api/predict", predict_body),
    }

    port = free_port()
    server = start_server(env, port, args.workers)
    try:
        probe = request(port, "GET", f"/forecast/?session={session.pk}")[0]
        if probe != 200:
            print(f"forecast page answered {probe}: not measured")
            targets.pop("forecast page")
        # Warm up: every worker imports its views and loads the model once.
        for target in targets.values():
            load(port, "warm-up", target, max(40, 4 * args.workers), args.clients, 45)
        results = [
            load(port, name, target, args.requests, args.clients, args.seconds)
            for name, target in targets.items()
        ]
        one_static = load(
            port, "static stylesheet, one client", targets["static stylesheet (reference)"], 200, 1
        )
        one_candles = load(
            port, "candles API, 1000 x 1m, one client", targets["candles API, 1000 x 1m"], 100, 1
        )
        one_predict = load(
            port, "POST /api/predict, one client", targets["POST /api/predict (W=60, LSTM)"], 200, 1
        )
    finally:
        stop_server(server)

    # References in this process: the same rows by raw SQL, the same forecast without HTTP.
    def raw_page() -> None:
        with connection.cursor() as cur:
            cur.execute(
                "SELECT open_time, open, high, low, close, volume FROM predictor_candle "
                "WHERE market_id = %s AND interval = 60 AND open_time >= %s "
                "ORDER BY open_time LIMIT 1000",
                [synth.pk, year_start(1000)],
            )
            cur.fetchall()

    raw_sql = median_ms(raw_page, 100)
    forecaster = Forecaster(session_bundle(session))
    forecaster.warm_up()
    from predictor.ml.artifacts import latest_window

    _, raw_window = latest_window(
        forecaster.bundle, window[["open", "high", "low", "close", "volume"]]
    )
    in_process = median_ms(lambda: forecaster.forecast(raw_window), 200)

    reference = results[0]
    print()
    print(
        f"web_bench {dt.date.today()} · {platform.machine()} {os.cpu_count()} CPUs · load "
        f"{os.getloadavg()[0]:.1f} · gunicorn {args.workers} sync workers · "
        f"{args.clients} clients · PostgreSQL · {Market.objects.count()} markets"
    )
    header = ("n", "p50 ms", "p95 ms", "max ms", "errors", "req/s")
    print(
        f"{'scenario':<42} "
        + " ".join(f"{h:>{w}}" for h, w in zip(header, WIDTHS, strict=True))
        + "  vs static p50"
    )
    for result in results:
        print(result.row(None if result is reference else reference))
    print()
    print(one_static.row(None) + "   HTTP on loopback: no view, no database")
    print(
        one_candles.row(one_static)
        + f"   raw SQL, same 1000 rows: {raw_sql:.1f} ms -> {one_candles.pct(50) / raw_sql:.1f}x"
    )
    print(
        one_predict.row(one_static)
        + f"   Forecaster.forecast in process: {in_process:.1f} ms"
        + f" -> {one_predict.pct(50) / in_process:.1f}x"
    )
    failed = [r for r in results if r.errors or r.pct(95) > 300]
    print()
    print(
        "goal p95 < 300 ms, no errors:",
        "met" if not failed else f"NOT met by {[r.name for r in failed]}",
    )
    print("goal predict p50 < 20 ms:", "met" if one_predict.pct(50) < 20 else "NOT met")


if __name__ == "__main__":
    main()
