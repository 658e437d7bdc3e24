"""scripts/eb_bundle.py: each EB environment's bundle carries its own Procfile at the root."""

from __future__ import annotations

import shutil
import stat
import subprocess
import zipfile
from pathlib import Path

import pytest

from tests.predictor.deploy_files import ROOT, load_script

eb_bundle = load_script("eb_bundle")

FILES = [
    "Procfile",
    "deploy/eb/Procfile.web",
    "deploy/eb/Procfile.worker",
    ".platform/hooks/predeploy/01_django.sh",
    ".ebextensions/01_django.config",
    "deploy/eb/web/02_health.config",
    "requirements.txt",
]


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository holding this one's deployment files, committed."""
    repo = tmp_path / "repo"
    for name in FILES:
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, repo / name)
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "files")
    return repo


@pytest.mark.parametrize("role", ["web", "worker"])
def test_bundle_puts_the_roles_procfile_at_the_root(repo: Path, tmp_path: Path, role: str) -> None:
    out = tmp_path / f"{role}.zip"
    names = eb_bundle.bundle(repo, role, out)
    with zipfile.ZipFile(out) as zf:
        extra = [".ebextensions/02_health.config"] if role == "web" else []
        assert sorted(zf.namelist()) == sorted(names) == sorted(FILES + extra)
        assert zf.read("Procfile") == (ROOT / f"deploy/eb/Procfile.{role}").read_bytes()
        assert zf.read("requirements.txt") == (ROOT / "requirements.txt").read_bytes()
        hook = zf.getinfo(".platform/hooks/predeploy/01_django.sh")
        assert (hook.external_attr >> 16) & stat.S_IXUSR
        config = zf.getinfo(".ebextensions/01_django.config")
        assert not (config.external_attr >> 16) & stat.S_IXUSR
        # Health as config: both environments ask /health/; only the web has a load balancer.
        health = b"".join(zf.read(n) for n in zf.namelist() if n.startswith(".ebextensions/"))
        assert b"Application Healthcheck URL: /health/" in health
        assert (b"HealthCheckPath: /health/" in health) == (role == "web")
    assert b"release:" not in zipfile.ZipFile(out).read("Procfile")


def test_bundle_holds_the_committed_files_not_the_working_tree(repo: Path, tmp_path: Path) -> None:
    (repo / "requirements.txt").write_text("uncommitted\n")
    eb_bundle.bundle(repo, "web", tmp_path / "web.zip")
    with zipfile.ZipFile(tmp_path / "web.zip") as zf:
        assert zf.read("requirements.txt") != b"uncommitted\n"


def test_bundle_refuses_an_unknown_role_and_a_missing_procfile(repo: Path, tmp_path: Path) -> None:
    with pytest.raises(eb_bundle.BundleError, match="role must be one of"):
        eb_bundle.bundle(repo, "beat", tmp_path / "x.zip")
    _git(repo, "rm", "-q", "deploy/eb/Procfile.worker")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "rm")
    with pytest.raises(eb_bundle.BundleError, match=r"Procfile\.worker is not committed"):
        eb_bundle.bundle(repo, "worker", tmp_path / "x.zip")
    with pytest.raises(eb_bundle.BundleError, match="git archive nope failed"):
        eb_bundle.bundle(repo, "web", tmp_path / "x.zip", ref="nope")
