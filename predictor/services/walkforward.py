"""Walk-forward sessions: retrain every ``step`` bars, forecast the next block, judge the stitch.

A walk-forward session is a :class:`TrainingSession` with mode ``walk_forward``.
Its ``split`` holds the fold plan (:mod:`predictor.ml.walkforward`) and ``folds``
one progress entry per fold. Each fold trains its own model on the anchors
before its block (minus the purge gap), forecasts the block out of sample and
stores those forecasts as the session's predictions. Folds are independent, so
on Celery they run as a group across workers with a finishing callback (a
chord); inline they run one after another.

The stitched forecasts are judged by the ordinary evaluation service: the first
fold's block is the ``validation`` part (θ is chosen there only), every later
block is ``test``, one out-of-sample series. No fold model is kept: the artifact
of a walk-forward session is its predictions and its report.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from predictor.ml.config import LEARNING_BASELINES, TrainConfig
from predictor.ml.walkforward import Scheme, WalkForwardError, plan_walk_forward
from predictor.models import Prediction, SessionMode, SessionStatus, TrainingSession
from predictor.selectors.candles import session_frames
from predictor.services.evaluation import session_evaluate
from predictor.services.forecasting import store_forecasts
from predictor.services.notify import session_end_notify
from predictor.services.sessions import Heartbeat, TrainingError, error_text, session_create
from predictor.services.training import one_or_many

logger = logging.getLogger(__name__)
FoldFn = Callable[[int, int, dict[str, Any]], None]


@dataclass(frozen=True)
class WalkForwardSpec:
    """How to cut the folds: ``step`` bars per block after ``min_train`` bars of samples."""

    step: int
    min_train: int
    scheme: Scheme = "expanding"
    train_size: int | None = None  # sliding: bars to train on
    max_folds: int | None = None  # keep only the latest folds

    def __post_init__(self) -> None:
        if self.scheme == "sliding" and self.train_size is None:
            raise TrainingError("a sliding window needs its length in bars", field="train_size")


def walk_forward_create(
    config: TrainConfig,
    spec: WalkForwardSpec,
    *,
    symbols: Sequence[str],
    exchange: str | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    user: Any = None,
) -> TrainingSession:
    """Plan the folds on the data now and store a queued walk-forward session."""
    if not config.is_network and config.arch not in LEARNING_BASELINES:
        raise TrainingError(
            f"arch {config.arch} learns nothing: walk-forward needs a model", field="arch"
        )
    config = replace(config, evaluation=True)
    session = session_create(
        config,
        symbols=symbols,
        exchange=exchange,
        start=start,
        end=end,
        user=user,
        mode=SessionMode.WALK_FORWARD,
    )
    try:
        plan = _plan(session, spec)
    except (WalkForwardError, TrainingError, ValueError) as exc:
        session.delete()
        raise TrainingError(str(exc), field="step") from exc
    folds = plan["folds"]
    if len(folds) < 2:
        session.delete()
        raise TrainingError(
            f"only {len(folds)} fold fits: walk-forward needs two or more (the first block "
            "chooses θ, the later ones are the test); use a smaller --step or --min-train",
            field="step",
        )
    session.split = _report_parts(plan)
    session.folds = [
        {
            "index": i,
            "status": "queued",
            "train": fold["train"],
            "test": fold["test"],
        }
        for i, fold in enumerate(folds)
    ]
    session.epochs = config.epochs * len(folds) if config.is_network else 0
    session.save(update_fields=["split", "folds", "epochs"])
    return session


def _plan(session: TrainingSession, spec: WalkForwardSpec) -> dict[str, Any]:
    from predictor.ml.training import prepare_data  # Keras: imported only when needed

    config = TrainConfig.from_dict(session.config)
    frames = session_frames(session, session.requested_start, session.requested_end)
    prep = prepare_data(one_or_many(frames), config)
    plan = plan_walk_forward(
        prep.anchors,
        prep.market.index,
        window=config.window,
        reach=config.reach,
        gap=config.effective_gap,
        step=spec.step,
        min_train=spec.min_train,
        scheme=spec.scheme,
        train_size=spec.train_size,
        val_fraction=config.val_split,
        max_folds=spec.max_folds,
    )
    return plan.to_dict()


def _report_parts(plan: dict[str, Any]) -> dict[str, Any]:
    """The plan, plus train/validation/test spans in the shape evaluation reads.

    The first fold's block is the validation part; all later blocks are the test part.
    """
    folds = plan["folds"]
    first, rest = folds[0]["test"], [f["test"] for f in folds[1:]]
    test: dict[str, Any] = {"samples": sum(int(p["samples"]) for p in rest)}
    if rest:
        test.update(first_time=rest[0]["first_time"], last_time=rest[-1]["last_time"])
    return {
        "train": folds[0]["train"],
        "validation": first,
        "test": test,
        "walk_forward": plan,
    }


def _fold_update(session_id: Any, index: int, **fields: Any) -> None:
    """Merge ``fields`` into fold ``index``'s entry; row-locked, folds finish in parallel."""
    with transaction.atomic():
        session = TrainingSession.objects.select_for_update().get(pk=session_id)
        folds = list(session.folds)
        folds[index] = {**folds[index], **fields}
        epochs = sum(int(f.get("epoch", 0)) for f in folds)
        TrainingSession.objects.filter(pk=session_id).update(
            folds=folds,
            epoch=epochs,
            heartbeat=timezone.now(),
            loss=fields.get("loss", session.loss),
        )


