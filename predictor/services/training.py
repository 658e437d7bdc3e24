"""Training sessions: create, queue, run, cancel, retry, reap, and load their artifacts.

A session row is the single source of truth about a run. Its life:

``queued`` → (a worker or the command *claims* it: one atomic UPDATE, so a
redelivered Celery message never starts a second run) → ``running`` →
``succeeded`` | ``failed`` | ``cancelled``.

While it runs, a heartbeat thread stamps ``heartbeat`` every
``TRAINING_HEARTBEAT_SECONDS`` and polls ``cancel_requested``; the training loop
checks that flag after every batch. If the process dies (SIGKILL, OOM), the
heartbeat stops, and :func:`sessions_reap` (beat, every
``TRAINING_REAP_SECONDS``) marks the session failed once it has been silent for
``TRAINING_STALE_SECONDS``. :func:`session_retry` starts a failed or cancelled
session again from scratch.

Artifacts go through Django's storage API (``STORAGES["model_weights"]`` and
``["scalers"]``): ``<id>.keras``, ``<id>.manifest.json`` and the scaler
``<id>.json``, the manifest written last.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import pandas as pd
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from predictor.ml.candles import OHLCV_FIELDS
from predictor.ml.config import ConfigError, TrainConfig
from predictor.ml.intervals import parse_interval
from predictor.models import Market, SessionMode, SessionStatus, TrainingSession
from predictor.selectors import candles_frame, stored_intervals

logger = logging.getLogger(__name__)

EpochFn = Callable[[int, int, dict[str, float]], None]


class TrainingError(Exception):
    """A session cannot be created or run; the message says why."""


# --- Creating and queueing ----------------------------------------------------------------


def _markets(symbols: Sequence[str], exchange: str | None) -> list[Market]:
    found: list[Market] = []
    for symbol in symbols:
        markets = Market.objects.filter(symbol=symbol.upper())
        if exchange:
            markets = markets.filter(exchange=exchange)
        hits = list(markets[:2])
        if not hits:
            where = f" on {exchange}" if exchange else ""
            raise TrainingError(f"no market {symbol.upper()}{where}; import its candles first")
        if len(hits) > 1:
            raise TrainingError(
                f"{symbol.upper()} is on several exchanges; name one with --exchange"
            )
        found.append(hits[0])
    exchanges = {m.exchange for m in found}
    if len(exchanges) > 1:
        raise TrainingError(f"the markets are on different exchanges: {sorted(exchanges)}")
    return found


def session_create(
    config: TrainConfig,
    *,
    symbols: Sequence[str],
    exchange: str | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    parent: TrainingSession | None = None,
    user: Any = None,
    mode: str | None = None,
) -> TrainingSession:
    """Check the request against the database and store a ``queued`` session.

    ``config.markets`` is set to ``symbols`` (upper-cased, in order). With
    ``parent`` (the ``-X`` flag) the session continues that session's model on
    the candles after its data end; the parent must have succeeded.
    """
    if not symbols:
        raise TrainingError("name at least one market")
    markets = _markets(symbols, exchange)
    names = tuple(m.symbol for m in markets)
    try:
        config = replace(config, markets=names)
    except ConfigError as exc:
        raise TrainingError(str(exc)) from exc
    if start is not None and end is not None and start >= end:
        raise TrainingError(f"start {start.isoformat()} is not before end {end.isoformat()}")
    if parent is not None:
        if not parent.has_model:
            raise TrainingError(f"session {parent.id} has no trained model to continue")
        if not TrainConfig.from_dict(parent.config).is_network:
            raise TrainingError(f"session {parent.id} is a baseline; only networks continue")
        if parent.symbols != list(names):
            raise TrainingError(
                f"session {parent.id} was trained on {parent.symbols}, not {list(names)}"
            )
        start = (
            parent.data_end + dt.timedelta(seconds=parse_interval(config.interval).seconds)
            if parent.data_end
            else start
        )
    for market in markets:
        if not stored_intervals(market):
            raise TrainingError(f"no candles stored for {market}")
    if mode is None:
        mode = SessionMode.EVALUATION if config.evaluation else SessionMode.PRODUCTION
    with transaction.atomic():
        session = TrainingSession.objects.create(
            mode=mode,
            config=config.to_dict(),
            arch=config.arch,
            target=config.target,
            interval=config.interval,
            exchange=markets[0].exchange,
            symbols=list(names),
            requested_start=start,
            requested_end=end,
            seed=config.seed,
            parent=parent,
            created_by=user if getattr(user, "is_authenticated", False) else None,
            epochs=config.epochs if config.is_network else 0,
        )
        session.markets.set(markets)
    return session


def session_queue(session: TrainingSession) -> TrainingSession:
    """Send the session to the ``training`` queue; the task id is kept on the row."""
    from celery import current_app

    # Commit first: a worker must find the row when the message arrives. By name:
    # tasks import services, never the other way round.
    def send() -> None:
        # Registered by the app's ready(); apply_async honours CELERY_TASK_ALWAYS_EAGER.
        task = current_app.tasks["predictor.tasks.train"]
        result = task.apply_async(args=[str(session.id)], queue="training")
        TrainingSession.objects.filter(pk=session.pk).update(celery_task_id=result.id or "")

    transaction.on_commit(send)
    return session


def session_cancel(session: TrainingSession) -> TrainingSession:
    """A queued session is cancelled at once; a running one stops after its current batch."""
    now = timezone.now()
    updated = TrainingSession.objects.filter(pk=session.pk, status=SessionStatus.QUEUED).update(
        status=SessionStatus.CANCELLED,
        cancel_requested=True,
        finished=now,
        error="cancelled before it started",
    )
    if not updated:
        TrainingSession.objects.filter(pk=session.pk, status=SessionStatus.RUNNING).update(
            cancel_requested=True
        )
    session.refresh_from_db()
    return session


def session_retry(session: TrainingSession, *, queue: bool = True) -> TrainingSession:
    """Start a failed or cancelled session again, from nothing: progress, history, artifacts."""
    if session.status not in (SessionStatus.FAILED, SessionStatus.CANCELLED):
        raise TrainingError(
            f"session {session.id} is {session.status}; only failed or cancelled ones retry"
        )
    _delete_artifacts(session)
    updated = TrainingSession.objects.filter(pk=session.pk, status=session.status).update(
        status=SessionStatus.QUEUED,
        cancel_requested=False,
        error="",
        epoch=0,
        loss=None,
        val_loss=None,
        eta_seconds=None,
        history=[],
        manifest={},
        heartbeat=None,
        worker="",
        started=None,
        finished=None,
        samples_per_second=None,
    )
    if not updated:
        raise TrainingError(f"session {session.id} changed while retrying; try again")
    session.refresh_from_db()
    if session.mode == SessionMode.WALK_FORWARD:
        from predictor.services.walkforward import walk_forward_queue, walk_forward_reset

        session = walk_forward_reset(session)
        if queue:
            walk_forward_queue(session)
        return session
    if queue:
        session_queue(session)
    return session


# --- Running ---------------------------------------------------------------------------------


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def session_claim(session_id: str, *, task_id: str = "") -> TrainingSession | None:
    """``queued`` → ``running`` in one UPDATE; ``None`` when it is not queued any more."""
    now = timezone.now()
    claimed = TrainingSession.objects.filter(pk=session_id, status=SessionStatus.QUEUED).update(
        status=SessionStatus.RUNNING,
        started=now,
        heartbeat=now,
        worker=_worker_name(),
        attempts=F("attempts") + 1,
        **({"celery_task_id": task_id} if task_id else {}),
    )
    if not claimed:
        return None
    return TrainingSession.objects.get(pk=session_id)


class Heartbeat(threading.Thread):
    """Stamps the session's heartbeat and watches for a cancel request, on its own connection."""

    def __init__(self, session_id: Any, interval: float) -> None:
        super().__init__(name=f"heartbeat-{session_id}", daemon=True)
        self.session_id = session_id
        self.interval = interval
        self.cancel = threading.Event()
        self._done = threading.Event()

    def run(self) -> None:
        try:
            while not self._done.wait(self.interval):
                self.beat()
        finally:
            connection.close()

    def beat(self) -> None:
        try:
            TrainingSession.objects.filter(pk=self.session_id, status=SessionStatus.RUNNING).update(
                heartbeat=timezone.now()
            )
            flag = (
                TrainingSession.objects.filter(pk=self.session_id)
                .values_list("cancel_requested", flat=True)
                .first()
            )
            if flag:
                self.cancel.set()
        except Exception:  # a lost connection must not kill training; the next beat retries
            logger.warning("heartbeat for session %s failed", self.session_id, exc_info=True)
            connection.close()

    def stop(self) -> None:
        self._done.set()
        if self.is_alive():
            self.join(timeout=self.interval + 5)


