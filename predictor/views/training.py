"""Training pages: the sessions list with live progress, a session, the form, cancel."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from predictor.forms import TrainForm
from predictor.ml.charts import loss_figure
from predictor.models import SessionStatus, TrainingSession
from predictor.selectors.sessions import session_list, session_report_list
from predictor.services.permissions import session_may_change
from predictor.services.runs import run_cancel, run_start
from predictor.services.sessions import TrainingError
from predictor.views._common import chart

LOGIN = "predictor:login"
PAGE_SIZE = 25


def progress(session: TrainingSession) -> dict[str, Any]:
    """What the pages poll: status, epoch, losses, ETA and the loss history."""
    done = session.status == SessionStatus.SUCCEEDED
    percent = 100 if done else 0
    if session.epochs and not done:
        percent = round(100 * session.epoch / session.epochs)
    return {
        "id": str(session.pk),
        "status": session.status,
        "status_label": session.get_status_display(),
        "active": session.is_active,
        "cancel_requested": session.cancel_requested,
        "epoch": session.epoch,
        "epochs": session.epochs,
        "percent": percent,
        "loss": session.loss,
        "val_loss": session.val_loss,
        "eta_seconds": session.eta_seconds,
        "heartbeat": session.heartbeat.isoformat() if session.heartbeat else None,
        "finished": session.finished.isoformat() if session.finished else None,
        "error": session.error[:1000],
        "history": session.history,
    }


def _config_text(value: Any) -> str:
    if value is None:
        return "default"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "—"
    return str(value)


def training_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(session_list(), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "predictor/training_list.html", {"page": page})


def training_detail(request: HttpRequest, pk: UUID) -> HttpResponse:
    session = get_object_or_404(TrainingSession, pk=pk)
    config = [(name, _config_text(value)) for name, value in sorted(session.config.items())]
    context = {
        "session": session,
        "config": config,
        "progress": progress(session),
        "loss_chart": chart(loss_figure(session.history)),
        "manifest": session.manifest,
        "manifest_versions": sorted((session.manifest.get("versions") or {}).items()),
        "reports": session_report_list(session),
        "predictions": session.predictions.count(),
        "may_change": session_may_change(request.user, session),
    }
    return render(request, "predictor/training_detail.html", context)


@never_cache
def training_progress(request: HttpRequest, pk: UUID) -> JsonResponse:
    return JsonResponse(progress(get_object_or_404(TrainingSession, pk=pk)))


@login_required(login_url=LOGIN)
def training_new(request: HttpRequest) -> HttpResponse:
    form = TrainForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if form.request is None:  # a valid form always builds one: refuse rather than guess
            return HttpResponseBadRequest("The form built no training request.")
        try:
            session = run_start(form.request, user=request.user)
        except TrainingError as exc:
            form.add_error_for(exc)
        else:
            messages.success(request, f"Session {str(session.pk)[:8]} is queued for training.")
            return redirect("predictor:training_detail", pk=session.pk)
    return render(request, "predictor/training_new.html", {"form": form})


@login_required(login_url=LOGIN)
@require_POST
def training_cancel(request: HttpRequest, pk: UUID) -> HttpResponse:
    session = get_object_or_404(TrainingSession, pk=pk)
    if not session_may_change(request.user, session):
        # 403, not a redirect with a message: a forged cross-user POST must not look accepted.
        raise PermissionDenied("Only the user who started this session, or staff, may cancel it.")
    if not session.is_active:
        messages.info(
            request, f"Session {str(session.pk)[:8]} is {session.status}; nothing to cancel."
        )
    else:
        session = run_cancel(session)
        if session.status == SessionStatus.CANCELLED:
            messages.success(request, f"Session {str(session.pk)[:8]} is cancelled.")
        else:
            messages.success(
                request, f"Session {str(session.pk)[:8]} stops after its current batch."
            )
    return redirect(reverse("predictor:training_detail", args=[session.pk]))
