"""Benchmark: training throughput of ``train_pipeline`` against a bare Keras script, and peak memory.

    OMP_NUM_THREADS=2 TF_CPP_MIN_LOG_LEVEL=2 .venv/bin/python bench/train_bench.py \
        [--speed-windows 25600] [--repeats 4] [--memory-batches 0] [--rows 525600]

Data: a year of real one-minute candles (525,600 rows). ``../shared/data`` has no
contiguous year of 1m candles (see its README), so the FILUSDT months of
``owlacar-dotcom__isda`` (Binance futures, whole months) are read with the
project's reader, concatenated in date order and re-stamped onto one gap-free
minute grid (a price step remains at each month seam).

Each case runs in a fresh subprocess, so that peaks do not mix:

``speed``
    On the first ``--speed-windows`` windows, four arms, one epoch each, in
    rotated order in every round (``--repeats`` rounds):

    * ``product``: ``train_pipeline`` with the LSTM config (XLA as the product
      resolves it: Keras' "auto" since the XLA follow-up in docs/benchmarks.md);
    * ``bare``: the same layers written by hand, the same optimizer, loss, metric
      and ``jit_compile``, ``model.fit(X, Y, batch_size=256)`` on the very arrays
      the pipeline trains on, materialised as numpy;
    * ``product_noxla``: ``train_pipeline`` with ``xla=False``;
    * ``bare_default``: the bare script with Keras' default ``jit_compile``
      ("auto": off on CPU TensorFlow), i.e. what the obvious script gets.

    Samples/s are steady-state: from the end of batch ``--skip-batches`` to the
    end of the last-but-one batch, so XLA compilation and warm-up are left out
    on every arm alike; samples per CPU-second (all threads of the process) are
    measured over the same batches and are much less sensitive to other
    processes. Ratios are taken within a round, then the median is reported.
``memory-product``
    ``train_pipeline`` on the whole year, every window a training window, one
    epoch (``--memory-batches N`` stops it after N batches through the product's
    own cancel hook); peak RSS from ``getrusage`` and a 20 ms psutil sampler.
``memory-bare``
    The bare script on the whole year (all windows materialised), fitted for
    ``--bare-steps`` batches: its peak comes from the materialised arrays. A
    reference, not a goal.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "owlacar-dotcom__isda"
PATTERN = "FILUSDT-1m-*.csv.gz"
GOAL_RATIO = 0.9
GOAL_BYTES = 4 * 1024**3
RESULT = "RESULT "
ARMS = ("product", "bare", "product_noxla", "bare_default")
# (numerator, denominator, label) of the per-round ratios.
RATIOS = (
    ("product", "bare", "product / bare, same jit_compile (goal >= 0.9)"),
    ("product_noxla", "bare_default", "product xla=False / bare Keras default"),
    ("product", "bare_default", "product as shipped / bare Keras default"),
)


def load_year(rows: int) -> tuple[pd.DataFrame, list[str]]:
    """``rows`` real 1m candles, whole months in date order, re-stamped to one minute grid."""
    from predictor.ml.csvformats import CandleReader, detect_layout
    from predictor.ml.csvsources import Source

    parts: list[np.ndarray] = []
    used: list[str] = []
    total = 0
    for path in sorted(DATA.glob(PATTERN)):
        source = Source(path)
        for chunk in CandleReader(source, detect_layout(source)).chunks():
            columns = [chunk.open, chunk.high, chunk.low, chunk.close, chunk.volume]
            parts.append(np.column_stack(columns))
            total += len(chunk)
        used.append(path.name)
        if total >= rows:
            break
    if total < rows:
        raise SystemExit(f"only {total} candles in {DATA}/{PATTERN}, asked for {rows}")
    month = used[0].split("-1m-")[1].removesuffix(".csv.gz")
    index = pd.date_range(
        pd.Timestamp(f"{month}-01", tz="UTC"), periods=rows, freq="1min", name="open_time"
    )
    columns = ["open", "high", "low", "close", "volume"]
    return pd.DataFrame(np.concatenate(parts)[:rows], index=index, columns=columns), used


def bench_config(xla: bool | None = None) -> Any:
    from predictor.ml.config import TrainConfig

    # evaluation=False, val_split=0: every window is a training window and no
    # validation pass runs, so all arms do exactly one pass over the same samples.
    return TrainConfig(
        arch="lstm",
        features=("ohlcv",),
        window=60,
        units=64,
        batch_size=256,
        epochs=1,
        interval="1m",
        target="return",
        scaler="standard",
        evaluation=False,
        val_split=0.0,
        xla=xla,
    )


def make_clock(skip: int) -> Any:
    import keras

    class BatchClock(keras.callbacks.Callback):  # type: ignore[misc]
        """Wall and process CPU time at the end of every training batch."""

        def __init__(self) -> None:
            super().__init__()
            self.wall: list[float] = []
            self.cpu: list[float] = []

        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            self.wall.append(time.perf_counter())
            self.cpu.append(time.process_time())  # all threads of this process

        def rates(self, batch_size: int) -> dict[str, float]:
            """Samples per wall second and per CPU second, warm-up batches left out."""
            # Last batch left out too: the bare script's may be short (and retrace under XLA).
            stop = len(self.wall) - 2
            if stop - skip < 1:
                raise SystemExit(f"only {len(self.wall)} batches; lower --skip-batches")
            samples = (stop - skip) * batch_size
            return {
                "steady": samples / (self.wall[stop] - self.wall[skip]),
                "cpu": samples / (self.cpu[stop] - self.cpu[skip]),
            }

    return BatchClock()


def bare_arrays(frame: pd.DataFrame, config: Any) -> tuple[np.ndarray, np.ndarray]:
    """The arrays the pipeline trains on, materialised as a user's script would hold them."""
    from predictor.ml.arrays import window_view
    from predictor.ml.scaling import fit_scaling
    from predictor.ml.training import prepare_data

    prep = prepare_data(frame, config)
    flat_x, flat_y = prep.features.flat(), prep.targets.flat()
    scaling = fit_scaling(config.scaler, flat_x, flat_y, prep.split, prep.features.channel_names)
    x = scaling.transform_features(flat_x)
    anchors = prep.split.train.anchors
    windows = np.ascontiguousarray(window_view(x, config.window)[anchors - (config.window - 1)])
    return windows, np.ascontiguousarray(scaling.transform_targets(flat_y)[anchors])


