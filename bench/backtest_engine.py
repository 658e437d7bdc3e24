"""What deciding the backtest's trades with the position engine costs, against the vectorised
selection it replaced, both run in this process on the same arrays.

The reference is ``predictor/ml/evaluation/backtest.py`` as of commit 0067887 (vectorised trade
selection, no engine), loaded from git into a throw-away module; both must give the same equity.

    PYTHONPATH=$PWD .venv/bin/python bench/backtest_engine.py
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from predictor.ml.evaluation.backtest import backtest

REFERENCE_COMMIT = "0067887"


def _reference() -> object:
    root = Path(__file__).resolve().parent.parent
    source = subprocess.run(
        ["git", "show", f"{REFERENCE_COMMIT}:predictor/ml/evaluation/backtest.py"],
        cwd=root, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    path = Path(tempfile.mkdtemp()) / "reference_backtest.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("reference_backtest", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["reference_backtest"] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    old = _reference().backtest  # type: ignore[attr-defined]
    rng = np.random.default_rng(0)
    print("| bars | mode | vectorised (s) | engine (s) | engine / vectorised |")
    print("|---:|---|---:|---:|---:|")
    for n in (50_000, 500_000):
        open_ = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
        forecast = rng.normal(0, 2e-3, n)
        for mode in ("non_overlapping", "overlapping"):
            kw = {"horizon": 15, "theta": 0.001, "bars_per_year": 525_600, "mode": mode}
            t = time.perf_counter()
            before = old(open_, forecast, **kw)
            vectorised = time.perf_counter() - t
            t = time.perf_counter()
            after = backtest(open_, forecast, **kw)
            engine = time.perf_counter() - t
            if not np.allclose(before.equity, after.equity, rtol=0, atol=1e-12):
                raise SystemExit(f"{n} {mode}: the engine's equity differs from the reference")
            print(
                f"| {n:,} | {mode} | {vectorised:.3f} | {engine:.3f} | {engine / vectorised:.0f}x |"
            )


if __name__ == "__main__":
    main()
