"""TensorFlow's native start-up notices stay out of every command's output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cryptooracle import tflogs

ROOT = Path(__file__).resolve().parents[2]

STARTUP = (
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    b"I0000 00:00:1796241114.267123    9356 port.cc:153] oneDNN custom operations are on.\n"
    b"I0000 00:00:1796241114.267796    9356 cudart_stub.cc:31] Could not find cuda drivers\n"
    b"To enable the following instructions: AVX2 AVX512F, in other operations, rebuild\n"
    b"E0000 00:00:1796241120.732879    9356 cuda_platform.cc:52] failed call to cuInit: x\n"
)


def test_known_notices_are_dropped_and_anything_else_is_kept() -> None:
    real = b"E0000 00:00:1796241120.7 9356 op_kernel.cc:1] OOM when allocating tensor\n"
    warning = b"Traceback (most recent call last):\n"
    assert tflogs.filtered(STARTUP) == b""
    assert tflogs.filtered(STARTUP + real + warning) == real + warning


@pytest.mark.parametrize(
    ("argv", "asks"),
    [
        (["train_model", "-v", "2"], True),
        (["forecast", "--verbosity=3"], True),
        (["forecast", "-v3"], True),
        (["forecast", "-v", "1"], False),
        (["forecast", "-V", "2"], False),  # -V is train_model's evaluation flag
        ([], False),
    ],
)
def test_verbosity_two_or_more_asks_for_tensorflow_logs(argv: list[str], asks: bool) -> None:
    assert tflogs.verbosity_asks_for_logs(argv) is asks


def test_the_environment_can_ask_for_them() -> None:
    assert tflogs.wanted({"CRYPTOORACLE_TF_LOGS": "1"})
    assert tflogs.wanted({"TF_CPP_MIN_LOG_LEVEL": "0"})
    assert not tflogs.wanted({"TF_CPP_MIN_LOG_LEVEL": "2"})
    assert not tflogs.wanted({})


def _run_tensorflow_command(*extra: str, **env: str) -> subprocess.CompletedProcess[bytes]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in ("TF_CPP_MIN_LOG_LEVEL", "CRYPTOORACLE_TF_LOGS")
    }
    clean.update(env)
    code = "import keras, tensorflow as tf; print(int(tf.constant(1) + 1))"
    return subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", code, *extra],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        timeout=120,
        check=True,
    )


@pytest.mark.slow
def test_a_command_that_runs_tensorflow_prints_only_its_own_output() -> None:
    quiet = _run_tensorflow_command()
    assert quiet.stdout.strip() == b"2"
    assert b"oneDNN" not in quiet.stderr
    assert b"cuInit" not in quiet.stderr
    assert b"absl" not in quiet.stderr


@pytest.mark.slow
def test_verbosity_two_brings_the_notices_back() -> None:
    loud = _run_tensorflow_command("-v", "2")
    assert b"oneDNN" in loud.stderr
