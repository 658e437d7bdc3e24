"""The paper trading page of a session, and its start and stop buttons."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from predictor.ml.charts import curves_figure
from predictor.models import SessionStatus, TrainingSession
from predictor.selectors.paper import paper_account_get, paper_summary
from predictor.views._common import chart

LOGIN = "predictor:login"


def may_change(user: object, session: TrainingSession) -> bool:
    """The user who started the session, or staff (a command-line session has no owner)."""
    is_staff = bool(getattr(user, "is_staff", False))
    return is_staff or bool(
        session.created_by_id and session.created_by_id == getattr(user, "pk", None)
    )


def paper_detail(request: HttpRequest, pk: UUID) -> HttpResponse:
    session = get_object_or_404(TrainingSession, pk=pk)
    account = paper_account_get(session)
    context: dict[str, Any] = {
        "session": session,
        "account": account,
        "can_change": request.user.is_authenticated and may_change(request.user, session),
        "can_start": session.status == SessionStatus.SUCCEEDED and session.has_artifact,
    }
    if account is not None:
        summary = paper_summary(account)
        context["summary"] = summary
        context["equity_chart"] = chart(
            curves_figure(
                summary.times,
                {"paper (closed holdings)": summary.strategy, "buy_and_hold": summary.buy_and_hold},
                y_title="return",
                percent=True,
            )
        )
    return render(request, "predictor/paper.html", context)


def _session_to_change(request: HttpRequest, pk: UUID) -> TrainingSession:
    session = get_object_or_404(TrainingSession, pk=pk)
    if not may_change(request.user, session):
        raise PermissionDenied("only the user who started this session, or staff, may change it")
    return session


@login_required(login_url=LOGIN)
@require_POST
def paper_start_view(request: HttpRequest, pk: UUID) -> HttpResponse:
    from predictor.services.paper import PaperError, paper_start

    session = _session_to_change(request, pk)
    theta = request.POST.get("theta", "").strip()
    try:
        account = paper_start(session, theta=float(theta) if theta else None)
    except (PaperError, ValueError) as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request, f"Session {str(session.pk)[:8]} is live on paper (θ {account.theta:g})."
        )
    return redirect("predictor:paper_detail", pk=session.pk)


@login_required(login_url=LOGIN)
@require_POST
def paper_stop_view(request: HttpRequest, pk: UUID) -> HttpResponse:
    from predictor.services.paper import PaperError, paper_stop

    session = _session_to_change(request, pk)
    try:
        paper_stop(session)
    except PaperError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Session {str(session.pk)[:8]} stopped paper trading.")
    return redirect("predictor:paper_detail", pk=session.pk)
