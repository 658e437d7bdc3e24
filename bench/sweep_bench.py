"""Benchmark: a sweep of 8 trials on 1 versus 2 Celery worker processes, and its overhead.

    .venv/bin/python bench/sweep_bench.py [--rounds 2] [--epochs 3] [--threads N] \\
        [--csv ../shared/data/Pr4v33n23__freqtrade/BTCUSDT_1h.csv.gz]

Needs PostgreSQL and Redis (127.0.0.1, as CI has them). It makes its own database
``co_sweep_bench`` (dropped and created) and Redis db 9, imports the candles with
``import_stocks``, and then, in each round:

``loop``
    The 8 trials' configurations trained one after another through ``session_run`` —
    what a user without sweeps does with ``train_model`` in a loop — in a fresh child
    process, timed inside it after TensorFlow is imported (as a worker has it).
``loop_scored``
    The same, plus each trial's validation objective (``trial_objective``): the work
    a sweep does per trial beyond training.
``loop_2``
    The reference for two processes: the 8 trainings split between two fresh processes
    running at once, no Celery, no sweep (each takes every other trial). ``loop /
    loop_2`` is what this machine allows two processes; ``sweep_2`` is judged against it.
``sweep_1``, ``sweep_2``
    ``sweep_create`` + ``sweep_queue`` with 1 or 2 training-queue worker processes
    (prefork, concurrency 1 each, as ``make run`` and the Procfiles start them) already
    up and idle; wall time from the queueing to the sweep's end, which includes the
    winner's test evaluation.

Printed: the medians, ``sweep_1 / sweep_2`` (the speed-up from a second worker), and
the sweep's overhead per trial, ``(sweep_1 - loop) / 8`` and ``(sweep_1 - loop_scored) / 8``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DB = "co_sweep_bench"
DEFAULT_CSV = "../shared/data/Pr4v33n23__freqtrade/BTCUSDT_1h.csv.gz"
SPACE = {"units": [8, 16], "window": [24, 48], "learning_rate": [0.001, 0.003]}


def _environment(artifacts: Path) -> dict[str, str]:
    env = {
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB}",
        "REDIS_URL": "redis://127.0.0.1:6379/9",
        "MODEL_WEIGHTS_DIR": str(artifacts / "model_weights"),
        "SCALERS_DIR": str(artifacts / "scalers"),
        "DJANGO_SETTINGS_MODULE": "cryptooracle.settings",
    }
    os.environ.update(env)
    return {**os.environ, **env}


def _fresh_database() -> None:
    import psycopg2

    conn = psycopg2.connect(host="127.0.0.1", user="postgres", dbname="postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        cur.execute(f"CREATE DATABASE {DB}")
    conn.close()


def _base(epochs: int) -> dict[str, Any]:
    return {
        "arch": "lstm",
        "target": "logreturn",
        "horizon": 4,
        "interval": "1h",
        "epochs": epochs,
        "batch_size": 64,
        "val_split": 0.15,
        "features": ["returns", "time"],
    }


def _configs(epochs: int) -> list[dict[str, Any]]:
    from predictor.services.sweep_space import grid_params

    space = {key: {"values": values} for key, values in SPACE.items()}
    return [{**_base(epochs), **params} for params in grid_params(space)]


def _loop(epochs: int, scored: bool, part: int = 0, parts: int = 1) -> float:
    from predictor.services.runs import RunRequest, run_config
    from predictor.services.sessions import session_create
    from predictor.services.sweep_objective import trial_objective
    from predictor.services.training import session_run

    started = time.perf_counter()
    for given in _configs(epochs)[part::parts]:
        config = run_config(RunRequest(given=given, symbols=["BTCUSDT"]))
        session = session_run(session_create(config, symbols=["BTCUSDT"]).pk)
        if session.status != "succeeded":
            raise RuntimeError(session.error)
        if scored:
            trial_objective(session, "val_loss")
    return time.perf_counter() - started


def _loop_child(epochs: int, scored: bool, env: dict[str, str], parts: int = 1) -> float:
    """The loop in ``parts`` fresh processes at once (each a share of the trials), as
    workers are; the slowest one's own timing, after its imports (a barrier file starts
    them together)."""
    barrier = Path(tempfile.mkdtemp()) / "go"
    procs = []
    for part in range(parts):
        cmd = [sys.executable, __file__, "--child", "loop_scored" if scored else "loop"]
        cmd += ["--epochs", str(epochs), "--part", str(part), "--parts", str(parts)]
        proc = subprocess.Popen(
            [*cmd, "--barrier", str(barrier)], cwd=ROOT, env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        procs.append(proc)
    time.sleep(25)  # every child imports TensorFlow, then waits for the barrier
    barrier.touch()
    took = []
    for proc in procs:
        out, err = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(err[-2000:])
        took.append(float(out.strip().splitlines()[-1]))
    return max(took)


def _workers(count: int, env: dict[str, str]) -> list[subprocess.Popen[bytes]]:
    from cryptooracle.celery import app

    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge("training")
    procs = []
    for i in range(count):
        cmd = [sys.executable, "-m", "celery", "-A", "cryptooracle", "worker", "-Q", "training"]
        cmd += ["-c", "1", "--pool", "prefork", "--loglevel", "WARNING", "-n", f"bench{i}@%h"]
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        procs.append(proc)
    deadline = time.monotonic() + 120
    while len(app.control.ping(timeout=1.0) or []) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{count} worker(s) did not answer")
    return procs


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def _sweep(count: int, epochs: int, env: dict[str, str]) -> float:
    from predictor.models import Sweep
    from predictor.services.runs import RunRequest
    from predictor.services.sweeps import SweepRequest, sweep_create, sweep_queue

    procs = _workers(count, env)
    try:
        request = SweepRequest(
            base=RunRequest(given=_base(epochs), symbols=["BTCUSDT"]),
            space=SPACE,
            objective="val_loss",
        )
        started = time.perf_counter()
        sweep = sweep_queue(sweep_create(request))
        while True:
            sweep.refresh_from_db()
            if sweep.status not in Sweep.ACTIVE:
                break
            time.sleep(0.2)
        elapsed = time.perf_counter() - started
        if sweep.status != "succeeded":
            raise RuntimeError(f"sweep {sweep.status}: {sweep.error}")
        if len({t.worker for t in sweep.trials.all()}) != count:
            print(f"note: trials ran on {len({t.worker for t in sweep.trials.all()})} worker(s)")
        return elapsed
    finally:
        _stop(procs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--csv", default=DEFAULT_CSV)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument(
        "--threads",
        type=int,
        help="TensorFlow intra- and inter-op threads (and OMP) for every arm; default: TF's own",
    )
    parser.add_argument("--child", choices=("loop", "loop_scored"), help=argparse.SUPPRESS)
    parser.add_argument("--part", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--parts", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--barrier", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:  # set before anything imports TensorFlow, inherited by every child
        for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
            os.environ[name] = str(args.threads)
    sys.path.insert(0, str(ROOT))
    if args.child:  # the database, candles and folders are the parent's
        import django

        django.setup()
        import keras  # noqa: F401  (imported before the clock starts, as a worker has it)

        while args.barrier and not Path(args.barrier).exists():
            time.sleep(0.05)
        print(_loop(args.epochs, args.child == "loop_scored", args.part, args.parts))
        return
    with tempfile.TemporaryDirectory() as tmp:
        env = _environment(Path(tmp))
        _fresh_database()
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        call_command("import_stocks", file=[Path(args.csv)], exchange="binance", verbosity=0)
        names = ["loop", "loop_scored", "loop_2", "sweep_1", "sweep_2"]
        times: dict[str, list[float]] = {arm: [] for arm in names}
        for r in range(args.rounds):
            # Rotated order: no arm always runs on a warm (or a cold) machine.
            arms = names[r % len(names) :] + names[: r % len(names)]
            for arm in arms:
                if arm == "loop_2":
                    took = _loop_child(args.epochs, False, env, parts=2)
                elif arm.startswith("loop"):
                    took = _loop_child(args.epochs, arm == "loop_scored", env)
                else:
                    took = _sweep(int(arm[-1]), args.epochs, env)
                times[arm].append(took)
                print(f"round {r + 1} {arm}: {took:.1f} s", flush=True)
        median = {arm: statistics.median(v) for arm, v in times.items()}
        result = {
            "trials": 8,
            "epochs": args.epochs,
            "csv": args.csv,
            "cpus": os.cpu_count(),
            "threads": args.threads,
            "seconds": times,
            "median": median,
            "speedup_2_workers": median["sweep_1"] / median["sweep_2"],
            "speedup_2_processes_no_celery": median["loop"] / median["loop_2"],
            "overhead_per_trial_vs_loop": (median["sweep_1"] - median["loop"]) / 8,
            "overhead_per_trial_vs_scored_loop": (median["sweep_1"] - median["loop_scored"]) / 8,
        }
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