def _start(session_id: Any, task_id: str = "") -> TrainingSession | None:
    """queued → running (the first fold to start does it); None if cancelled or finished."""
    now = timezone.now()
    TrainingSession.objects.filter(pk=session_id, status=SessionStatus.QUEUED).update(
        status=SessionStatus.RUNNING, started=now, heartbeat=now,
        **({"celery_task_id": task_id} if task_id else {}),
    )  # fmt: skip
    session = TrainingSession.objects.get(pk=session_id)
    return session if session.status == SessionStatus.RUNNING else None


def walk_forward_fold(session_id: Any, index: int, *, task_id: str = "") -> dict[str, Any]:
    """Train fold ``index``, forecast its block and store those forecasts."""
    # Keras: imported only where a fold trains.
    from predictor.ml.forecasting import forecast_windows
    from predictor.ml.splits import Part, Split
    from predictor.ml.training import prepare_data, train_pipeline

    session = _start(session_id, task_id)
    if session is None or session.cancel_requested:
        return {"fold": index, "status": "skipped"}
    fold = session.folds[index]
    if fold.get("status") == "succeeded":  # a redelivered message
        return {"fold": index, "status": "succeeded"}
    _fold_update(session.pk, index, status="running", started=timezone.now().isoformat())
    heartbeat = Heartbeat(session.pk, settings.TRAINING_HEARTBEAT_SECONDS)
    heartbeat.start()
    try:
        config = TrainConfig.from_dict(session.config)
        frames = session_frames(session, session.requested_start, session.requested_end)
        data = one_or_many(frames)
        prep = prepare_data(data, config)
        plan = session.split["walk_forward"]["folds"][index]

        def part(spec: dict[str, Any]) -> Part:
            if not spec.get("samples"):
                return Part(prep.anchors[:0], None, None)
            keep = (prep.anchors >= spec["first_anchor"]) & (prep.anchors <= spec["last_anchor"])
            anchors = prep.anchors[keep]
            return Part(anchors, prep.market.index[anchors[0]], prep.market.index[anchors[-1]])

        split = Split(
            part(plan["train"]), part(plan["validation"]), part(plan["test"]),
            window=config.window, reach=config.reach, gap=int(plan["gap"]),
        )  # fmt: skip
        epochs: list[dict[str, float]] = []

        def on_epoch(epoch: int, total: int, logs: dict[str, float]) -> None:
            epochs.append(logs)
            _fold_update(session.pk, index, epoch=epoch, loss=logs.get("loss"))

        bundle = train_pipeline(
            data, config, on_epoch=on_epoch, should_stop=heartbeat.cancel.is_set, split=split
        )
        if bundle.fit is not None and bundle.fit.cancelled:
            _fold_update(session.pk, index, status="cancelled")
            return {"fold": index, "status": "cancelled"}
        forecasts = forecast_windows(
            bundle, frames, start=split.test.first_time, end=split.test.last_time
        )
        forecasts = forecasts.select(forecasts.split == "test")
        label = "validation" if index == 0 else "test"
        forecasts = replace(forecasts, split=np.full(len(forecasts), label))
        stored = store_forecasts(session, forecasts)
        _fold_update(
            session.pk, index, status="succeeded", predictions=stored,
            finished=timezone.now().isoformat(), history=epochs,
        )  # fmt: skip
        return {"fold": index, "status": "succeeded", "predictions": stored}
    except Exception as exc:
        logger.exception("walk-forward %s fold %d failed", session_id, index)
        _fold_update(session.pk, index, status="failed", error=error_text(exc))
        return {"fold": index, "status": "failed", "error": str(exc)[:500]}
    finally:
        heartbeat.stop()


