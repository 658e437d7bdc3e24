"""A session's paper account: θ, horizon, costs and mode frozen when it goes live; stopping.

θ is the session's validation θ from its stored evaluation report, another
evaluation session's (``theta_from``), or given; a production session has no
validation split, so it needs one of the last two. Costs and mode default to
those θ was chosen under.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from predictor.ml.config import TrainConfig
from predictor.ml.evaluation.backtest import DEFAULT_FEE
from predictor.ml.evaluation.engine import MODES, EngineConfig, EngineState, Mode
from predictor.models import (
    EvaluationReport,
    PaperAccount,
    SessionMode,
    SessionStatus,
    TrainingSession,
)
from predictor.services.paper_bars import bar_seconds, last_closed_bar, session_markets, utc


class PaperError(Exception):
    """A session cannot trade on paper as asked; the message says what to do."""


@dataclass(frozen=True)
class PaperRules:
    theta: float
    horizon: int
    fee: float
    slippage: float
    mode: Mode

    @classmethod
    def of(cls, account: PaperAccount) -> PaperRules:
        return cls(account.theta, account.horizon, account.fee, account.slippage, account.mode)  # type: ignore[arg-type]

    @property
    def engine(self) -> EngineConfig:
        return EngineConfig(self.horizon, self.fee, self.slippage, self.mode)


def _threshold_from(source: TrainingSession, config: TrainConfig) -> dict[str, Any]:
    report = EvaluationReport.objects.filter(session=source, split="validation").first()
    threshold = (report.report or {}).get("threshold") if report else None
    if not threshold or threshold.get("theta") is None:
        raise PaperError(
            f"session {source.pk} has no stored validation report with a θ: run "
            f"`python manage.py evaluate -T {source.pk}` first, or pass --theta"
        )
    if TrainConfig.from_dict(source.config).target != config.target:
        raise PaperError(f"session {source.pk} forecasts another target: its θ does not apply")
    if int(threshold.get("horizon", config.effective_horizon)) != config.effective_horizon:
        raise PaperError(f"session {source.pk}'s θ was chosen for another horizon")
    return dict(threshold)


def _frozen_rules(
    session: TrainingSession,
    config: TrainConfig,
    theta: float | None,
    theta_from: TrainingSession | None,
    costs: dict[str, Any],
) -> tuple[PaperRules, str]:
    if theta is not None and theta_from is not None:
        raise PaperError("give --theta or --theta-from, not both")
    chosen: dict[str, Any] = {}
    if theta is not None:
        source = "given"
    else:
        origin = theta_from or (session if session.mode != SessionMode.PRODUCTION else None)
        if origin is None:
            raise PaperError(
                f"session {session.pk} is a production session: it has no validation split "
                "to take θ from; pass --theta X or --theta-from <evaluation session id>"
            )
        chosen = _threshold_from(origin, config)
        source = f"validation report of session {origin.pk}"
    frozen = float(chosen["theta"]) if theta is None else float(theta)

    # Costs and mode default to those θ was chosen under.
    def pick(name: str, default: Any) -> Any:
        given = costs.get(name)
        return given if given is not None else chosen.get(name, default)

    fee, slippage = pick("fee", DEFAULT_FEE), pick("slippage", 0.0)
    mode = pick("mode", "non_overlapping")
    if mode not in MODES:
        raise PaperError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if not (frozen >= 0):
        raise PaperError(f"θ must be >= 0, got {frozen}")
    try:
        rules = PaperRules(frozen, config.effective_horizon, float(fee), float(slippage), mode)
        rules.engine  # noqa: B018 - validates the costs
    except ValueError as exc:
        raise PaperError(str(exc)) from exc
    return rules, source


def fresh_state(session: TrainingSession, first_bar: int) -> dict[str, Any]:
    before = first_bar - bar_seconds(session)
    return {
        m.symbol: {
            "last_bar": before,
            "index": -1,
            "signal": 0,
            "signal_real": False,
            "engine": EngineState().to_dict(),
        }
        for m in session_markets(session)
    }


def paper_start(
    session: TrainingSession,
    *,
    theta: float | None = None,
    theta_from: TrainingSession | None = None,
    fee: float | None = None,
    slippage: float | None = None,
    mode: str | None = None,
) -> PaperAccount:
    """Mark the session live with frozen rules; a stopped account resumes with its own rules.

    Trading starts at the newest closed bar: its close makes the first forecast.
    """
    if session.status != SessionStatus.SUCCEEDED or not session.has_artifact:
        raise PaperError(f"session {session.pk} is {session.status}: it has no trained model")
    config = TrainConfig.from_dict(session.config)
    existing = PaperAccount.objects.filter(session=session).first()
    if existing is not None:
        asked = any(v is not None for v in (theta, theta_from, fee, slippage, mode))
        if asked:
            raise PaperError(
                f"session {session.pk} already has a paper account (θ {existing.theta:g}, "
                f"{existing.mode}); its rules stay frozen: resume it without new ones"
            )
        existing.live, existing.stopped_at = True, None
        existing.save(update_fields=["live", "stopped_at", "updated"])
        return existing
    costs = {"fee": fee, "slippage": slippage, "mode": mode}
    rules, source = _frozen_rules(session, config, theta, theta_from, costs)
    newest = last_closed_bar(session)
    if newest is None:
        raise PaperError(f"session {session.pk}: its markets have no candles to trade on")
    return PaperAccount.objects.create(
        session=session,
        live=True,
        theta=rules.theta,
        theta_source=source[:120],
        horizon=rules.horizon,
        mode=rules.mode,
        fee=rules.fee,
        slippage=rules.slippage,
        started_at=timezone.now(),
        first_bar=utc(newest),
        state=fresh_state(session, newest),
    )


def paper_stop(session: TrainingSession) -> PaperAccount:
    """Stop stepping; open holdings stay as they are (shown open), nothing is sold."""
    account = PaperAccount.objects.filter(session=session).first()
    if account is None:
        raise PaperError(f"session {session.pk} is not paper trading")
    account.live, account.stopped_at = False, timezone.now()
    account.save(update_fields=["live", "stopped_at", "updated"])
    return account
