"""Resident memory of one gunicorn worker before and after it serves forecasts.

    PYTHONPATH=$PWD .venv/bin/python bench/web_memory.py [--forecasts 50]

Trains the LSTM web_bench serves (W=60, OHLCV, 32 units, 1 epoch) on 3,000 seeded
random-walk hourly candles in a scratch SQLite database, starts gunicorn with the
repository's gunicorn.conf.py (WEB_CONCURRENCY=1), and reads the worker's RSS
(and USS, its private part; psutil) when it is up, after its first ``POST /api/predict`` and after N more.
Everything lives in a temporary folder, removed at the end. Results: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
MIB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def memory(process: psutil.Process) -> tuple[int, int]:
    """Resident and unique (private, freed when it exits) bytes."""
    info = process.memory_full_info()
    return info.rss, info.uss


def call(port: int, method: str, path: str, body: bytes | None = None) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def train(n: int) -> tuple[str, bytes]:
    """A trained session and a /api/predict body for its last 60 candles."""
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from predictor.ml.candles import CandleChunk
    from predictor.ml.config import TrainConfig
    from predictor.ml.intervals import parse_interval
    from predictor.models import Market
    from predictor.selectors.candles import candles_frame
    from predictor.services.candle_store import candles_upsert
    from predictor.services.sessions import session_create
    from predictor.services.training import session_run

    rng = np.random.default_rng(7)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.concatenate([[100.0], close[:-1]])
    high, low = np.maximum(open_, close) * 1.002, np.minimum(open_, close) * 0.998
    times = 1_704_067_200 + 3600 * np.arange(n, dtype=np.int64)
    market = Market.objects.create(exchange="binance", symbol="BTCUSDT")
    chunk = CandleChunk(
        times, open_, high, low, close, rng.uniform(1, 10, n), np.arange(n, dtype=np.int64)
    )
    candles_upsert(market, parse_interval("1h"), [chunk])
    config = TrainConfig(
        window=60, units=32, epochs=1, features=("ohlcv",), interval="1h", evaluation=False
    )
    session = session_run(session_create(config, symbols=["BTCUSDT"], exchange="binance").pk)
    if session.status != "succeeded":
        sys.exit(f"training failed: {session.error}")
    window = candles_frame(market).iloc[-60:]
    candles = [
        {
            "open_time": t.isoformat(),
            **{k: float(r[k]) for k in ("open", "high", "low", "close", "volume")},
        }
        for t, r in window.iterrows()
    ]
    return str(session.pk), json.dumps({"session": str(session.pk), "candles": candles}).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--forecasts", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="web-memory-") as tmp:
        work = Path(tmp)
        port = free_port()
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DJANGO_", "DATABASE_URL", "REDIS_URL"))
        }
        env |= {
            "CRYPTOORACLE_VAR_DIR": str(work / "var"),
            "MODEL_WEIGHTS_DIR": str(work / "model_weights"),
            "SCALERS_DIR": str(work / "scalers"),
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": "web-memory-scratch-" + "k" * 40,
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "API_PREDICT_RATE": "1000000/minute",
            "WEB_CONCURRENCY": "1",
            "PORT": str(port),
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "TF_NUM_INTRAOP_THREADS": "1",
            "TF_NUM_INTEROP_THREADS": "1",
            "OMP_NUM_THREADS": "1",
        }
        os.environ.update(env)
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cryptooracle.settings")
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()
        _, body = train(3000)
        gunicorn = [str(Path(sys.executable).parent / "gunicorn"), "cryptooracle.wsgi"]
        server = subprocess.Popen(
            [*gunicorn, "--log-level=warning", "--access-logfile=/dev/null"],
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 180
            while True:
                try:
                    if call(port, "GET", "/health/?format=json") == 200:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    sys.exit("gunicorn did not come up")
                time.sleep(0.5)
            (worker,) = psutil.Process(server.pid).children()
            rss = {"up": memory(worker)}
            assert call(port, "POST", "/api/predict", body) == 200
            rss["after the first forecast"] = memory(worker)
            for _ in range(args.forecasts):
                assert call(port, "POST", "/api/predict", body) == 200
            rss[f"after {args.forecasts} more"] = memory(worker)
            master = memory(psutil.Process(server.pid))
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    print("| gunicorn worker | RSS (MiB) | USS (MiB) |\n|---|---:|---:|")
    for state, (resident, unique) in rss.items():
        print(f"| {state} | {resident / MIB:.0f} | {unique / MIB:.0f} |")
    print(f"| (the master) | {master[0] / MIB:.0f} | {master[1] / MIB:.0f} |")


if __name__ == "__main__":
    main()
