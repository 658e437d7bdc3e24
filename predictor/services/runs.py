"""Starting, queueing, retrying and cancelling training runs: the one entry for every adapter.

The ``train_model`` and ``walk_forward`` commands, the web form, the API and
``quickstart`` all come here. A :class:`RunRequest` holds what the user asked for;
:func:`run_config` turns it into a :class:`TrainConfig` with the rules every entry
shares (:meth:`TrainConfig.from_request`: defaults by target, the fields a
continuation keeps, bounds); :func:`run_start` stores the session and, with
``queue``, sends it to the workers by its mode: one ``train`` task, or a chord of
walk-forward folds. :func:`run_here` runs a stored session in this process instead.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from celery import current_app
from django.db import transaction

from predictor.ml.config import ConfigError, TrainConfig
from predictor.models import SessionMode, TrainingSession
from predictor.services.artifacts import artifacts_delete
from predictor.services.sessions import (
    TrainingError,
    continuation_check,
    session_cancel,
    session_create,
    session_reset,
)
from predictor.services.training import EpochFn, session_run

if TYPE_CHECKING:
    from predictor.services.walkforward import FoldFn, WalkForwardSpec

# The walk-forward service is imported where a walk-forward runs: it brings in the
# evaluation and, with it, Keras, which the web (this module's main importer) never needs.


@dataclass(frozen=True)
class RunRequest:
    """A request to train: the config fields the user set, the markets and the period.

    ``given`` holds only what the user chose (``None`` is "not chosen"); the rest
    comes from the defaults, or from ``parent``'s config when it continues that
    session's model on newer candles (then ``symbols`` and ``exchange`` default to
    the parent's, and the start is the parent's data end). With ``walk_forward``
    the session retrains fold by fold instead.
    """

    given: Mapping[str, Any] = field(default_factory=dict)
    symbols: Sequence[str] = ()
    exchange: str | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    parent: TrainingSession | None = None
    walk_forward: WalkForwardSpec | None = None

    def resolved(self) -> RunRequest:
        """The request with a continuation's markets filled in and its rules checked."""
        parent = self.parent
        if parent is None:
            return self
        if self.walk_forward is not None:
            raise TrainingError("a walk-forward session retrains from scratch", field="parent")
        if self.start is not None:
            raise TrainingError(
                "a continuation starts after the continued session's data end", field="start"
            )
        symbols = list(self.symbols) or list(parent.symbols)
        continuation_check(parent, symbols)
        return RunRequest(
            given=self.given,
            symbols=symbols,
            exchange=self.exchange or parent.exchange,
            end=self.end,
            parent=parent,
        )


def run_config(request: RunRequest) -> TrainConfig:
    """The request's config, by the rules every entry shares; errors name the field."""
    given = dict(request.given)
    if request.walk_forward is not None:
        given["evaluation"] = True
    parent = request.parent
    try:
        return TrainConfig.from_request(
            given,
            markets=request.symbols,
            parent=parent.config if parent is not None else None,
            parent_id=str(parent.pk) if parent is not None else "",
        )
    except ConfigError as exc:
        raise TrainingError.from_config(exc) from exc


def run_start(request: RunRequest, *, user: Any = None, queue: bool = True) -> TrainingSession:
    """Store a session for ``request`` and, with ``queue``, send it to the workers."""
    request = request.resolved()
    config = run_config(request)
    where = {
        "symbols": request.symbols,
        "exchange": request.exchange,
        "start": request.start,
        "end": request.end,
        "user": user,
    }
    if request.walk_forward is not None:
        from predictor.services.walkforward import walk_forward_create

        session = walk_forward_create(config, request.walk_forward, **where)
    else:
        session = session_create(config, parent=request.parent, **where)
    if queue:
        run_enqueue(session)
    return session


def _train_queue(session: TrainingSession) -> None:
    # Commit first: a worker must find the row when the message arrives. By name: tasks
    # import services, never the other way round.
    def send() -> None:
        # Registered by the app's ready(); apply_async honours CELERY_TASK_ALWAYS_EAGER.
        task = current_app.tasks["predictor.tasks.train"]
        result = task.apply_async(args=[str(session.id)], queue="training")
        TrainingSession.objects.filter(pk=session.pk).update(celery_task_id=result.id or "")

    transaction.on_commit(send)


def run_enqueue(session: TrainingSession) -> TrainingSession:
    """Send a queued session to the workers the way its mode runs: one task, or the fold chord."""
    if session.mode == SessionMode.WALK_FORWARD:
        from predictor.services.walkforward import walk_forward_queue

        walk_forward_queue(session)
    else:
        _train_queue(session)
    return session


def run_here(
    session: TrainingSession,
    *,
    on_epoch: EpochFn | None = None,
    callbacks: Sequence[Any] = (),
    on_fold: FoldFn | None = None,
) -> TrainingSession:
    """Run a queued session in this process, by its mode; returns the final row."""
    if session.mode == SessionMode.WALK_FORWARD:
        from predictor.services.walkforward import walk_forward_run

        return walk_forward_run(session.pk, on_fold=on_fold)
    return session_run(session.pk, on_epoch=on_epoch, callbacks=callbacks)


def run_retry(session: TrainingSession, *, queue: bool = True) -> TrainingSession:
    """Start a failed or cancelled session again from nothing: progress, artifacts, folds."""
    session = session_reset(session)  # refuses a session that is not failed or cancelled
    artifacts_delete(session)  # after the reset: no row names a manifest whose files are gone
    if session.mode == SessionMode.WALK_FORWARD:
        from predictor.services.walkforward import walk_forward_reset

        session = walk_forward_reset(session)
    if queue:
        run_enqueue(session)
    return session


def run_cancel(session: TrainingSession) -> TrainingSession:
    """A queued session is cancelled at once; a running one after its current batch or fold."""
    return session_cancel(session)
