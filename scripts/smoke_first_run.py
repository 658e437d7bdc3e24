"""The fresh-machine path, end to end: a new clone's `make run` must train a session.

Clones this repository's committed HEAD into a temporary folder, runs `make run` there
on a free port with the laptop default (SQLite, filesystem broker; no DATABASE_URL or
REDIS_URL, no var/ from anywhere), imports a few hundred candles written here, creates
a user and a token, posts a training session through `POST /api/sessions/`, and waits
until the Celery worker that `make run` started has marked it `succeeded`. Then it
stops `make run` with SIGTERM and checks that nothing it started is left running.

The built virtualenv is reused (`VENV=`): the clone's requirement files are dated back
so make sees that venv as built from them. Everything else is the clone's own.

    .venv/bin/python scripts/smoke_first_run.py [--keep]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 600  # migrate and the first start of TensorFlow on a slow machine
TRAIN_TIMEOUT = 600


class SmokeFailure(Exception):
    pass


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def request(
    url: str, body: dict[str, object] | None = None, token: str | None = None
) -> tuple[int, dict[str, object]]:
    headers = {"Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Token {token}"
    req = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw.startswith(b"{") else {}
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        return exc.code, json.loads(raw) if raw.startswith(b"{") else {"body": raw[:500]}


def write_candles(path: Path, rows: int) -> None:
    """A deterministic hourly random-walk-like series: enough for a tiny model."""
    start = 1_704_067_200  # 2024-01-01 00:00 UTC
    lines = ["timestamp,open,high,low,close,volume"]
    price = 40_000.0
    for i in range(rows):
        step = 0.004 * math.sin(i * 0.37) + 0.003 * math.cos(i * 1.91)
        close = price * (1 + step)
        high, low = max(price, close) * 1.001, min(price, close) * 0.999
        lines.append(
            f"{start + 3600 * i},{price:.2f},{high:.2f},{low:.2f},{close:.2f},{10 + i % 7}"
        )
        price = close
    path.write_text("\n".join(lines) + "\n")


def clone(folder: Path) -> Path:
    target = folder / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(target)], check=True)
    old = time.time() - 10 * 365 * 86400
    for name in ("requirements-dev.txt", "pyproject.toml"):
        os.utime(target / name, (old, old))
    return target


def manage(clone_dir: Path, env: dict[str, str], *args: str) -> str:
    python = str(ROOT / ".venv" / "bin" / "python")
    done = subprocess.run(
        [python, "manage.py", *args],
        cwd=clone_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise SmokeFailure(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def wait_for_site(base: str, server: subprocess.Popen[bytes]) -> float:
    started = time.monotonic()
    while time.monotonic() - started < START_TIMEOUT:
        if server.poll() is not None:
            raise SmokeFailure(f"make run exited with status {server.returncode} before serving")
        try:
            with urllib.request.urlopen(base + "/", timeout=10) as response:
                if response.status == 200:
                    return time.monotonic() - started
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(1)
    raise SmokeFailure(f"{base}/ did not answer 200 within {START_TIMEOUT} s")


def wait_for_session(base: str, session_id: str, server: subprocess.Popen[bytes]) -> str:
    started = time.monotonic()
    status = "?"
    while time.monotonic() - started < TRAIN_TIMEOUT:
        if server.poll() is not None:
            raise SmokeFailure(f"make run exited (status {server.returncode}) while training")
        code, body = request(f"{base}/api/sessions/{session_id}/")
        if code != 200:
            raise SmokeFailure(f"GET session {session_id}: {code} {body}")
        status = str(body["status"])
        if status == "succeeded":
            return status
        if status in ("failed", "cancelled"):
            raise SmokeFailure(f"session {session_id} {status}: {body.get('error')}")
        time.sleep(2)
    raise SmokeFailure(
        f"session {session_id} is still {status!r} after {TRAIN_TIMEOUT} s: "
        "did the worker started by make run die?"
    )


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def stop(server: subprocess.Popen[bytes]) -> None:
    """SIGTERM to make's process group (make, the supervisor, web, worker); all must exit."""
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while group_alive(server.pid) and time.monotonic() < deadline:
        time.sleep(0.5)
    server.wait(timeout=5)
    if group_alive(server.pid):
        os.killpg(server.pid, signal.SIGKILL)
        raise SmokeFailure("make run's processes did not all stop within 60 s of SIGTERM")


def left_running(clone_dir: Path) -> list[str]:
    found = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True)
    marker = str(clone_dir)
    return [line for line in found.stdout.splitlines() if marker in line and "ps -eo" not in line]


def run(keep: bool) -> None:
    folder = Path(tempfile.mkdtemp(prefix="co-smoke-"))
    clone_dir = clone(folder)
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        {
            "CRYPTOORACLE_VAR_DIR": str(clone_dir / "var"),
            "DATA_DIR": str(clone_dir / "data"),
            "MODEL_WEIGHTS_DIR": str(clone_dir / "model_weights"),
            "SCALERS_DIR": str(clone_dir / "scalers"),
            "TRAINING_HEARTBEAT_SECONDS": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    for stale in ("DJANGO_SETTINGS_MODULE", "PYTHONPATH"):
        env.pop(stale, None)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = folder / "make-run.log"
    print(f"smoke: clone at {clone_dir}, make run on port {port}, log {log_path}", flush=True)
    started = time.monotonic()
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            ["make", "run", f"VENV={ROOT / '.venv'}", f"PORT={port}"],
            cwd=clone_dir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_site(base, server)
        print(f"smoke: first 200 on / after {time.monotonic() - started:.1f} s", flush=True)
        csv = folder / "SMOKEUSDT_1h.csv"
        write_candles(csv, 400)
        manage(clone_dir, env, "import_stocks", "--file", str(csv), "--exchange", "binance")
        env_user = dict(env, DJANGO_SUPERUSER_PASSWORD="smoke-password-123")
        manage(clone_dir, env_user, "createsuperuser", "--noinput", "--username", "smoke",
               "--email", "smoke@example.invalid")  # fmt: skip
        token = manage(clone_dir, env, "drf_create_token", "smoke").split()[2]
        code, body = request(
            f"{base}/api/sessions/",
            {
                "symbols": ["SMOKEUSDT"],
                "exchange": "binance",
                "config": {"window": 8, "epochs": 1, "units": 4, "interval": "1h"},
            },
            token,
        )
        if code != 201:
            raise SmokeFailure(f"POST /api/sessions/ answered {code}: {body}")
        session_id = str(body["id"])
        print(f"smoke: session {session_id} queued; waiting for the worker", flush=True)
        trained = time.monotonic()
        wait_for_session(base, session_id, server)
        print(f"smoke: session {session_id} succeeded in {time.monotonic() - trained:.1f} s")
        stop(server)
        leftovers = left_running(clone_dir)
        if leftovers:
            raise SmokeFailure("still running after make run stopped:\n" + "\n".join(leftovers))
        print("smoke: make run stopped cleanly; 1 passed, 0 failed")
    except BaseException:
        stop(server)
        sys.stderr.write("---- make run output (last 80 lines) ----\n")
        sys.stderr.write("\n".join(log_path.read_text(errors="replace").splitlines()[-80:]) + "\n")
        raise
    finally:
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the clone and its log")
    args = parser.parse_args()
    try:
        run(args.keep)
    except SmokeFailure as exc:
        print(f"smoke: FAILED: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