def bare_model(config: Any, channels: int, jit_compile: bool | str) -> Any:
    """The hand-written twin of ``predictor.ml.networks.lstm.build_lstm``."""
    import keras
    from keras import layers

    model = keras.Sequential(
        [
            keras.Input(shape=(config.window, channels)),
            layers.Conv1D(25, 5, padding="causal", activation="relu"),
            layers.LSTM(config.units, return_sequences=True),
            layers.Dropout(config.dropout),
            layers.LSTM(config.units),
            layers.Dropout(config.dropout),
            layers.Dense(config.output_size),
        ]
    )
    # As predictor.ml.training.compile_model: Adam defaults, MSE, an MAE metric.
    model.compile(optimizer="adam", loss="mse", metrics=["mae"], jit_compile=jit_compile)
    return model


def run_product(frame: pd.DataFrame, config: Any, skip: int) -> dict[str, float]:
    from predictor.ml.training import train_pipeline

    clock = make_clock(skip)
    began = time.perf_counter()
    bundle = train_pipeline(frame, config, callbacks=[clock])
    return {
        **clock.rates(config.batch_size),
        "fit_s": bundle.fit.seconds,
        "total_s": time.perf_counter() - began,
        "samples": float(len(bundle.prepared.split.train.anchors)),
        "params": float(bundle.model.count_params()),
    }


def run_bare(
    x: np.ndarray,
    y: np.ndarray,
    config: Any,
    skip: int,
    jit_compile: bool | str,
    steps: int | None = None,
) -> dict[str, float]:
    import keras

    keras.utils.set_random_seed(config.seed)
    model = bare_model(config, x.shape[2], jit_compile)
    clock = make_clock(skip)
    began = time.perf_counter()
    model.fit(
        x,
        y,
        batch_size=config.batch_size,
        epochs=config.epochs,
        shuffle=True,
        steps_per_epoch=steps,
        verbose=0,
        callbacks=[clock],
    )
    return {
        **clock.rates(config.batch_size),
        "fit_s": time.perf_counter() - began,
        "samples": float(len(x)),
        "params": float(model.count_params()),
    }


