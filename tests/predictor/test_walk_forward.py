"""Walk-forward sessions: folds retrained in time order, forecasts stitched, one report."""

from __future__ import annotations

from collections.abc import Callable
from io import StringIO
from typing import Any

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from predictor.models import EvaluationReport, Market, Prediction, SessionMode, TrainingSession

pytestmark = pytest.mark.django_db
TINY_FLAGS = ("-W", "8", "-U", "4", "-P", "1", "-B", "32", "--no-xla", "-I", "1h")


def run(command: str, *args: str) -> str:
    out = StringIO()
    call_command(command, *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_walk_forward_stitches_out_of_sample_blocks_and_reports_them(
    make_market: Callable[..., Market],
) -> None:
    make_market("BTCUSD", 700)
    out = run("walk_forward", *TINY_FLAGS, "--step", "120", "--min-train", "250")
    session = TrainingSession.objects.get()
    assert session.mode == SessionMode.WALK_FORWARD
    assert session.status == "succeeded", session.error
    assert "fold 1/" in out
    folds = session.folds
    assert len(folds) >= 3
    assert all(f["status"] == "succeeded" for f in folds)
    # Each fold trained only on anchors before its block, minus the purge gap.
    plan = session.split["walk_forward"]
    for fold in plan["folds"]:
        assert fold["train"]["last_anchor"] + plan["gap"] < fold["test"]["first_anchor"]
        assert fold["train"]["first_anchor"] == plan["folds"][0]["train"]["first_anchor"]
    anchors = np.array(
        [p.timestamp() for p in Prediction.objects.filter(session=session)
         .order_by("anchor_time").values_list("anchor_time", flat=True)]
    )  # fmt: skip
    assert np.all(np.diff(anchors) == 3600)  # the blocks tile: no gap, no overlap
    first_block = Prediction.objects.filter(session=session, split="validation")
    assert first_block.count() == plan["folds"][0]["test"]["samples"]
    assert set(
        EvaluationReport.objects.filter(session=session).values_list("split", flat=True)
    ) >= {
        "validation",
        "test",
    }
    report = EvaluationReport.objects.get(session=session, split="test").report
    assert report["threshold"]["theta"] is not None
    assert report["n_forecasts"] > 0


def test_walk_forward_needs_its_block_sizes(make_market: Callable[..., Market]) -> None:
    make_market("BTCUSD", 300)
    with pytest.raises(CommandError, match="required: --step"):
        run("walk_forward", *TINY_FLAGS, "--min-train", "100")
    with pytest.raises(CommandError, match="--train-size: a sliding window needs"):
        run("walk_forward", *TINY_FLAGS, "--step", "50", "--min-train", "100",
            "--scheme", "sliding")  # fmt: skip
    with pytest.raises(CommandError, match=r"--step: .*no fold fits"):
        run("walk_forward", *TINY_FLAGS, "--step", "50", "--min-train", "5000")
    with pytest.raises(CommandError, match="unrecognized arguments: -X"):
        run("walk_forward", *TINY_FLAGS, "--step", "50", "--min-train", "100", "-X", "x")
    assert not TrainingSession.objects.exists()


def test_queued_walk_forward_sends_one_task_per_fold_then_the_finisher(
    make_market: Callable[..., Market], django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = True
    from cryptooracle.celery import app

    app.conf.task_always_eager = True
    try:
        make_market("BTCUSD", 500)
        with django_capture_on_commit_callbacks(execute=True):
            run("walk_forward", *TINY_FLAGS, "--step", "100", "--min-train", "250", "--async")
    finally:
        app.conf.task_always_eager = False
    session = TrainingSession.objects.get()
    assert session.status == "succeeded", session.error
    assert all(f["status"] == "succeeded" for f in session.folds)
    assert EvaluationReport.objects.filter(session=session, split="test").exists()


def test_retrying_a_failed_walk_forward_through_the_api_runs_its_folds_again(
    make_market: Callable[..., Market],
    django_capture_on_commit_callbacks: Any,
    settings: Any,
    django_user_model: Any,
) -> None:
    from rest_framework.test import APIClient

    from cryptooracle.celery import app
    from predictor.services.runs import RunRequest, run_start
    from predictor.services.walkforward import WalkForwardSpec

    make_market("BTCUSD", 500)
    owner = django_user_model.objects.create_user("wf-owner", password="pw")
    request = RunRequest(
        given={"window": 8, "units": 4, "epochs": 1, "batch_size": 32, "xla": False},
        symbols=["BTCUSD"],
        walk_forward=WalkForwardSpec(step=100, min_train=250),
    )
    session = run_start(request, user=owner, queue=False)
    TrainingSession.objects.filter(pk=session.pk).update(status="failed", error="worker died")
    client = APIClient()
    client.force_authenticate(owner)
    settings.CELERY_TASK_ALWAYS_EAGER = True
    app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(f"/api/sessions/{session.pk}/retry/")
    finally:
        app.conf.task_always_eager = False
    assert response.status_code == 200, response.content
    session.refresh_from_db()
    # The fold chord ran, not the single-session ``train`` task: every fold trained and the
    # stitched forecasts were judged.
    assert session.mode == SessionMode.WALK_FORWARD
    assert session.status == "succeeded", session.error
    assert [f["status"] for f in session.folds] == ["succeeded"] * len(session.folds)
    assert EvaluationReport.objects.filter(session=session, split="test").exists()
