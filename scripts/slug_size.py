"""How big a Heroku slug of the production requirements is, installed and compressed.

Installs ``requirements.txt`` (hash-checked, no pip cache, byte-compiled as pip does by
default) into a temporary folder with ``pip install --target``, as the Python buildpack installs
them, then measures three parts of a
slug: the installed packages, the app's tracked files and this interpreter's standard library
(the runtime the buildpack ships beside them). Each is streamed through tar + gzip (level 6, as
``tar czf``) into a byte counter, so nothing but the install itself touches the disk.

    python scripts/slug_size.py                    # requirements.txt, 500 MB limit
    python scripts/slug_size.py --no-compile       # without the .pyc files pip writes

Exit status 1 when the compressed total is over the limit.
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Heroku's documented maximum compressed slug size.
HEROKU_SLUG_LIMIT_MB = 500
MB = 1_000_000
# Folders of the standard library a slug's runtime does not need to answer requests.
_STDLIB_SKIP = {"site-packages", "test", "idlelib", "tkinter", "turtledemo", "ensurepip"}


class _Counter(io.RawIOBase):
    """A write-only sink that only counts the bytes it is given."""

    def __init__(self) -> None:
        self.count = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        size = len(data)
        self.count += size
        return size


@dataclass(frozen=True)
class Part:
    name: str
    installed: int
    compressed: int


def iter_files(root: Path, skip: Iterable[str] = ()) -> Iterator[Path]:
    """Every regular file under ``root``, in a stable order, leaving out folders named in skip."""
    skipped = set(skip)
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in skipped)
        for name in sorted(files):
            path = Path(folder, name)
            if path.is_file() and not path.is_symlink():
                yield path


def measure(name: str, files: Iterable[Path], base: Path) -> Part:
    """The files' total size and the size of their tar.gz, paths relative to ``base``."""
    counter = _Counter()
    installed = 0
    with (
        gzip.GzipFile(fileobj=counter, mode="wb", compresslevel=6, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w|", format=tarfile.PAX_FORMAT) as tar,
    ):
        for path in files:
            installed += path.stat().st_size
            tar.add(path, arcname=str(path.relative_to(base)), recursive=False)
    return Part(name, installed, counter.count)


def app_files(root: Path) -> list[Path]:
    """The repository's tracked files (what ``git push heroku`` sends), without the .git folder."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True
    ).stdout
    paths = (root / name for name in listed.decode().split("\0") if name)
    return [path for path in paths if path.is_file() and not path.is_symlink()]


def pip_install(requirements: Path, target: Path, *, compile_bytecode: bool = True) -> None:
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-cache-dir"]
    command += ["--require-hashes", "--only-binary", ":all:", "--target", str(target)]
    if not compile_bytecode:
        command.append("--no-compile")
    subprocess.run([*command, "-r", str(requirements)], check=True)


def report(parts: list[Part], limit_mb: int) -> tuple[str, bool]:
    """The table to print and whether the compressed total fits ``limit_mb``."""
    lines = [f"{'part':<22}{'installed MB':>14}{'compressed MB':>15}"]
    for part in parts:
        lines.append(f"{part.name:<22}{part.installed / MB:>14.1f}{part.compressed / MB:>15.1f}")
    installed = sum(part.installed for part in parts)
    compressed = sum(part.compressed for part in parts)
    lines.append(f"{'total':<22}{installed / MB:>14.1f}{compressed / MB:>15.1f}")
    fits = compressed <= limit_mb * MB
    verdict = "fits" if fits else "is OVER"
    lines.append(
        f"compressed slug {compressed / MB:.1f} MB {verdict} Heroku's {limit_mb} MB limit"
        f" ({limit_mb * MB - compressed:+,} bytes to spare)"
    )
    return "\n".join(lines), fits


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requirements", type=Path, default=ROOT / "requirements.txt")
    parser.add_argument("--limit-mb", type=int, default=HEROKU_SLUG_LIMIT_MB)
    parser.add_argument("--keep", type=Path, help="install here and keep it (default: a temp dir)")
    parser.add_argument(
        "--no-compile", action="store_true", help="leave out the .pyc files pip writes by default"
    )
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="slug-") as scratch:
        target = args.keep or Path(scratch, "site-packages")
        pip_install(args.requirements.resolve(), target, compile_bytecode=not args.no_compile)
        stdlib = Path(sysconfig.get_paths()["stdlib"])
        parts = [
            measure("packages", iter_files(target), target),
            measure("app", app_files(ROOT), ROOT),
            measure(f"python {sys.version.split()[0]}", iter_files(stdlib, _STDLIB_SKIP), stdlib),
        ]
    text, fits = report(parts, args.limit_mb)
    print(f"requirements: {args.requirements}")
    print(text)
    return 0 if fits else 1


if __name__ == "__main__":
    sys.exit(main())
