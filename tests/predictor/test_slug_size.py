"""scripts/slug_size.py: the sizes it reports are the files' and their tar.gz's."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path

from tests.predictor.deploy_files import load_script

slug_size = load_script("slug_size")


def _tree(root: Path) -> None:
    (root / "pkg" / "__pycache__").mkdir(parents=True)
    (root / "pkg" / "text.py").write_text("x = 1\n" * 20_000)  # 120,000 bytes, compressible
    (root / "pkg" / "__pycache__" / "text.cpython-311.pyc").write_bytes(b"\0" * 1000)
    (root / "pkg" / "noise.bin").write_bytes(os.urandom(50_000))  # not compressible
    (root / "test").mkdir()
    (root / "test" / "skipped.py").write_text("y" * 9999)


def test_measure_counts_every_file_and_the_real_compressed_size(tmp_path: Path) -> None:
    _tree(tmp_path)
    part = slug_size.measure("p", slug_size.iter_files(tmp_path, {"test"}), tmp_path)
    assert part.installed == 120_000 + 1000 + 50_000
    # The same files through tar + gzip by hand: the counter saw exactly that many bytes.
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=6, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w|", format=tarfile.PAX_FORMAT) as tar,
    ):
        for path in slug_size.iter_files(tmp_path, {"test"}):
            tar.add(path, arcname=str(path.relative_to(tmp_path)), recursive=False)
    assert part.compressed == len(buffer.getvalue())
    assert 50_000 < part.compressed < part.installed
    with tarfile.open(fileobj=io.BytesIO(buffer.getvalue())) as tar:
        assert sorted(tar.getnames()) == [
            "pkg/__pycache__/text.cpython-311.pyc",
            "pkg/noise.bin",
            "pkg/text.py",
        ]


def test_report_says_whether_the_total_fits_the_limit() -> None:
    parts = [slug_size.Part("a", 900_000_000, 300_000_000), slug_size.Part("b", 1, 150_000_000)]
    text, fits = slug_size.report(parts, limit_mb=500)
    assert fits
    assert "compressed slug 450.0 MB fits Heroku's 500 MB limit (+50,000,000 bytes" in text
    text, fits = slug_size.report(parts, limit_mb=400)
    assert not fits
    assert "450.0 MB is OVER" in text
    assert "(-50,000,000 bytes" in text
