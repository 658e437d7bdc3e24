"""Build an Elastic Beanstalk source bundle for one of the two environments.

EB runs every process of the ``Procfile`` at the bundle's root on every instance, and
restarts any that exits. The root ``Procfile`` is Heroku's (a ``release`` step, the workers
and beat), so each EB environment gets its own from ``deploy/eb/``:

* ``web``: gunicorn only, on every instance behind the load balancer, with the health check
  (``deploy/eb/web/02_health.config``);
* ``worker``: the Celery workers and beat, for a single-instance worker environment, so beat
  runs exactly once.

    python scripts/eb_bundle.py web -o dist/eb-web.zip
    python scripts/eb_bundle.py worker --ref v1.2 -o dist/eb-worker.zip

The bundle holds the files committed at ``--ref`` (``git archive``, as ``eb deploy`` does),
file modes kept, so the platform hooks stay executable.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROLES = ("web", "worker")
PROCFILES = {role: f"deploy/eb/Procfile.{role}" for role in ROLES}
# Extensions one environment alone gets: the web's health check (the worker serves no HTTP).
EXTENSIONS = {"web": {"deploy/eb/web/02_health.config": ".ebextensions/02_health.config"}}


class BundleError(Exception):
    pass


def archive(repo: Path, ref: str) -> tarfile.TarFile:
    done = subprocess.run(
        ["git", "archive", "--format=tar", ref], cwd=repo, capture_output=True, check=False
    )
    if done.returncode != 0:
        raise BundleError(f"git archive {ref} failed: {done.stderr.decode().strip()}")
    return tarfile.open(fileobj=io.BytesIO(done.stdout), mode="r:")


def bundle(repo: Path, role: str, out: Path, ref: str = "HEAD") -> list[str]:
    """Write the zip for ``role`` to ``out``; returns the names it holds."""
    if role not in ROLES:
        raise BundleError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    with archive(repo, ref) as tar:
        files = {
            member.name: (member, _read(tar, member))
            for member in tar.getmembers()
            if member.isfile()
        }
    if PROCFILES[role] not in files:
        raise BundleError(f"{PROCFILES[role]} is not committed at {ref}")
    member, procfile = files[PROCFILES[role]]
    files["Procfile"] = (member, procfile)
    for source, target in EXTENSIONS.get(role, {}).items():
        if source not in files:
            raise BundleError(f"{source} is not committed at {ref}")
        files[target] = files[source]
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, (member, data) in sorted(files.items()):
            info = zipfile.ZipInfo(name, date_time=_date_time(member.mtime))
            info.external_attr = (0o100000 | member.mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return sorted(files)


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    extracted = tar.extractfile(member)
    return extracted.read() if extracted is not None else b""


def _date_time(mtime: float) -> tuple[int, int, int, int, int, int]:
    stamp = time.gmtime(max(mtime, 315_532_800))  # zip cannot store dates before 1980
    return stamp.tm_year, stamp.tm_mon, stamp.tm_mday, stamp.tm_hour, stamp.tm_min, stamp.tm_sec


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("role", choices=ROLES)
    parser.add_argument("-o", "--output", type=Path, help="default: dist/eb-<role>.zip")
    parser.add_argument("--ref", default="HEAD", help="the commit to bundle (default HEAD)")
    args = parser.parse_args(argv)
    out = args.output or ROOT / "dist" / f"eb-{args.role}.zip"
    try:
        names = bundle(ROOT, args.role, out, args.ref)
    except BundleError as exc:
        print(f"eb_bundle: {exc}", file=sys.stderr)
        return 1
    print(f"{out}: {len(names)} files, Procfile from {PROCFILES[args.role]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
