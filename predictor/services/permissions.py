"""Who may change what: the one rule the web pages and the API both apply."""

from __future__ import annotations

from typing import Any

from predictor.models import TrainingSession


def session_may_change(user: Any, session: TrainingSession) -> bool:
    """The user who started ``session``, or staff; a session nobody owns is staff's alone."""
    if not getattr(user, "is_authenticated", False):
        return False
    return bool(user.is_staff or (session.created_by_id and session.created_by_id == user.pk))
