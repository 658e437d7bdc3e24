"""Hyper-parameter sweeps: a :class:`Sweep` row, its trials, and their life on the workers.

A sweep is a base request (what :class:`runs.RunRequest` holds), a search space
(:mod:`sweep_space`) and an objective measured on the validation split only
(:mod:`sweep_objective`). Every trial is an ordinary evaluation
:class:`TrainingSession` linked to the sweep with its ``trial_number``; it trains
through the same claim as any session, so a redelivered message trains nothing.

Grid and random sweeps store every trial at once and send them as one Celery group
on the training queue: N workers run N trials at a time. A TPE sweep keeps
``parallel`` trials in flight and asks Optuna for the next ones from the finished
trials each time one ends (:func:`sweep_advance`, under a row lock on the sweep, so
two trials ending together never overfill it).

When no trial is left to run, the winner is the best objective on validation (ties:
the lower trial number), and its test split — and only its test split — is evaluated,
once. The other trials' test windows are never forecast.

Cancel stops the queued trials at once and the running ones after their current
batch; resume retries the failed and cancelled trials, sends the queued ones again
(their claim makes a duplicate harmless) and carries on where the sweep stopped.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from predictor.ml.config import TrainConfig
from predictor.models import SessionStatus, Sweep, TrainingSession
from predictor.services.errors import EvaluationError
from predictor.services.runs import RunRequest, run_config, run_retry
from predictor.services.sessions import TrainingError, error_text, session_cancel, session_create
from predictor.services.sweep_objective import OBJECTIVES, objective_check, trial_objective
from predictor.services.sweep_space import (
    MAX_TRIALS,
    Params,
    Space,
    first_params,
    space_check,
    space_normalise,
    tpe_ask,
    trial_request,
)
from predictor.services.training import session_run

logger = logging.getLogger(__name__)
TrialFn = Callable[[TrainingSession], None]
MAX_PARALLEL = 64


@dataclass(frozen=True)
class SweepRequest:
    """What a user asks for: the base run, the space, how to search it and what to optimise."""

    base: RunRequest
    space: Mapping[str, Any]
    method: str = "grid"
    n_trials: int = 0  # random and tpe; a grid runs every combination
    parallel: int = 1  # tpe: trials in flight at once
    objective: str = "val_loss"
    seed: int = 0
    name: str = ""


# --- Creating ----------------------------------------------------------------------------------


def _base_json(base: RunRequest) -> dict[str, Any]:
    def iso(value: dt.datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "given": dict(base.given),
        "symbols": [s.upper() for s in base.symbols],
        "exchange": base.exchange,
        "start": iso(base.start),
        "end": iso(base.end),
    }


def sweep_base(sweep: Sweep) -> RunRequest:
    """The stored base request, as the trials were made from it."""
    data = sweep.base

    def when(value: str | None) -> dt.datetime | None:
        return dt.datetime.fromisoformat(value) if value else None

    return RunRequest(
        given=dict(data.get("given") or {}),
        symbols=list(data.get("symbols") or []),
        exchange=data.get("exchange"),
        start=when(data.get("start")),
        end=when(data.get("end")),
    )


def _check(request: SweepRequest) -> tuple[Space, list[Params], int]:
    """The normalised space, the trials to store now, and the sweep's trial count."""
    if not request.base.symbols:
        raise TrainingError("name at least one market", field="symbols")
    if not 1 <= request.parallel <= MAX_PARALLEL:
        raise TrainingError(
            f"parallel: give 1…{MAX_PARALLEL}, got {request.parallel}", field="parallel"
        )
    space = space_normalise(request.space)
    planned = space_check(request.base, space, request.method, request.n_trials, request.seed)
    probe = planned[0] if planned else first_params(space)
    try:
        objective_check(request.objective, run_config(trial_request(request.base, probe)))
    except EvaluationError as exc:
        raise TrainingError(str(exc), field="objective") from exc
    n_trials = len(planned) if request.method == "grid" else request.n_trials
    return space, planned, n_trials