class PeakSampler:
    """Largest RSS seen by a 20 ms polling thread (getrusage gives the true peak)."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_now())

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def rss_now() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


def max_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def gib(n: float) -> str:
    return f"{n / 1024**3:.2f} GiB"


def case_speed(args: argparse.Namespace) -> dict[str, Any]:
    from predictor.ml.training import resolve_jit_compile

    config = bench_config()
    frame, files = load_year(args.rows)
    # Rows for exactly --speed-windows training windows (window - 1 before, label reach after).
    frame = frame.iloc[: args.speed_windows + config.window - 1 + config.reach]
    x, y = bare_arrays(frame, config)
    same_jit = resolve_jit_compile(config.arch, config.xla)
    arms: dict[str, Callable[[], dict[str, float]]] = {
        "product": lambda: run_product(frame, config, args.skip_batches),
        "bare": lambda: run_bare(x, y, config, args.skip_batches, same_jit),
        "product_noxla": lambda: run_product(
            frame, dataclasses.replace(config, xla=False), args.skip_batches
        ),
        "bare_default": lambda: run_bare(x, y, config, args.skip_batches, "auto"),
    }
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in ARMS}
    for round_ in range(args.repeats):
        # Rotated order: a load that drifts during the run favours no arm.
        order = ARMS[round_ % len(ARMS) :] + ARMS[: round_ % len(ARMS)]
        for name in order:
            runs[name].append(arms[name]())
        summary = ", ".join(
            f"{n} {runs[n][-1]['steady']:,.0f}/s {runs[n][-1]['cpu']:,.0f}/CPU-s" for n in ARMS
        )
        print(f"  round {round_ + 1}: {summary}", flush=True)
    return {"files": files, "rows": len(frame), "jit": str(same_jit), "runs": runs}


def make_rss_log(every: int) -> Any:
    import keras

    class RssLog(keras.callbacks.Callback):  # type: ignore[misc]
        """RSS after the first and the last batch; progress on stderr."""

        def __init__(self) -> None:
            super().__init__()
            self.batches = 0
            self.first = 0
            self.last = 0

        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            self.batches += 1
            self.last = rss_now()
            self.first = self.first or self.last
            if self.batches % every == 0:
                print(f"  batch {self.batches}, RSS {gib(self.last)}", file=sys.stderr, flush=True)

    return RssLog()


def case_memory_product(args: argparse.Namespace) -> dict[str, Any]:
    import keras  # noqa: F401  (the import's own RSS, reported separately)

    from predictor.ml.training import train_pipeline

    after_import = rss_now()
    sampler = PeakSampler()
    frame, files = load_year(args.rows)
    loaded = rss_now()
    log = make_rss_log(every=200)
    limit = args.memory_batches

    def should_stop() -> bool:
        # The product's own cancel hook: stops within one batch (0 = the whole epoch).
        return limit > 0 and log.batches >= limit

    bundle = train_pipeline(frame, bench_config(), callbacks=[log], should_stop=should_stop)
    return {
        "files": files,
        "rows": len(frame),
        "windows": len(bundle.prepared.split.train.anchors),
        "batches": log.batches,
        "fit_s": bundle.fit.seconds,
        "import_rss": after_import,
        "loaded_rss": loaded,
        "first_batch_rss": log.first,
        "last_batch_rss": log.last,
        "sampled_peak": sampler.stop(),
        "max_rss": max_rss(),
    }


def case_memory_bare(args: argparse.Namespace) -> dict[str, Any]:
    from predictor.ml.training import resolve_jit_compile

    config = bench_config()
    frame, _ = load_year(args.rows)
    x, y = bare_arrays(frame, config)
    jit = resolve_jit_compile(config.arch, config.xla)
    run_bare(x, y, config, skip=0, jit_compile=jit, steps=args.bare_steps)
    return {"windows": len(x), "x_bytes": x.nbytes, "max_rss": max_rss()}


CASES = {
    "speed": case_speed,
    "memory-product": case_memory_product,
    "memory-bare": case_memory_bare,
}


def spawn(case: str, argv: list[str]) -> dict[str, Any]:
    print(f"[{case}] running …", flush=True)
    began = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, "--case", case, *argv],
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    lines = proc.stdout.splitlines()
    for line in lines:
        if not line.startswith(RESULT):
            print(line)
    if proc.returncode != 0:
        raise SystemExit(f"[{case}] failed with exit status {proc.returncode}")
    print(f"[{case}] done in {time.perf_counter() - began:.0f} s", flush=True)
    found = [line for line in lines if line.startswith(RESULT)]
    result: dict[str, Any] = json.loads(found[-1].removeprefix(RESULT))
    return result


def speed_table(runs: dict[str, list[dict[str, float]]]) -> float:
    """Print the speed rows; return the headline (median product/bare wall ratio)."""

    def med(name: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[name])

    print("| arm | samples/s (wall), median | per round | samples per CPU-s, median | fit() s |")
    print("|---|---|---|---|---|")
    for name in ARMS:
        rounds = " · ".join(f"{r['steady']:,.0f}" for r in runs[name])
        print(
            f"| {name} | {med(name, 'steady'):,.0f} | {rounds} | {med(name, 'cpu'):,.0f} | "
            f"{med(name, 'fit_s'):.0f} |"
        )
    print()
    print("| ratio, per round | wall | median | CPU | median |")
    print("|---|---|---|---|---|")
    headline = 0.0
    for top, bottom, label in RATIOS:
        cells = []
        for key in ("steady", "cpu"):
            ratios = [a[key] / b[key] for a, b in zip(runs[top], runs[bottom], strict=True)]
            cells += [
                " · ".join(f"{r:.2f}" for r in ratios),
                f"**{statistics.median(ratios):.2f}**",
            ]
            if (top, bottom, key) == ("product", "bare", "steady"):
                headline = statistics.median(ratios)
        print(f"| {label} | {' | '.join(cells)} |")
    return headline


def memory_lines(mem: dict[str, Any], bare_mem: dict[str, Any] | None) -> None:
    full = mem["batches"] * 256 >= mem["windows"]
    print(
        f"memory, product path on the full year: {mem['rows']:,} rows, {mem['windows']:,} windows, "
        f"{mem['batches']:,} batches of 256 ({'the whole epoch' if full else 'stopped early'}) "
        f"in {mem['fit_s']:.0f} s"
    )
    print(
        f"  peak RSS (getrusage) {gib(mem['max_rss'])}, sampled {gib(mem['sampled_peak'])}; "
        f"after importing keras {gib(mem['import_rss'])}, after loading candles "
        f"{gib(mem['loaded_rss'])}, after batch 1 {gib(mem['first_batch_rss'])}, "
        f"after the last batch {gib(mem['last_batch_rss'])}"
    )
    if bare_mem is not None:
        print(
            f"  reference, bare script on the full year ({bare_mem['windows']:,} windows "
            f"materialised, {gib(bare_mem['x_bytes'])}): peak RSS {gib(bare_mem['max_rss'])}"
        )


def report(speed: dict[str, Any], mem: dict[str, Any], bare_mem: dict[str, Any] | None) -> None:
    import keras
    import tensorflow as tf

    first = speed["runs"]["product"][0]
    print()
    print(
        f"python {platform.python_version()}, keras {keras.__version__} "
        f"({keras.backend.backend()}), tensorflow {tf.__version__}, numpy {np.__version__}, "
        f"{os.cpu_count()} CPUs, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '-')}, "
        f"load average (1/5/15 min) {' / '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    print(f"data: {len(mem['files'])} FILUSDT 1m months ({mem['files'][0]} … {mem['files'][-1]})")
    print(
        f"speed: {speed['rows']:,} rows → {first['samples']:,.0f} windows of 60×5, "
        f"Conv1D + LSTM 64×2 + dropout 0.25 ({first['params']:,.0f} params), batch 256, "
        f"one epoch per run, product jit_compile={speed['jit']}, "
        f"{len(speed['runs']['product'])} rounds"
    )
    print()
    ratio = speed_table(speed["runs"])
    print()
    memory_lines(mem, bare_mem)
    print()
    print(
        f"goal ratio >= {GOAL_RATIO}: {'met' if ratio >= GOAL_RATIO else 'NOT met'} ({ratio:.2f})"
    )
    peak = mem["max_rss"]
    print(f"goal peak < 4 GB: {'met' if peak < GOAL_BYTES else 'NOT met'} ({gib(peak)})")
    python = os.path.relpath(sys.executable)
    print(f"command: OMP_NUM_THREADS=2 TF_CPP_MIN_LOG_LEVEL=2 {python} {' '.join(sys.argv)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=525_600)
    parser.add_argument("--speed-windows", type=int, default=25_600, help="100 batches of 256")
    parser.add_argument("--repeats", type=int, default=4, help="rounds of the four speed arms")
    parser.add_argument("--skip-batches", type=int, default=10)
    parser.add_argument("--memory-batches", type=int, default=0, help="0: the whole epoch")
    parser.add_argument("--bare-steps", type=int, default=100)
    parser.add_argument("--no-bare-memory", action="store_true")
    parser.add_argument("--case", choices=sorted(CASES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case is not None:
        print(RESULT + json.dumps(CASES[args.case](args)), flush=True)
        return
    names = ("rows", "speed_windows", "repeats", "skip_batches", "memory_batches", "bare_steps")
    argv = [f"--{name.replace('_', '-')}={getattr(args, name)}" for name in names]
    speed = spawn("speed", argv)
    mem = spawn("memory-product", argv)
    bare_mem = None if args.no_bare_memory else spawn("memory-bare", argv)
    report(speed, mem, bare_mem)


if __name__ == "__main__":
    main()
