"""Typed readers for environment variables.

Every setting of the project comes from the environment. These helpers turn a
raw string into the type the setting needs and fail loudly, naming the
variable, when the value cannot be understood: a typo in ``DJANGO_DEBUG`` must
never silently mean "debug on" in production.
"""

from __future__ import annotations

import builtins
import math
import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on", "t", "y"}
_FALSE = {"0", "false", "no", "off", "f", "n", ""}


class Env:
    """Reads typed values from a mapping (``os.environ`` by default)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ

    def raw(self, name: builtins.str) -> builtins.str | None:
        value = self._environ.get(name)
        if value is None:
            return None
        return builtins.str(value).strip()

    def str(self, name: builtins.str, default: builtins.str | None = None) -> builtins.str | None:
        value = self.raw(name)
        return default if value is None or value == "" else value

    def required_str(self, name: builtins.str) -> builtins.str:
        value = self.str(name)
        if value is None:
            raise ImproperlyConfigured(f"Environment variable {name} must be set.")
        return value

    def bool(self, name: builtins.str, default: builtins.bool) -> builtins.bool:
        value = self.raw(name)
        if value is None:
            return default
        lowered = value.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ImproperlyConfigured(
            f"Environment variable {name}={value!r} is not a boolean; "
            "use one of true/false, yes/no, on/off, 1/0."
        )

    def int(
        self, name: builtins.str, default: builtins.int, *, minimum: builtins.int | None = None
    ) -> builtins.int:
        value = self.raw(name)
        if value is None or value == "":
            return default
        try:
            number = builtins.int(value)
        except ValueError:
            raise ImproperlyConfigured(
                f"Environment variable {name}={value!r} is not an integer."
            ) from None
        if minimum is not None and number < minimum:
            raise ImproperlyConfigured(
                f"Environment variable {name}={number} must be at least {minimum}."
            )
        return number

    def float(
        self, name: builtins.str, default: builtins.float, *, minimum: builtins.float | None = None
    ) -> builtins.float:
        value = self.raw(name)
        if value is None or value == "":
            return default
        try:
            number = builtins.float(value)
        except ValueError:
            raise ImproperlyConfigured(
                f"Environment variable {name}={value!r} is not a number."
            ) from None
        if not math.isfinite(number) or (minimum is not None and number < minimum):
            raise ImproperlyConfigured(
                f"Environment variable {name}={number} must be a finite number"
                + (f" of at least {minimum}." if minimum is not None else ".")
            )
        return number

    def list(
        self, name: builtins.str, default: builtins.list[builtins.str]
    ) -> builtins.list[builtins.str]:
        value = self.raw(name)
        if value is None:
            return list(default)
        return [item.strip() for item in value.split(",") if item.strip()]

    def choice(
        self, name: builtins.str, default: builtins.str, choices: tuple[builtins.str, ...]
    ) -> builtins.str:
        value = (self.str(name) or default).lower()
        if value not in choices:
            raise ImproperlyConfigured(
                f"Environment variable {name}={value!r} must be one of {', '.join(choices)}."
            )
        return value

    def url(
        self,
        name: builtins.str,
        default: builtins.str = "",
        *,
        schemes: tuple[builtins.str, ...] = ("http", "https"),
    ) -> builtins.str:
        """A URL with a host and one of ``schemes``; the error never repeats the value,
        which may hold a secret token (webhook URLs do)."""
        value = self.str(name)
        if value is None:
            return default
        parts = urlsplit(value)
        if parts.scheme.lower() not in schemes or not parts.hostname:
            allowed = " or ".join(f"{scheme}://" for scheme in schemes)
            raise ImproperlyConfigured(
                f"Environment variable {name} must be an {allowed} URL with a host"
                f" (its scheme is {parts.scheme or 'missing'!r})."
            )
        return value

    def path(self, name: builtins.str, default: Path) -> Path:
        value = self.str(name)
        return Path(value).expanduser().resolve() if value else default