def _trial_create(sweep: Sweep, number: int, params: Params, user: Any) -> TrainingSession:
    base = sweep_base(sweep)
    request = trial_request(base, params)
    session = session_create(
        run_config(request),
        symbols=request.symbols,
        exchange=request.exchange,
        start=request.start,
        end=request.end,
        user=user,
    )
    TrainingSession.objects.filter(pk=session.pk).update(sweep=sweep, trial_number=number)
    session.sweep, session.trial_number = sweep, number
    return session


def sweep_create(request: SweepRequest, *, user: Any = None) -> Sweep:
    """Check the whole request, then store the sweep and its first trials (all of a grid's)."""
    space, planned, n_trials = _check(request)
    owner = user if getattr(user, "is_authenticated", False) else None
    with transaction.atomic():
        sweep = Sweep.objects.create(
            name=request.name[:120],
            created_by=owner,
            base=_base_json(request.base),
            space=space,
            method=request.method,
            n_trials=n_trials,
            parallel=request.parallel,
            objective=request.objective,
            seed=request.seed,
        )
        if request.method == "tpe":
            first = min(request.parallel, n_trials)
            planned = tpe_ask(space, [], minimise=_minimise(sweep), seed=sweep.seed, n=first)
        for number, params in enumerate(planned):
            _trial_create(sweep, number, params, owner)
    return sweep


def _minimise(sweep: Sweep) -> bool:
    return OBJECTIVES[sweep.objective]


# --- Running -----------------------------------------------------------------------------------


def _send(sessions: list[TrainingSession]) -> None:
    """One Celery group on the training queue, sent once the rows are committed."""
    if not sessions:
        return
    ids = [str(s.pk) for s in sessions]

    def send() -> None:
        from celery import group, signature

        group(
            signature("predictor.tasks.sweep_trial", args=[pk], queue="training") for pk in ids
        ).apply_async()

    transaction.on_commit(send)


def _unscored() -> Q:
    """Trained, but its objective neither stored nor refused yet (its task is scoring it,
    or its worker died in between): the sweep must wait for it, not finish without it."""
    return Q(status=SessionStatus.SUCCEEDED, objective_value__isnull=True, error="")


def _pending(trial: TrainingSession) -> bool:
    return trial.status in TrainingSession.ACTIVE or (
        trial.status == SessionStatus.SUCCEEDED
        and trial.objective_value is None
        and not trial.error
    )


def sweep_queue(sweep: Sweep) -> Sweep:
    """Send every queued (or trained but unscored) trial to the training workers."""
    waiting = sweep.trials.filter(Q(status=SessionStatus.QUEUED) | _unscored())
    _send(list(waiting.order_by("trial_number")))
    return sweep


def trial_objective_store(session: TrainingSession) -> float | None:
    """Score a succeeded trial on its validation split and store the value (once)."""
    if session.sweep_id is None or session.status != SessionStatus.SUCCEEDED:
        return None
    if session.objective_value is not None:
        return session.objective_value
    sweep = Sweep.objects.get(pk=session.sweep_id)
    try:
        value = trial_objective(session, sweep.objective)
    except EvaluationError as exc:
        TrainingSession.objects.filter(pk=session.pk).update(
            error=f"objective {sweep.objective}: {exc}"
        )
        return None
    TrainingSession.objects.filter(pk=session.pk).update(objective_value=value)
    return value


def sweep_trial_run(session_id: Any, *, task_id: str = "", queue: bool = True) -> TrainingSession:
    """Train one trial (if still queued), score it on validation, and move its sweep on."""
    session = session_run(session_id, task_id=task_id)
    trial_objective_store(session)
    if session.sweep_id is not None:
        sweep_advance(session.sweep_id, queue=queue)
    session.refresh_from_db()
    return session


