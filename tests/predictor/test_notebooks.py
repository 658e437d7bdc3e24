"""The notebooks run end to end on a small database, and are committed without outputs.

A notebook's kernel is a separate process, so it cannot see pytest-django's test
database. The fixtures build their own SQLite file in a temporary folder with the
real management commands (``migrate``, ``import_stocks``, ``train_model``,
``forecast``, ``evaluate``), each in a subprocess whose environment points the
settings there; no DATABASE_URL or REDIS_URL is inherited, so the PostgreSQL pass
of CI runs these tests on SQLite too. The kernel is this interpreter's ipykernel,
whatever kernels the machine has registered.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from contextlib import closing
from dataclasses import dataclass, replace
from pathlib import Path

import nbformat
import numpy as np
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from traitlets import default

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
NOTEBOOK_NAMES = ("01_explore.ipynb", "02_results.ipynb")
COMMANDS = ROOT / "predictor" / "management" / "commands"
SYMBOL = "BTCUSDT"
EXCHANGE = "binance"
CANDLES = 500
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
COMMAND_TIMEOUT = 600  # seconds; training loads TensorFlow, slow on a busy 2-core runner
CELL_TIMEOUT = 300
NO_REPORT = "has no stored evaluation report yet"


@dataclass(frozen=True)
class NotebookDatabase:
    env: dict[str, str]
    session_id: str
    folder: Path


def _environment(folder: Path) -> dict[str, str]:
    """This process's environment with every setting pointed at ``folder`` (SQLite, no Redis)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "REDIS_URL", "MPLBACKEND")
        and not key.startswith("CO_NOTEBOOK_")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="cryptooracle.settings",
        SQLITE_PATH=str(folder / "nb.sqlite3"),
        CRYPTOORACLE_VAR_DIR=str(folder / "var"),
        MODEL_WEIGHTS_DIR=str(folder / "model_weights"),
        SCALERS_DIR=str(folder / "scalers"),
        DATA_DIR=str(folder / "data"),
        # The kernel reads no profile or startup files of the person running the tests.
        IPYTHONDIR=str(folder / "ipython"),
        JUPYTER_RUNTIME_DIR=str(folder / "jupyter-runtime"),
        TF_CPP_MIN_LOG_LEVEL="2",
        CO_NOTEBOOK_SYMBOL=SYMBOL,
        CO_NOTEBOOK_EXCHANGE=EXCHANGE,
        CO_NOTEBOOK_INTERVAL="1h",
        # 500 candles leave ~40 validation forecasts, under the production minimum of 100.
        EVALUATION_MIN_VALIDATION_FORECASTS="20",
    )
    return env


