"""Serve Plotly.js from the installed ``plotly`` Python package, not from a copy or a CDN.

The ``plotly`` wheel ships the matching ``plotly.min.js`` in ``plotly/package_data``.
This finder exposes that one file as the static file ``vendor/plotly/plotly.min.js``,
so ``collectstatic`` copies it, WhiteNoise serves it and the pages work offline,
always at the version the Python charts were built for. Enable it with::

    STATICFILES_FINDERS = [
        "django.contrib.staticfiles.finders.FileSystemFinder",
        "django.contrib.staticfiles.finders.AppDirectoriesFinder",
        "predictor.staticfinders.PlotlyJsFinder",
    ]
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, overload

from django.contrib.staticfiles.finders import BaseFinder
from django.core import checks
from django.core.files.storage import FileSystemStorage

PLOTLY_JS = "vendor/plotly/plotly.min.js"
_PREFIX, _NAME = PLOTLY_JS.rsplit("/", 1)


def plotly_js_path() -> Path | None:
    """Where the installed ``plotly`` package keeps ``plotly.min.js``; None if it does not."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "package_data" / _NAME
    return path if path.is_file() else None


class PlotlyJsFinder(BaseFinder):
    """A staticfiles finder for exactly one file: the plotly package's ``plotly.min.js``."""

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        if plotly_js_path() is None:
            return [
                checks.Error(
                    "plotly.min.js was not found in the installed plotly package",
                    hint="Install the 'plotly' Python package (see pyproject.toml).",
                    id="predictor.E001",
                )
            ]
        return []

    @overload
    def find(self, path: str, find_all: Literal[False] = False, **kwargs: Any) -> str | None: ...
    @overload
    def find(self, path: str, find_all: Literal[True], **kwargs: Any) -> list[str]: ...
    def find(self, path: str, find_all: bool = False, **kwargs: Any) -> str | list[str] | None:
        found = plotly_js_path() if path == PLOTLY_JS else None
        if find_all or kwargs.get("all"):  # ``all``: the name before Django 5.2
            return [] if found is None else [str(found)]
        return None if found is None else str(found)

    def list(self, ignore_patterns: Any) -> Iterator[tuple[str, FileSystemStorage]]:
        found = plotly_js_path()
        if found is None:
            return
        storage = FileSystemStorage(location=str(found.parent))
        # collectstatic and WhiteNoise put a storage's files under its ``prefix``.
        storage.prefix = _PREFIX  # type: ignore[attr-defined]
        yield _NAME, storage