def _finished_history(sweep: Sweep, trials: list[TrainingSession]) -> list[tuple[Params, Any]]:
    history = []
    for trial in trials:
        if _pending(trial):
            continue
        params = {key: trial.config.get(key) for key in sweep.space}
        history.append((params, trial.objective_value))
    return history


def sweep_advance(sweep_id: Any, *, queue: bool = True) -> Sweep:
    """After a trial ended: start TPE's next trials, or finish the sweep when none is left."""
    new: list[TrainingSession] = []
    with transaction.atomic():
        sweep = Sweep.objects.select_for_update().get(pk=sweep_id)
        if sweep.status not in Sweep.ACTIVE:
            return sweep
        trials = list(sweep.trials.order_by("trial_number"))
        active = [t for t in trials if _pending(t)]
        if sweep.method == "tpe" and len(trials) < sweep.n_trials:
            room = min(sweep.parallel - len(active), sweep.n_trials - len(trials))
            if room > 0:
                asked = tpe_ask(
                    sweep.space,
                    _finished_history(sweep, trials),
                    minimise=_minimise(sweep),
                    seed=sweep.seed + len(trials),
                    n=room,
                )
                try:
                    new = [
                        _trial_create(sweep, len(trials) + i, params, sweep.created_by)
                        for i, params in enumerate(asked)
                    ]
                except TrainingError as exc:  # e.g. the candles were deleted meanwhile
                    Sweep.objects.filter(pk=sweep.pk).update(
                        status=SessionStatus.FAILED,
                        finished=timezone.now(),
                        error=f"the next trial cannot start: {exc}",
                    )
                    return Sweep.objects.get(pk=sweep.pk)
        if active or new:
            Sweep.objects.filter(pk=sweep.pk, status=SessionStatus.QUEUED).update(
                status=SessionStatus.RUNNING
            )
            if queue:
                _send(new)
            return Sweep.objects.get(pk=sweep.pk)
        winner = _winner(sweep, trials)
        if winner is None:
            reasons = "; ".join(
                f"trial {t.trial_number}: {(t.error or t.status)[:200]}" for t in trials
            )
            Sweep.objects.filter(pk=sweep.pk).update(
                status=SessionStatus.FAILED,
                finished=timezone.now(),
                error=f"no trial has a validation objective: {reasons}"[:4000],
            )
            return Sweep.objects.get(pk=sweep.pk)
        # Claimed once: a second trial ending now finds the winner named and leaves it to us.
        claimed = Sweep.objects.filter(pk=sweep.pk, winner__isnull=True).update(winner=winner)
        if not claimed:
            return Sweep.objects.get(pk=sweep.pk)
    # Outside the lock: the winner's test split, evaluated once (forecasting it is the slow
    # part). The sweep succeeds only when its test report exists.
    from predictor.services.evaluation import session_evaluate  # Keras: where it runs

    try:
        session_evaluate(winner)
    except Exception as exc:
        logger.exception("sweep %s: evaluating the winner failed", sweep_id)
        Sweep.objects.filter(pk=sweep_id, status__in=Sweep.ACTIVE).update(
            status=SessionStatus.FAILED,
            finished=timezone.now(),
            error=f"evaluating the winner: {error_text(exc)}",
        )
    else:
        Sweep.objects.filter(pk=sweep_id, status__in=Sweep.ACTIVE).update(
            status=SessionStatus.SUCCEEDED, finished=timezone.now(), error=""
        )
    return Sweep.objects.get(pk=sweep_id)


def _winner(sweep: Sweep, trials: list[TrainingSession]) -> TrainingSession | None:
    scored = [
        t for t in trials if t.status == SessionStatus.SUCCEEDED and t.objective_value is not None
    ]
    if not scored:
        return None
    sign = 1.0 if _minimise(sweep) else -1.0
    return min(scored, key=lambda t: (sign * float(t.objective_value or 0.0), t.trial_number))


