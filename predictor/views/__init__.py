"""Pages. Views are thin: they read through selectors, write through services, render templates."""

from __future__ import annotations

from predictor.views.evaluation import evaluation
from predictor.views.forecasts import forecast, forecast_csv
from predictor.views.markets import index
from predictor.views.paper import paper_detail, paper_start_view, paper_stop_view
from predictor.views.sweeps import (
    sweep_cancel_view,
    sweep_detail,
    sweep_new,
    sweep_progress_json,
    sweep_resume_view,
    sweeps,
)
from predictor.views.training import (
    training_cancel,
    training_detail,
    training_list,
    training_new,
    training_progress,
)

__all__ = [
    "evaluation",
    "forecast",
    "forecast_csv",
    "index",
    "paper_detail",
    "paper_start_view",
    "paper_stop_view",
    "sweep_cancel_view",
    "sweep_detail",
    "sweep_new",
    "sweep_progress_json",
    "sweep_resume_view",
    "sweeps",
    "training_cancel",
    "training_detail",
    "training_list",
    "training_new",
    "training_progress",
]
