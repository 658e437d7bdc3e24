"""A training session's row and its state changes: create, claim, finish, cancel, reset, reap.

The row is the single source of truth about a run. Its life:

``queued`` → (a worker or the command *claims* it: one atomic UPDATE, so a
redelivered Celery message never starts a second run) → ``running`` →
``succeeded`` | ``failed`` | ``cancelled``.

While it runs, a :class:`Heartbeat` thread stamps ``heartbeat`` every
``TRAINING_HEARTBEAT_SECONDS`` and polls ``cancel_requested``; the training loop
checks that flag after every batch. If the process dies (SIGKILL, OOM), the
heartbeat stops, and :func:`sessions_reap` (beat, every ``TRAINING_REAP_SECONDS``)
marks the session failed once it has been silent for ``TRAINING_STALE_SECONDS``.

This module changes rows only; what runs a session and where is
:mod:`predictor.services.runs`' business.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import traceback
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from predictor.ml.config import ConfigError, TrainConfig
from predictor.ml.intervals import parse_interval
from predictor.models import Market, SessionMode, SessionStatus, TrainingSession
from predictor.selectors.candles import market_get, stored_intervals
from predictor.services.notify import session_end_notify

logger = logging.getLogger(__name__)


class TrainingError(Exception):
    """A session cannot be created or run; the message says why, ``field`` what to change.

    ``field`` is a request field (``symbols``, ``exchange``, ``start``, ``end``,
    ``period`` for the two together, ``parent``) or a
    :class:`TrainConfig` field, as :class:`ConfigError`'s is; ``None`` when no one
    field is to blame.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field

    @classmethod
    def from_config(cls, exc: ConfigError) -> TrainingError:
        return cls(str(exc).removeprefix(f"{exc.field}: "), field=exc.field)


# --- Creating ----------------------------------------------------------------------------------


def _markets(symbols: Sequence[str], exchange: str | None) -> list[Market]:
    found: list[Market] = []
    for symbol in symbols:
        try:
            found.append(market_get(symbol, exchange))
        except Market.DoesNotExist:
            where = f" on {exchange}" if exchange else ""
            raise TrainingError(
                f"no market {symbol.upper()}{where}; import its candles first", field="symbols"
            ) from None
        except Market.MultipleObjectsReturned:
            raise TrainingError(
                f"{symbol.upper()} is on several exchanges; name one with --exchange",
                field="exchange",
            ) from None
    exchanges = {m.exchange for m in found}
    if len(exchanges) > 1:
        raise TrainingError(
            f"the markets are on different exchanges: {sorted(exchanges)}", field="symbols"
        )
    return found


def continuation_check(parent: TrainingSession, symbols: Sequence[str]) -> None:
    """Refuse a parent whose model cannot be continued on ``symbols``."""
    if not parent.has_model:
        raise TrainingError(
            f"session {parent.id} is {parent.status}; it has no trained model to continue",
            field="parent",
        )
    if not TrainConfig.from_dict(parent.config).is_network:
        raise TrainingError(
            f"session {parent.id} is a baseline; only networks continue", field="parent"
        )
    names = [s.upper() for s in symbols]
    if parent.symbols != names:
        raise TrainingError(
            f"session {parent.id} was trained on {parent.symbols}, not {names}", field="parent"
        )


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
    ``parent`` the session continues that session's model on the candles after
    its data end; the parent must have succeeded.
    """
    if not symbols:
        raise TrainingError("name at least one market", field="symbols")
    markets = _markets(symbols, exchange)
    names = tuple(m.symbol for m in markets)
    try:
        config = replace(config, markets=names)
    except ConfigError as exc:
        raise TrainingError.from_config(exc) from exc
    if start is not None and end is not None and start >= end:
        raise TrainingError(
            f"start {start.isoformat()} is not before end {end.isoformat()}", field="period"
        )
    if parent is not None:
        continuation_check(parent, names)
        if parent.data_end:
            start = parent.data_end + dt.timedelta(seconds=parse_interval(config.interval).seconds)
    for market in markets:
        if not stored_intervals(market):
            raise TrainingError(f"no candles stored for {market}", field="symbols")
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


# --- State changes ------------------------------------------------------------------------------


def session_cancel(session: TrainingSession) -> TrainingSession:
    """A queued session is cancelled at once; a running one stops after its current batch."""
    now = timezone.now()
    updated = TrainingSession.objects.filter(pk=session.pk, status=SessionStatus.QUEUED).update(
        status=SessionStatus.CANCELLED,
        cancel_requested=True,
        finished=now,
        error="cancelled before it started",
    )
    if updated:
        session_end_notify(session.pk)
    else:
        TrainingSession.objects.filter(pk=session.pk, status=SessionStatus.RUNNING).update(
            cancel_requested=True
        )
    session.refresh_from_db()
    return session


def session_reset(session: TrainingSession) -> TrainingSession:
    """A failed or cancelled session back to ``queued`` with no progress or history."""
    if session.status not in (SessionStatus.FAILED, SessionStatus.CANCELLED):
        raise TrainingError(
            f"session {session.id} is {session.status}; only failed or cancelled ones retry"
        )
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
    return session


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


def session_finish(
    session: TrainingSession, status: str, *, error: str = "", **fields: Any
) -> None:
    """``running`` → ``status``; a row no longer running (reaped meanwhile) is left alone."""
    updated = TrainingSession.objects.filter(pk=session.pk, status=SessionStatus.RUNNING).update(
        status=status, error=error, finished=timezone.now(), eta_seconds=None, **fields
    )
    if updated:
        session_end_notify(session.pk)


def error_text(exc: BaseException) -> str:
    """What a failed session's ``error`` says: the message, with a traceback tail if unexpected."""
    if isinstance(exc, TrainingError | ConfigError | ValueError):  # ArtifactError is a ValueError
        return f"{type(exc).__name__}: {exc}"
    tail = "".join(traceback.format_exception(exc)[-3:])
    return f"{type(exc).__name__}: {exc}\n{tail}"[:4000]


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


# --- Reaping dead runs --------------------------------------------------------------------------


def session_reap(session: TrainingSession, stale_after: float | None = None) -> bool:
    """Fail ``session`` if it runs with a heartbeat older than ``stale_after`` seconds."""
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
    if updated:
        session_end_notify(session.pk)
    return bool(updated)


def sessions_reap(stale_after: float | None = None) -> list[TrainingSession]:
    """Mark running sessions whose heartbeat went silent as failed; returns them."""
    stale = stale_after if stale_after is not None else settings.TRAINING_STALE_SECONDS
    cutoff = timezone.now() - dt.timedelta(seconds=stale)
    reaped = []
    for session in TrainingSession.objects.filter(
        status=SessionStatus.RUNNING, heartbeat__lt=cutoff
    ):
        if session_reap(session, stale):
            session.refresh_from_db()
            reaped.append(session)
    return reaped
