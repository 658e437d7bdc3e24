"""Notifications of events (a paper position opened or closed); here they go to the log."""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)


def notify(event: str, text: str, **data: Any) -> None:
    """Tell whoever listens that ``event`` happened; never blocks, never raises."""
    logger.info("%s: %s %s", event, text, data)
