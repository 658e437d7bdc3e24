"""Keep TensorFlow's native start-up chatter out of every command's output.

TensorFlow 2.21 writes its C++/absl start-up lines (oneDNN, CUDA stubs, CPU
features, ``cuInit``) straight to file descriptor 2 before absl's logging is
initialised, so ``TF_CPP_MIN_LOG_LEVEL`` no longer hides them. This module
installs an import hook that runs ``import tensorflow`` (and the one GPU probe
that prints ``cuInit``) with descriptor 2 captured, then writes back every
captured line that is not one of those known notices: a real error still shows.

``CRYPTOORACLE_TF_LOGS=1``, ``TF_CPP_MIN_LOG_LEVEL=0`` or ``1``, or a
management command's ``-v 2``/``-v 3`` leave TensorFlow's output untouched.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Sequence
from types import ModuleType

# The notices TensorFlow prints on every start: absl's pre-init banner, INFO/WARNING
# lines (I/W + MMDD), the CPU-feature hint's second line, and the failed CUDA probe
# on a machine without a GPU.
_NOTICE = re.compile(
    rb"^(WARNING: All log messages before absl::InitializeLog\(\)"
    rb"|[IW]\d{4} \d\d:\d\d:\d\d"
    rb"|To enable the following instructions:"
    rb"|E\d{4} \d\d:\d\d:\d+\.\d+ +\d+ cuda_[a-z_]+\.cc:\d+\] failed call to cuInit)"
)


def wanted(environ: dict[str, str] | os._Environ[str] | None = None) -> bool:
    """Whether the user asked to see TensorFlow's native logging."""
    env = os.environ if environ is None else environ
    return env.get("CRYPTOORACLE_TF_LOGS", "").strip().lower() in {"1", "true", "yes", "on"} or (
        env.get("TF_CPP_MIN_LOG_LEVEL", "").strip() in {"0", "1"}
    )


def verbosity_asks_for_logs(argv: Sequence[str]) -> bool:
    """``manage.py … -v 2`` (or 3, ``--verbosity=2``) asks for everything."""
    for i, arg in enumerate(argv):
        value = None
        if arg in ("-v", "--verbosity") and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith("--verbosity="):
            value = arg.split("=", 1)[1]
        elif arg.startswith("-v") and len(arg) == 3:
            value = arg[2]
        if value in ("2", "3"):
            return True
    return False


def filtered(captured: bytes) -> bytes:
    """The captured output less TensorFlow's known start-up notices."""
    return b"".join(line for line in captured.splitlines(keepends=True) if not _NOTICE.match(line))


@contextlib.contextmanager
def native_stderr_filtered() -> Iterator[None]:
    """Capture descriptor 2 (C++ writes too), then write back what is not a notice."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            rest = filtered(sink.read())
            if rest:
                os.write(2, rest)


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        with native_stderr_filtered():
            self._loader.exec_module(module)
            # The CUDA probe prints "failed call to cuInit" at the first op otherwise.
            # Listing devices initialises no runtime or thread pool, so a Celery
            # prefork parent may still fork after it.
            module.config.list_physical_devices("GPU")


class _QuietFinder(importlib.abc.MetaPathFinder):
    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "tensorflow":
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _QuietLoader(spec.loader)
        return spec


def install() -> None:
    """Filter TensorFlow's start-up notices unless the user asked for them."""
    if wanted() or verbosity_asks_for_logs(sys.argv[1:]) or "tensorflow" in sys.modules:
        return
    if not any(isinstance(finder, _QuietFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _QuietFinder())