def walk_forward_finish(session_id: Any, fee: float = 0.001) -> TrainingSession:
    """After every fold: fail, cancel or evaluate the stitched forecasts."""
    session = TrainingSession.objects.get(pk=session_id)
    if session.status not in TrainingSession.ACTIVE:
        return session
    statuses = [f.get("status") for f in session.folds]
    now = timezone.now()
    done = TrainingSession.objects.filter(pk=session.pk, status__in=TrainingSession.ACTIVE)
    if session.cancel_requested or "cancelled" in statuses:
        ended = done.update(status=SessionStatus.CANCELLED, finished=now, error="cancelled")
    elif any(s != "succeeded" for s in statuses):
        failed = [f for f in session.folds if f.get("status") != "succeeded"]
        reason = "; ".join(
            f"fold {f['index']}: {f.get('error') or f.get('status')}" for f in failed
        )
        ended = done.update(status=SessionStatus.FAILED, finished=now, error=reason[:4000])
    else:
        ended = done.update(status=SessionStatus.SUCCEEDED, finished=now, error="")
        session.refresh_from_db()
        try:
            session_evaluate(session, fee=fee)
        except Exception as exc:
            logger.exception("walk-forward %s: evaluation failed", session.pk)
            TrainingSession.objects.filter(pk=session.pk).update(
                status=SessionStatus.FAILED, error=f"evaluation: {error_text(exc)}"
            )
    if ended:  # after the evaluation: its outcome is the session's end
        session_end_notify(session.pk)
    session.refresh_from_db()
    return session


def walk_forward_run(session_id: Any, on_fold: FoldFn | None = None) -> TrainingSession:
    """Run every fold here, one after another, then evaluate (the command without --async)."""
    session = TrainingSession.objects.get(pk=session_id)
    total = len(session.folds)
    for index in range(total):
        result = walk_forward_fold(session.pk, index)
        if on_fold is not None:
            on_fold(index + 1, total, result)
        if result["status"] in ("failed", "cancelled", "skipped"):
            break
    return walk_forward_finish(session.pk)


def walk_forward_queue(session: TrainingSession) -> TrainingSession:
    """One Celery task per fold on the training queue, in parallel, then the finishing task."""
    from celery import chord, signature

    def send() -> None:
        folds = [
            signature(
                "predictor.tasks.walk_forward_fold", args=[str(session.pk), i], queue="training"
            )
            for i in range(len(session.folds))
        ]
        finish = signature("predictor.tasks.walk_forward_finish", args=[str(session.pk)], queue="default", immutable=True)  # fmt: skip
        result = chord(folds)(finish)
        TrainingSession.objects.filter(pk=session.pk).update(celery_task_id=result.id or "")

    transaction.on_commit(send)
    return session


def walk_forward_reset(session: TrainingSession) -> TrainingSession:
    """For a retry: every fold back to queued, the old forecasts and reports gone."""
    with transaction.atomic():
        Prediction.objects.filter(session=session).delete()
        session.reports.all().delete()
        folds = [
            {"index": f["index"], "status": "queued", "train": f["train"], "test": f["test"]}
            for f in session.folds
        ]
        TrainingSession.objects.filter(pk=session.pk).update(folds=folds, epoch=0)
    session.refresh_from_db()
    return session
