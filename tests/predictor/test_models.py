"""Model properties that several layers rely on."""

from __future__ import annotations

import pytest

from predictor.models import SessionStatus, TrainingSession


@pytest.mark.parametrize(
    ("status", "manifest", "expected"),
    [
        (SessionStatus.SUCCEEDED, {"id": "x"}, True),
        (SessionStatus.SUCCEEDED, {}, False),  # succeeded but its artifact is gone
        (SessionStatus.FAILED, {"id": "x"}, False),
        (SessionStatus.RUNNING, {}, False),
    ],
)
def test_has_model_needs_a_succeeded_run_and_a_stored_manifest(
    status: str, manifest: dict[str, str], expected: bool
) -> None:
    session = TrainingSession(status=status, manifest=manifest)
    assert session.has_model is expected
