"""Argument types for the training commands: each rejects a bad value with the reason.

argparse turns an ``ArgumentTypeError`` into "argument -D/--dropout: <reason>",
so every message names its flag.
"""

from __future__ import annotations

import argparse
import uuid
from datetime import UTC, datetime
from typing import Any

from predictor.ml.intervals import IntervalError, parse_interval


def str_to_bool(text: str) -> bool:
    """``-V false`` means false (the original's ``type=bool`` made every value true)."""
    value = text.strip().lower()
    if value in ("1", "true", "t", "yes", "y", "on"):
        return True
    if value in ("0", "false", "f", "no", "n", "off"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not true or false")


def _whole_number(text: str, minimum: int, rule: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"{value} {rule}")
    return value


def positive_int(text: str) -> int:
    return _whole_number(text, 1, "must be at least 1")


def non_negative_int(text: str) -> int:
    return _whole_number(text, 0, "must not be negative")


def fraction(text: str) -> float:
    """``0.8`` or ``80%``; the original took ``-D`` as an int and rejected 0.25."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a fraction like 0.25 or 25%") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not between 0 and 1 (or 0% and 100%)")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number")
    return value


def when(text: str) -> datetime:
    """ISO date or date-time; a time without a zone is UTC."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO date or time (e.g. 2024-01-31 or 2024-01-31T12:00)"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def interval(text: str) -> str:
    try:
        return parse_interval(text).code
    except IntervalError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def session_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a session id (a UUID)") from None


def name_list(choices: tuple[str, ...] | None = None, upper: bool = False) -> Any:
    def parse(text: str) -> tuple[str, ...]:
        items = tuple(i.strip() for i in text.split(",") if i.strip())
        items = tuple(i.upper() for i in items) if upper else tuple(i.lower() for i in items)
        if not items:
            raise argparse.ArgumentTypeError("give at least one name")
        bad = [i for i in items if choices is not None and i not in choices]
        if bad:
            raise argparse.ArgumentTypeError(f"{bad[0]!r} is not one of {', '.join(choices or ())}")
        return items

    return parse


def choice(choices: tuple[str, ...]) -> Any:
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in choices:
            raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(choices)}")
        return value

    return parse