def sweep_run_here(sweep: Sweep, *, on_trial: TrialFn | None = None) -> Sweep:
    """Run every trial in this process, in trial order, until the sweep ends."""
    while True:
        sweep.refresh_from_db()
        if sweep.status not in Sweep.ACTIVE:
            return sweep
        waiting = sweep.trials.filter(Q(status=SessionStatus.QUEUED) | _unscored())
        queued = waiting.order_by("trial_number").first()
        if queued is None:
            return sweep_advance(sweep.pk, queue=False)
        trial = sweep_trial_run(queued.pk, queue=False)
        if on_trial is not None:
            on_trial(trial)


# --- Cancel and resume ---------------------------------------------------------------------------


def sweep_cancel(sweep: Sweep) -> Sweep:
    """Queued trials are cancelled at once, running ones after their current batch."""
    with transaction.atomic():
        ended = Sweep.objects.filter(pk=sweep.pk, status__in=Sweep.ACTIVE).update(
            status=SessionStatus.CANCELLED, finished=timezone.now(), error="cancelled"
        )
    if not ended:
        sweep.refresh_from_db()
        raise TrainingError(f"sweep {sweep.id} is {sweep.status}; only a running one cancels")
    for trial in sweep.trials.filter(status__in=TrainingSession.ACTIVE):
        session_cancel(trial)
    sweep.refresh_from_db()
    return sweep


def sweep_resume(sweep: Sweep, *, queue: bool = True) -> Sweep:
    """Carry on a sweep that did not succeed: failed and cancelled trials start again."""
    if sweep.status == SessionStatus.SUCCEEDED:
        raise TrainingError(f"sweep {sweep.id} has succeeded; there is nothing to resume")
    with transaction.atomic():
        locked = Sweep.objects.select_for_update().get(pk=sweep.pk)
        for trial in locked.trials.filter(
            status__in=(SessionStatus.FAILED, SessionStatus.CANCELLED)
        ):
            run_retry(trial, queue=False)
        Sweep.objects.filter(pk=sweep.pk).update(
            status=SessionStatus.RUNNING, finished=None, error="", winner=None
        )
        if queue:
            sweep_queue(locked)
    sweep.refresh_from_db()
    if not sweep.trials.filter(Q(status__in=TrainingSession.ACTIVE) | _unscored()).exists():
        # Every trial had ended (a TPE sweep with trials still to ask, or the winner's
        # evaluation failed): the next step is the sweep's own.
        return sweep_advance(sweep.pk, queue=queue)
    return sweep


# --- Reading ---------------------------------------------------------------------------------------


def sweep_progress(sweep: Sweep, trials: list[TrainingSession] | None = None) -> dict[str, Any]:
    """Counts by status, the best objective so far and its trial: what the pages poll.

    ``trials``: the sweep's trials when the caller has read them already."""
    trials = list(sweep.trials.all()) if trials is None else trials
    counts = {status: 0 for status in SessionStatus.values}
    for trial in trials:
        counts[trial.status] += 1
    best = _winner(sweep, trials)
    return {
        "planned": sweep.n_trials,
        "created": len(trials),
        "counts": counts,
        "done": sum(counts[s] for s in TrainingSession.FINISHED),
        "best_trial": best.trial_number if best is not None else None,
        "best_session": str(best.pk) if best is not None else None,
        "best_value": best.objective_value if best is not None else None,
    }


def trial_params(sweep: Sweep, trial: TrainingSession) -> Params:
    """The values this trial tried, for the fields the sweep varies."""
    config = TrainConfig.from_dict(trial.config).to_dict()
    return {key: config.get(key) for key in sweep.space}


__all__ = [
    "MAX_TRIALS",
    "SweepRequest",
    "sweep_advance",
    "sweep_base",
    "sweep_cancel",
    "sweep_create",
    "sweep_progress",
    "sweep_queue",
    "sweep_resume",
    "sweep_run_here",
    "sweep_trial_run",
    "trial_params",
]
