"""The row progress bar the import commands show on stderr while a file is read."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from django.core.management.base import OutputWrapper
from tqdm import tqdm


def row_progress(stderr: OutputWrapper, name: str) -> Callable[[int], None]:
    """A bar named after the file; hidden when stderr is not a terminal."""
    bar = tqdm(
        desc=Path(name).name[:40],
        unit=" rows",
        unit_scale=True,
        leave=False,
        disable=None,
        file=stderr._out,
    )
    update: Callable[[int], None] = bar.update
    return update
