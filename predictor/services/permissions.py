"""Who may change what: the one rule the web pages and the API both apply."""

from __future__ import annotations

from typing import Any

from predictor.models import Sweep, TrainingSession


def session_may_change(user: Any, session: TrainingSession) -> bool:
    """The user who started ``session``, or staff; a session nobody owns is staff's alone."""
    return _owner_or_staff(user, session.created_by_id)


def sweep_may_change(user: Any, sweep: Sweep) -> bool:
    """Cancel or resume a sweep: as a session, its starter or staff (the command's: staff)."""
    return _owner_or_staff(user, sweep.created_by_id)


def _owner_or_staff(user: Any, owner_id: Any) -> bool:
    if not getattr(user, "is_authenticated", False):
        return False
    return bool(user.is_staff or (owner_id and owner_id == user.pk))