def _manage(env: dict[str, str], *args: str) -> str:
    """Run ``manage.py`` with ``env``; fail the test with its output when it fails."""
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(
            f"manage.py {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        )
    return done.stdout


def _write_candles(path: Path, n: int = CANDLES, seed: int = 7) -> None:
    """A seeded random walk of ``n`` hourly candles as a plain OHLCV CSV."""
    rng = np.random.default_rng(seed)
    close = 30_000 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.concatenate([[30_000.0], close[:-1]])
    spread = np.abs(rng.normal(0, 0.003, n)) * close
    high, low = np.maximum(open_, close) + spread, np.minimum(open_, close) - spread
    volume = rng.uniform(1, 10, n)
    times = 1_704_067_200 + 3600 * np.arange(n)  # 2024-01-01T00:00Z
    rows = np.column_stack([times, open_, high, low, close, volume])
    np.savetxt(
        path,
        rows,
        fmt=["%d", "%.2f", "%.2f", "%.2f", "%.2f", "%.4f"],
        delimiter=",",
        header="timestamp,open,high,low,close,volume",
        comments="",
    )


@pytest.fixture(scope="module")
def trained_database(tmp_path_factory: pytest.TempPathFactory) -> NotebookDatabase:
    """A SQLite file with one market, one tiny evaluation session and its forecasts."""
    folder = tmp_path_factory.mktemp("notebook-db")
    env = _environment(folder)
    _manage(env, "migrate", "--verbosity", "0")
    csv = folder / "candles.csv"
    _write_candles(csv)
    _manage(env, "import_stocks", "--file", str(csv), "--exchange", EXCHANGE, "--symbol", SYMBOL)
    trained = _manage(
        env, "train_model", "-N", SYMBOL, "-W", "8", "-U", "4", "-P", "1", "--no-xla", "-I", "1h"
    )
    found = UUID.search(trained)
    assert found, f"no session id in the train_model output:\n{trained}"
    if (COMMANDS / "forecast.py").is_file():
        _manage(env, "forecast", "-T", found.group())
    return NotebookDatabase(env, found.group(), folder)


@pytest.fixture(scope="module")
def evaluated_database(
    trained_database: NotebookDatabase, tmp_path_factory: pytest.TempPathFactory
) -> NotebookDatabase:
    """A copy of the trained database with the session's reports stored, SPA included."""
    if not (COMMANDS / "evaluate.py").is_file():
        pytest.skip(
            "manage.py evaluate does not exist yet, so the report section of "
            "notebooks/02_results.ipynb is not exercised"
        )
    folder = tmp_path_factory.mktemp("notebook-db-evaluated")
    # The backup API, not a file copy: the source may still have pages in its WAL.
    source = sqlite3.connect(trained_database.env["SQLITE_PATH"])
    target = sqlite3.connect(folder / "nb.sqlite3")
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()
    env = {**trained_database.env, "SQLITE_PATH": str(folder / "nb.sqlite3")}
    _manage(env, "evaluate", "-T", trained_database.session_id, "--spa", "--reps", "100")
    return replace(trained_database, env=env, folder=folder)


class _InterpreterKernelManager(AsyncKernelManager):
    """Starts this interpreter's own ipykernel, whatever kernels the machine has registered.

    With no kernel directories the only kernel found is the native ``python3`` one,
    which ipykernel builds from ``sys.executable``: the project's virtual environment.
    """

    @default("kernel_spec_manager")
    def _default_kernel_spec_manager(self) -> KernelSpecManager:
        return KernelSpecManager(kernel_dirs=[])


def _execute(name: str, database: NotebookDatabase, **env: str) -> nbformat.NotebookNode:
    """Run a notebook top to bottom in a fresh kernel; a cell that raises fails the test."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = NotebookClient(
        notebook,
        kernel_name="python3",
        kernel_manager_class=_InterpreterKernelManager,
        timeout=CELL_TIMEOUT,
        startup_timeout=120,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    with pytest.MonkeyPatch.context() as patch:
        # The connection file goes to the temporary folder, not the home directory.
        patch.setenv("JUPYTER_RUNTIME_DIR", database.env["JUPYTER_RUNTIME_DIR"])
        client.execute(env={**database.env, **env})
    nbformat.write(notebook, database.folder / f"executed-{name}")  # to read when a test fails
    return notebook


def _outputs(notebook: nbformat.NotebookNode, kind: str = "text") -> list[str]:
    """Every text output (streams and text/plain), or the MIME types of rich outputs."""
    found: list[str] = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if kind == "error" and output.output_type == "error":
                found.append(f"{output.ename}: {output.evalue}")
            elif kind == "text" and output.output_type == "stream":
                found.append(output.text)
            elif kind == "text" and "data" in output:
                found.append(output.data.get("text/plain", ""))
            elif kind == "mime" and "data" in output:
                found.extend(output.data)
    return found


def _report_splits(database: NotebookDatabase) -> list[str]:
    with closing(sqlite3.connect(database.env["SQLITE_PATH"])) as connection:
        rows = connection.execute("SELECT split FROM predictor_evaluationreport").fetchall()
    return [split for (split,) in rows]


@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_notebook_is_committed_without_outputs(name: str) -> None:
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code, f"{name} has no code cells"
    dirty = [
        cell.get("id", index)
        for index, cell in enumerate(code)
        if cell.outputs or cell.execution_count is not None or set(cell.metadata) - {"tags"}
    ]
    assert not dirty, (
        f"notebooks/{name}: cells {dirty} carry outputs, execution counts or run metadata; "
        "clear them before committing (Jupyter: Edit > Clear Outputs of All Cells, then save)"
    )
    assert notebook.metadata.get("kernelspec", {}).get("name") == "python3"
    assert "widgets" not in notebook.metadata


@pytest.mark.slow
def test_explore_notebook_describes_returns_volatility_and_autocorrelation(
    trained_database: NotebookDatabase,
) -> None:
    notebook = _execute("01_explore.ipynb", trained_database)

    assert _outputs(notebook, "error") == []
    text = "\n".join(_outputs(notebook))
    assert f"market {SYMBOL} on {EXCHANGE}, 1h bars: {CANDLES} candles" in text
    assert re.search(rf"Jarque–Bera on {SYMBOL} log returns: JB = [\d.]+, p [=<] ", text)
    assert re.search(r"Ljung–Box, \|log returns\| up to lag 24: Q = [\d.]+, p [=<] ", text)
    assert "annualised volatility" in text
    # Histograms and Q-Q plot, price and volatility, the two autocorrelation plots.
    assert _outputs(notebook, "mime").count("image/png") == 3


@pytest.mark.slow
def test_results_notebook_shows_the_session_and_says_when_it_has_no_report(
    trained_database: NotebookDatabase,
) -> None:
    session = trained_database.session_id
    notebook = _execute("02_results.ipynb", trained_database, CO_NOTEBOOK_SESSION=session)

    assert _outputs(notebook, "error") == []
    text = "\n".join(_outputs(notebook))
    assert f"chosen session: {session} (evaluation, succeeded)" in text
    assert "lstm/price on BTCUSDT (binance), 1h bars" in text
    assert re.search(r"^window\s+8$", text, re.MULTILINE), "hyper-parameters table"
    assert f"Session {session} {NO_REPORT}" in text
    assert f"python manage.py evaluate -T {session}" in text
    assert "Report overview" not in text
    images = _outputs(notebook, "mime").count("image/png")
    assert images == (2 if (COMMANDS / "forecast.py").is_file() else 1)  # loss (and forecasts)


@pytest.mark.slow
def test_results_notebook_renders_the_stored_reports(evaluated_database: NotebookDatabase) -> None:
    session = evaluated_database.session_id
    notebook = _execute("02_results.ipynb", evaluated_database)  # picks the session by itself

    assert _outputs(notebook, "error") == []
    text = "\n".join(_outputs(notebook))
    assert f"chosen session: {session}" in text
    assert NO_REPORT not in text
    assert f"Report overview of session {session}" in text
    splits = _report_splits(evaluated_database)
    assert "test" in splits
    assert "Report test: out-of-sample" in text
    if set(splits) - {"test"}:
        assert "[IN-SAMPLE]" in text, f"in-sample reports ({splits}) are labelled as such"
    for expected in ("Forecast errors", "Direction:", "Information coefficient", "Strategy vs"):
        assert expected in text
    assert "buy_and_hold" in text, "the strategy table has the baselines beside the model"
    assert re.search(r"Deflated Sharpe ratio: [\d.]+ ?% with n_trials = \d+", text)
    assert re.search(r"(Better|Not better) than a coin flip .*p [=<] ", text)
    assert "Leakage alarm" in text or "LEAKAGE ALARM" in text
    assert "spa" in splits
    assert re.search(r"Reality Check / SPA across sessions on binance:BTCUSDT", text)
    assert re.search(r"Hansen SPA p [=<] [\d.]+, White Reality Check p [=<] ", text)
    # Model and baselines' equity in each of the three split reports, plus loss and forecasts.
    assert _outputs(notebook, "mime").count("image/png") == 2 + len(set(splits) - {"spa"})
