"""System checks of the project's own settings, run by ``manage.py check`` (``--deploy`` too)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, Tags, register

# Public on purpose: it lets a laptop run with nothing set, and nothing else.
DEVELOPMENT_SECRET_KEY = "development-only-insecure-key-never-use-in-production"


@register(Tags.security, deploy=True)
def development_secret_key_check(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """Django's own W009 accepts this key (long, varied); it is public, so it must not sign."""
    if settings.SECRET_KEY == DEVELOPMENT_SECRET_KEY:
        return [
            Error(
                "SECRET_KEY is the public development key of this repository.",
                hint="Set DJANGO_SECRET_KEY to a long random value.",
                id="cryptooracle.E001",
            )
        ]
    return []