def session_frames(
    session: TrainingSession,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> dict[str, pd.DataFrame]:
    """The session's markets' candles in [start, end], at its interval, keyed by symbol."""
    by_symbol = {m.symbol: m for m in session.markets.all()}
    interval = parse_interval(session.interval)
    # The end is inclusive for users (-E 2024-01-31 means that day too); the selector's is not.
    stop = end + dt.timedelta(seconds=interval.seconds) if end is not None else None
    frames: dict[str, pd.DataFrame] = {}
    for symbol in session.symbols:
        finest = stored_intervals(by_symbol[symbol])
        if not finest or finest[0].seconds > interval.seconds:
            raise TrainingError(
                f"{symbol}: stored candles are {finest[0].code if finest else 'none'}, "
                f"coarser than the session's interval {interval.code}"
            )
        frame = candles_frame(by_symbol[symbol], start, stop, interval=interval)
        frame = frame[list(OHLCV_FIELDS)]
        if frame.empty:
            raise TrainingError(f"{symbol}: no candles between {start} and {end}")
        frames[symbol] = frame
    return frames


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
            _reap_one(current)  # a dead run left behind: fail it now rather than at the next reap
            current.refresh_from_db()
        return current
    heartbeat = Heartbeat(session.pk, settings.TRAINING_HEARTBEAT_SECONDS)
    heartbeat.start()
    try:
        _train(session, heartbeat, on_epoch, callbacks)
    except Exception as exc:
        logger.exception("training session %s failed", session.pk)
        _finish(session, SessionStatus.FAILED, error=error_text(exc))
    except KeyboardInterrupt:
        _finish(session, SessionStatus.CANCELLED, error="interrupted (Ctrl-C)")
        raise
    finally:
        heartbeat.stop()
    session.refresh_from_db()
    return session


def error_text(exc: BaseException) -> str:
    if isinstance(exc, TrainingError | ConfigError | ValueError):  # ArtifactError is a ValueError
        return f"{type(exc).__name__}: {exc}"
    tail = "".join(traceback.format_exception(exc)[-3:])
    return f"{type(exc).__name__}: {exc}\n{tail}"[:4000]


def _finish(session: TrainingSession, status: str, *, error: str = "", **fields: Any) -> None:
    TrainingSession.objects.filter(pk=session.pk, status=SessionStatus.RUNNING).update(
        status=status, error=error, finished=timezone.now(), eta_seconds=None, **fields
    )


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
        frames if len(frames) > 1 else next(iter(frames.values())),
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
        {name: len(getattr(prep.split, name)) for name in ("train", "validation", "test")}
        if prep is not None
        else {}
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
        _finish(session, SessionStatus.CANCELLED, error="cancelled while training", **common)
        return
    manifest = _save_artifacts(session, bundle)
    _finish(session, SessionStatus.SUCCEEDED, manifest=manifest, **common)


def _device() -> str:
    import keras

    gpus = keras.distribution.list_devices("gpu")
    return gpus[0] if gpus else "cpu"


# --- Artifacts ------------------------------------------------------------------------------


def artifact_names(session: TrainingSession | Any) -> tuple[str, str, str]:
    """Storage names of (model, scaler, manifest) for a session or its id."""
    sid = str(getattr(session, "pk", session))
    baseline = False
    if isinstance(session, TrainingSession):
        baseline = not TrainConfig.from_dict(session.config).is_network
    model = f"{sid}.baseline.json" if baseline else f"{sid}.keras"
    return model, f"{sid}.json", f"{sid}.manifest.json"


def _save_artifacts(session: TrainingSession, bundle: Any) -> dict[str, Any]:
    import json

    from predictor.ml.artifacts import bundle_to_bytes  # Keras: imported only when needed

    model_name, scaler_name, manifest_name = artifact_names(session)
    model, scaler, manifest = bundle_to_bytes(bundle, str(session.pk))
    weights, scalers = storages["model_weights"], storages["scalers"]
    weights.save(model_name, ContentFile(model))
    scalers.save(scaler_name, ContentFile(scaler))
    weights.save(manifest_name, ContentFile(manifest))  # last: a manifest means a whole artifact
    result: dict[str, Any] = json.loads(manifest)
    return result


def _delete_artifacts(session: TrainingSession) -> None:
    model_name, scaler_name, manifest_name = artifact_names(session)
    weights, scalers = storages["model_weights"], storages["scalers"]
    weights.delete(manifest_name)  # first: without it the rest is not an artifact
    weights.delete(model_name)
    scalers.delete(scaler_name)


def session_bundle(session: TrainingSession) -> Any:
    """Load a succeeded session's model and scaler; refuses files that are not this session's."""
    import json

    from predictor.ml.artifacts import ArtifactError, bundle_from_bytes

    if not session.has_model:
        raise TrainingError(f"session {session.id} is {session.status}; it has no trained model")
    model_name, scaler_name, manifest_name = artifact_names(session)
    weights, scalers = storages["model_weights"], storages["scalers"]
    try:
        with weights.open(manifest_name) as f:
            manifest = f.read()
        with weights.open(model_name) as f:
            model = f.read()
        with scalers.open(scaler_name) as f:
            scaler = f.read()
    except FileNotFoundError as exc:
        raise ArtifactError(
            f"session {session.id}: artifact file missing ({exc.filename})"
        ) from exc
    bundle = bundle_from_bytes(model, scaler, manifest)
    meta = json.loads(manifest)
    if meta.get("id") != str(session.id):
        raise ArtifactError(f"manifest belongs to session {meta.get('id')}, not {session.id}")
    if bundle.data_hash != session.data_hash:
        raise ArtifactError(
            f"session {session.id}: the model was trained on other data than recorded"
        )
    if bundle.config.to_dict() != TrainConfig.from_dict(session.config).to_dict():
        raise ArtifactError(
            f"session {session.id}: the manifest's config differs from the session's"
        )
    return bundle


# --- Reaping dead runs ----------------------------------------------------------------------


def _reap_one(session: TrainingSession, stale_after: float | None = None) -> bool:
    stale = stale_after if stale_after is not None else settings.TRAINING_STALE_SECONDS
    cutoff = timezone.now() - dt.timedelta(seconds=stale)
    last = session.heartbeat or session.started or session.created
    reason = (
        f"the worker {session.worker or '(unknown)'} stopped: no heartbeat since "
        f"{last.isoformat(timespec='seconds')} (killed or out of memory); "
        "retry the session to start it again"
    )
    updated = TrainingSession.objects.filter(
        pk=session.pk, status=SessionStatus.RUNNING, heartbeat__lt=cutoff
    ).update(status=SessionStatus.FAILED, error=reason, finished=timezone.now(), eta_seconds=None)
    return bool(updated)


def sessions_reap(stale_after: float | None = None) -> list[TrainingSession]:
    """Mark running sessions whose heartbeat went silent as failed; returns them."""
    stale = stale_after if stale_after is not None else settings.TRAINING_STALE_SECONDS
    cutoff = timezone.now() - dt.timedelta(seconds=stale)
    reaped = []
    for session in TrainingSession.objects.filter(
        status=SessionStatus.RUNNING, heartbeat__lt=cutoff
    ):
        if _reap_one(session, stale):
            session.refresh_from_db()
            reaped.append(session)
    return reaped


def evaluation_session_count(market: Market) -> int:
    """Evaluation sessions run on this market so far (the trial count for a deflated Sharpe)."""
    return (
        TrainingSession.objects.filter(markets=market)
        .exclude(mode=SessionMode.PRODUCTION)
        .filter(status=SessionStatus.SUCCEEDED)
        .count()
    )
