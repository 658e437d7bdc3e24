"""Sweep pages: the list, a sweep with live progress and its winner, the form, cancel, resume."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST
from kombu.exceptions import OperationalError

from predictor.ml.charts import trials_figure
from predictor.models import SessionStatus, Sweep, TrainingSession
from predictor.selectors.sweeps import (
    ReportHeadline,
    report_headline,
    sweep_list,
    sweep_trial_list,
    sweep_winner_report,
)
from predictor.services.permissions import sweep_may_change
from predictor.services.sessions import TrainingError
from predictor.services.sweep_objective import OBJECTIVES
from predictor.services.sweeps import (
    sweep_base,
    sweep_cancel,
    sweep_create,
    sweep_progress,
    sweep_queue,
    sweep_resume,
    trial_params,
)
from predictor.sweep_forms import SweepForm
from predictor.views._common import chart

LOGIN = "predictor:login"
PAGE_SIZE = 25


def _trial_row(sweep: Sweep, trial: TrainingSession) -> dict[str, Any]:
    return {
        "id": str(trial.pk),
        "trial_number": trial.trial_number,
        "status": trial.status,
        "status_label": trial.get_status_display(),
        "objective_value": trial.objective_value,
        "error": trial.error[:300],
        "params": trial_params(sweep, trial),
    }


def sweep_state(sweep: Sweep, trials: list[TrainingSession]) -> dict[str, Any]:
    """What the sweep page polls: status, counts, the best so far and every trial."""
    progress = sweep_progress(sweep, trials)
    planned = progress["planned"] or 1
    return {
        "id": str(sweep.pk),
        "status": sweep.status,
        "status_label": sweep.get_status_display(),
        "active": sweep.status in Sweep.ACTIVE,
        "error": sweep.error[:1000],
        "percent": round(100 * progress["done"] / planned),
        "progress": progress,
        "trials": [_trial_row(sweep, t) for t in trials],
    }


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.2f} %"


def _num(value: float | int | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else f"{value:,}"  # fmt: skip


def headline_rows(headline: ReportHeadline) -> list[tuple[str, str]]:
    """The winner's test figures, as the evaluation page words them."""
    return [
        ("Market", headline.market or "n/a"),
        ("Forecasts scored", _num(headline.n_forecasts)),
        ("IC", _num(headline.ic)),
        ("Rank IC", _num(headline.rank_ic)),
        ("Directional accuracy", _pct(headline.direction_accuracy)),
        ("θ (chosen on validation, frozen)", _num(headline.theta, 6)),
        ("Strategy total return, after costs", _pct(headline.total_return)),
        ("Sharpe (annualised)", _num(headline.sharpe, 3)),
        ("Trades", _num(headline.n_trades)),
        ("Trials counted by the deflated Sharpe", _num(headline.n_trials)),
    ]


def space_rows(sweep: Sweep) -> list[tuple[str, str]]:
    """Each searched option and what it tries: its values, or its range."""
    rows = []
    for key, axis in sweep.space.items():
        if "values" in axis:
            text = ", ".join(str(v) for v in axis["values"])
        else:
            text = f"{axis['low']} … {axis['high']}{' (log)' if axis.get('log') else ''}"
        rows.append((key, text))
    return rows


def sweeps(request: HttpRequest) -> HttpResponse:
    page = Paginator(sweep_list(), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "predictor/sweep_list.html", {"page": page})


def _figure(sweep: Sweep, trials: list[TrainingSession]) -> Any:
    return trials_figure(
        [t.trial_number or 0 for t in trials],
        [t.objective_value for t in trials],
        objective=sweep.objective,
        minimise=OBJECTIVES.get(sweep.objective, True),
    )


def sweep_detail(request: HttpRequest, pk: UUID) -> HttpResponse:
    sweep = get_object_or_404(sweep_list(), pk=pk)
    trials = sweep_trial_list(sweep)
    state = sweep_state(sweep, trials)
    report = sweep_winner_report(sweep)
    base = sweep_base(sweep)
    context = {
        "sweep": sweep,
        "state": state,
        "trials": state["trials"],
        "winner": sweep.winner,
        "winner_params": trial_params(sweep, sweep.winner) if sweep.winner else {},
        "report": report,
        "headline": headline_rows(report_headline(report)) if report is not None else [],
        "winner_id": str(sweep.winner_id) if sweep.winner_id else None,
        "space_rows": space_rows(sweep),
        "base": base,
        "base_given": sorted((k, v) for k, v in base.given.items() if v is not None),
        "chart": chart(_figure(sweep, trials)),
        "may_change": sweep_may_change(request.user, sweep),
        "resumable": sweep.status in (SessionStatus.FAILED, SessionStatus.CANCELLED),
    }
    return render(request, "predictor/sweep_detail.html", context)


@never_cache
def sweep_progress_json(request: HttpRequest, pk: UUID) -> JsonResponse:
    sweep = get_object_or_404(Sweep, pk=pk)
    return JsonResponse(sweep_state(sweep, sweep_trial_list(sweep)))


@login_required(login_url=LOGIN)
def sweep_new(request: HttpRequest) -> HttpResponse:
    form = SweepForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if form.request is None:  # a valid form always builds one: refuse rather than guess
            return HttpResponseBadRequest("The form built no sweep request.")
        try:
            sweep = sweep_create(form.request, user=request.user)
        except TrainingError as exc:
            form.add_error_for(exc)
        else:
            try:
                sweep_queue(sweep)
            except OperationalError as exc:
                messages.error(
                    request,
                    f"Sweep {str(sweep.pk)[:8]} is stored but the task queue is unreachable "
                    f"({exc}); cancel it and resume it once the queue is back.",
                )
            else:
                messages.success(
                    request, f"Sweep {str(sweep.pk)[:8]}: {sweep.n_trials} trial(s) queued."
                )
            return redirect("predictor:sweep_detail", pk=sweep.pk)
    return render(request, "predictor/sweep_new.html", {"form": form})


def _sweep_to_change(request: HttpRequest, pk: UUID) -> Sweep:
    sweep = get_object_or_404(Sweep, pk=pk)
    if not sweep_may_change(request.user, sweep):
        # 403, not a redirect with a message: a forged cross-user POST must not look accepted.
        raise PermissionDenied("Only the user who started this sweep, or staff, may change it.")
    return sweep


@login_required(login_url=LOGIN)
@require_POST
def sweep_cancel_view(request: HttpRequest, pk: UUID) -> HttpResponse:
    sweep = _sweep_to_change(request, pk)
    try:
        sweep_cancel(sweep)
    except TrainingError as exc:
        messages.info(request, str(exc))
    else:
        messages.success(
            request,
            f"Sweep {str(sweep.pk)[:8]} is cancelled; running trials stop after their batch.",
        )
    return redirect("predictor:sweep_detail", pk=sweep.pk)


@login_required(login_url=LOGIN)
@require_POST
def sweep_resume_view(request: HttpRequest, pk: UUID) -> HttpResponse:
    sweep = _sweep_to_change(request, pk)
    try:
        sweep = sweep_resume(sweep)
    except TrainingError as exc:
        messages.info(request, str(exc))
    except OperationalError as exc:
        messages.error(request, f"The task queue is unreachable ({exc}); try again later.")
    else:
        messages.success(request, f"Sweep {str(sweep.pk)[:8]} carries on ({sweep.status}).")
    return redirect("predictor:sweep_detail", pk=sweep.pk)
