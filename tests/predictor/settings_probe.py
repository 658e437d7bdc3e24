"""Load the settings in a fresh interpreter under a chosen environment, and run a line there.

Settings read the environment once at import, so each case runs in its own process, with every
variable the project reads stripped from this process's environment first: a case sees only
what it sets.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_OURS = ("DJANGO_", "DATABASE_URL", "REDIS_", "CRYPTOORACLE_", "ARTIFACTS_", "CELERY_")
SETUP = "import os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'cryptooracle.settings'); "

# A production environment that starts: nothing here is connected to.
PRODUCTION: dict[str, str] = {
    "DJANGO_RUNTIME_ENVIRONMENT": "production",
    "DJANGO_SECRET_KEY": "k" * 50,
    "DJANGO_ALLOWED_HOSTS": "oracle.example.com",
    "DATABASE_URL": "postgres://u@127.0.0.1:5432/x",
    "REDIS_URL": "redis://127.0.0.1:6379/3",
    "ARTIFACTS_BUCKET": "oracle-artifacts",
}


def environment(**env: str) -> dict[str, str]:
    """This process's environment without the project's variables, plus ``env``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(_OURS)}
    return clean | env


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -c SETUP + code`` in the repository root under ``environment(**env)``."""
    return subprocess.run(
        [sys.executable, "-c", SETUP + code],
        env=environment(**env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
