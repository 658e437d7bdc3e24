"""Training one session here, in this process: read its candles, fit, save, record.

:func:`session_run` claims a queued session (:mod:`predictor.services.sessions`),
trains it with the ML core while a heartbeat thread keeps the row alive and
watches for a cancel request, saves the artifact (:mod:`predictor.services.artifacts`)
and records the outcome. Where it runs (here, or on a Celery worker) is decided by
:mod:`predictor.services.runs`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd
from django.conf import settings
from django.utils import timezone

from predictor.ml.config import TrainConfig
from predictor.ml.splits import PART_NAMES
from predictor.models import SessionStatus, TrainingSession
from predictor.selectors.candles import session_frames
from predictor.services.artifacts import artifacts_save, session_bundle
from predictor.services.sessions import (
    Heartbeat,
    TrainingError,
    error_text,
    session_claim,
    session_finish,
    session_reap,
)

logger = logging.getLogger(__name__)

EpochFn = Callable[[int, int, dict[str, float]], None]


def one_or_many(frames: dict[str, pd.DataFrame]) -> Any:
    """The ML core takes one market as a bare frame, several as ``{symbol: frame}``."""
    return frames if len(frames) > 1 else next(iter(frames.values()))


def _epoch_updater(session: TrainingSession, echo: EpochFn | None) -> EpochFn:
    started = time.monotonic()
    history: list[dict[str, float]] = []

    def on_epoch(epoch: int, total: int, logs: dict[str, float]) -> None:
        history.append({"epoch": float(epoch), **logs})
        elapsed = time.monotonic() - started
        eta = elapsed / epoch * (total - epoch) if epoch else None
        TrainingSession.objects.filter(pk=session.pk).update(
            epoch=epoch,
            epochs=total,
            loss=logs.get("loss"),
            val_loss=logs.get("val_loss"),
            eta_seconds=eta,
            history=list(history),
            heartbeat=timezone.now(),
        )
        if echo is not None:
            echo(epoch, total, logs)

    return on_epoch


def session_run(
    session_id: Any,
    *,
    task_id: str = "",
    on_epoch: EpochFn | None = None,
    callbacks: Sequence[Any] = (),
) -> TrainingSession:
    """Claim a queued session and train it here, in this process; returns the final row.

    A session that is not queued (already claimed by another worker, cancelled,
    finished) is returned unchanged: a redelivered message is harmless.
    """
    session = session_claim(str(session_id), task_id=task_id)
    if session is None:
        current = TrainingSession.objects.filter(pk=session_id).first()
        if current is None:
            raise TrainingError(f"no training session {session_id}")
        if current.status == SessionStatus.RUNNING:
            session_reap(current)  # a dead run left behind: fail it now, not at the next reap
            current.refresh_from_db()
        return current
    heartbeat = Heartbeat(session.pk, settings.TRAINING_HEARTBEAT_SECONDS)
    heartbeat.start()
    try:
        _train(session, heartbeat, on_epoch, callbacks)
    except Exception as exc:
        logger.exception("training session %s failed", session.pk)
        session_finish(session, SessionStatus.FAILED, error=error_text(exc))
    except KeyboardInterrupt:
        session_finish(session, SessionStatus.CANCELLED, error="interrupted (Ctrl-C)")
        raise
    finally:
        heartbeat.stop()
    session.refresh_from_db()
    return session


def _train(
    session: TrainingSession,
    heartbeat: Heartbeat,
    echo: EpochFn | None,
    callbacks: Sequence[Any],
) -> None:
    from predictor.ml.training import train_pipeline  # Keras: imported only when training

    config = TrainConfig.from_dict(session.config)
    continue_from = session_bundle(session.parent) if session.parent is not None else None
    frames = session_frames(session, session.requested_start, session.requested_end)
    bundle = train_pipeline(
        one_or_many(frames),
        config,
        on_epoch=_epoch_updater(session, echo),
        should_stop=heartbeat.cancel.is_set,
        continue_from=continue_from,
        callbacks=callbacks,
    )
    # Training is over: no more cancel polling, and the final writes need no lock contention.
    heartbeat.stop()
    fit = bundle.fit
    prep = bundle.prepared
    samples = (
        {name: len(getattr(prep.split, name)) for name in PART_NAMES} if prep is not None else {}
    )
    common: dict[str, Any] = {
        "data_start": bundle.data_start.to_pydatetime(),
        "data_end": bundle.data_end.to_pydatetime(),
        "data_hash": bundle.data_hash,
        "split": bundle.split,
        "samples": samples,
        "backend": bundle.backend,
        "versions": bundle.versions,
        "device": _device(),
        "history": [{"epoch": float(i + 1), **h} for i, h in enumerate(bundle.history)],
        "samples_per_second": fit.samples_per_second if fit else None,
    }
    if fit is not None and fit.cancelled:
        session_finish(session, SessionStatus.CANCELLED, error="cancelled while training", **common)
        return
    manifest = artifacts_save(session, bundle)
    session_finish(session, SessionStatus.SUCCEEDED, manifest=manifest, **common)


def _device() -> str:
    import keras

    gpus = keras.distribution.list_devices("gpu")
    return gpus[0] if gpus else "cpu"
